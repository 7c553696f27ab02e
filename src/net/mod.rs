//! The network boundary: the narrow traits the validator talks to, and the facts they return.
//!
//! The validator never sees hickory or reqwest: [`dns`] holds the two DNS engines (the scanning
//! path [`dns::ScanDns`] and hickory-resolver's [`dns::HickoryDns`], one file each) and
//! [`http::ReqwestFetcher`] is the only file that knows the HTTP client. Tests and
//! benchmarks use the same implementations against the in-process test internet (`crate::lab`).

pub mod address;
pub mod dns;
pub mod http;
pub mod limit;
pub mod smtp;
pub mod trust;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;

/// Why a DNS lookup could not be completed (an answer of "no such name" is not a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsFailure {
    /// No answer within the resolver's timeout and attempts.
    Timeout,
    /// The server answered SERVFAIL.
    ServFail,
    /// The server answered REFUSED.
    Refused,
    /// Anything else (other response codes, I/O errors, malformed answers).
    Other(String),
}

impl DnsFailure {
    /// The failure's kind as a stable token (`timeout`, `servfail`, `refused`, `other`): what the
    /// `lookup_failures` column and the statistics keep; the cause text is presentation only.
    pub const fn kind(&self) -> DnsFailureKind {
        match self {
            DnsFailure::Timeout => DnsFailureKind::Timeout,
            DnsFailure::ServFail => DnsFailureKind::ServFail,
            DnsFailure::Refused => DnsFailureKind::Refused,
            DnsFailure::Other(_) => DnsFailureKind::Other,
        }
    }
}

/// [`DnsFailure`] without its cause text: the typed fact that results and statistics carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnsFailureKind {
    Timeout,
    ServFail,
    Refused,
    Other,
}

impl DnsFailureKind {
    pub const ALL: [DnsFailureKind; 4] = [
        DnsFailureKind::Timeout,
        DnsFailureKind::ServFail,
        DnsFailureKind::Refused,
        DnsFailureKind::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DnsFailureKind::Timeout => "timeout",
            DnsFailureKind::ServFail => "servfail",
            DnsFailureKind::Refused => "refused",
            DnsFailureKind::Other => "other",
        }
    }
}

/// Which of a domain's lookups (spec §1) a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    /// `TXT _mta-sts.D`.
    StsTxt,
    /// `TXT _smtp._tls.D`.
    TlsRptTxt,
    /// `MX D`.
    Mx,
    /// `A`/`AAAA mta-sts.D`, the policy host.
    PolicyHost,
}

impl Lookup {
    pub const ALL: [Lookup; 4] = [
        Lookup::StsTxt,
        Lookup::TlsRptTxt,
        Lookup::Mx,
        Lookup::PolicyHost,
    ];

    /// Stable token, used in the `lookup_failures` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Lookup::StsTxt => "mta_sts_txt",
            Lookup::TlsRptTxt => "tlsrpt_txt",
            Lookup::Mx => "mx",
            Lookup::PolicyHost => "policy_host",
        }
    }

    /// How messages name the lookup.
    pub const fn label(self) -> &'static str {
        match self {
            Lookup::StsTxt => "_mta-sts TXT",
            Lookup::TlsRptTxt => "_smtp._tls TXT",
            Lookup::Mx => "MX",
            Lookup::PolicyHost => "policy host address",
        }
    }
}

/// One lookup that could not be completed, as a typed fact (spec §4: inconclusive, not a defect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupFailure {
    pub lookup: Lookup,
    pub kind: DnsFailureKind,
}

impl LookupFailure {
    /// Every (lookup, kind) pair with its token `lookup:kind`, so a token is a `&'static str`.
    const TOKENS: [(Lookup, DnsFailureKind, &'static str); 16] = [
        (
            Lookup::StsTxt,
            DnsFailureKind::Timeout,
            "mta_sts_txt:timeout",
        ),
        (
            Lookup::StsTxt,
            DnsFailureKind::ServFail,
            "mta_sts_txt:servfail",
        ),
        (
            Lookup::StsTxt,
            DnsFailureKind::Refused,
            "mta_sts_txt:refused",
        ),
        (Lookup::StsTxt, DnsFailureKind::Other, "mta_sts_txt:other"),
        (
            Lookup::TlsRptTxt,
            DnsFailureKind::Timeout,
            "tlsrpt_txt:timeout",
        ),
        (
            Lookup::TlsRptTxt,
            DnsFailureKind::ServFail,
            "tlsrpt_txt:servfail",
        ),
        (
            Lookup::TlsRptTxt,
            DnsFailureKind::Refused,
            "tlsrpt_txt:refused",
        ),
        (Lookup::TlsRptTxt, DnsFailureKind::Other, "tlsrpt_txt:other"),
        (Lookup::Mx, DnsFailureKind::Timeout, "mx:timeout"),
        (Lookup::Mx, DnsFailureKind::ServFail, "mx:servfail"),
        (Lookup::Mx, DnsFailureKind::Refused, "mx:refused"),
        (Lookup::Mx, DnsFailureKind::Other, "mx:other"),
        (
            Lookup::PolicyHost,
            DnsFailureKind::Timeout,
            "policy_host:timeout",
        ),
        (
            Lookup::PolicyHost,
            DnsFailureKind::ServFail,
            "policy_host:servfail",
        ),
        (
            Lookup::PolicyHost,
            DnsFailureKind::Refused,
            "policy_host:refused",
        ),
        (
            Lookup::PolicyHost,
            DnsFailureKind::Other,
            "policy_host:other",
        ),
    ];

    pub fn new(lookup: Lookup, failure: &DnsFailure) -> Self {
        LookupFailure {
            lookup,
            kind: failure.kind(),
        }
    }

    /// `lookup:kind`, e.g. `mx:servfail`.
    pub fn as_str(self) -> &'static str {
        LookupFailure::TOKENS
            .iter()
            .find(|(lookup, kind, _)| *lookup == self.lookup && *kind == self.kind)
            .map_or("", |(_, _, token)| token)
    }

    /// Parses a token written by [`LookupFailure::as_str`].
    pub fn from_name(token: &str) -> Option<Self> {
        LookupFailure::TOKENS
            .iter()
            .find(|(_, _, name)| *name == token)
            .map(|&(lookup, kind, _)| LookupFailure { lookup, kind })
    }
}

/// How far the policy fetch of spec §1 step 4 got (RFC 8461 §3.3 order): the typed fact behind
/// the `policy_fetch` column and the fetch funnel of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FetchOutcome {
    /// The policy host's address lookup failed (SERVFAIL, timeout, REFUSED): inconclusive.
    DnsFailed,
    /// The policy host has no address (NXDOMAIN or no A/AAAA).
    NoAddress,
    /// Every address is non-public; not contacted.
    AddressForbidden,
    /// TCP refused or unreachable.
    ConnectFailed,
    /// Certificate or handshake failure.
    TlsFailed,
    /// A connect, TLS or response timeout.
    Timeout,
    /// Broken HTTP or a connection closed mid-answer.
    ProtocolError,
    /// A 3xx answer.
    Redirect,
    /// Another non-200 status.
    HttpStatus,
    /// A body over the cap.
    TooLarge,
    /// 200 with a complete body: the policy text was read.
    Fetched,
}

impl FetchOutcome {
    pub const ALL: [FetchOutcome; 11] = [
        FetchOutcome::DnsFailed,
        FetchOutcome::NoAddress,
        FetchOutcome::AddressForbidden,
        FetchOutcome::ConnectFailed,
        FetchOutcome::TlsFailed,
        FetchOutcome::Timeout,
        FetchOutcome::ProtocolError,
        FetchOutcome::Redirect,
        FetchOutcome::HttpStatus,
        FetchOutcome::TooLarge,
        FetchOutcome::Fetched,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::DnsFailed => "dns_failed",
            FetchOutcome::NoAddress => "no_address",
            FetchOutcome::AddressForbidden => "address_forbidden",
            FetchOutcome::ConnectFailed => "connect_failed",
            FetchOutcome::TlsFailed => "tls_failed",
            FetchOutcome::Timeout => "timeout",
            FetchOutcome::ProtocolError => "protocol_error",
            FetchOutcome::Redirect => "redirect",
            FetchOutcome::HttpStatus => "http_status",
            FetchOutcome::TooLarge => "too_large",
            FetchOutcome::Fetched => "fetched",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        FetchOutcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsFailure::Timeout => f.write_str("timeout"),
            DnsFailure::ServFail => f.write_str("SERVFAIL"),
            DnsFailure::Refused => f.write_str("REFUSED"),
            DnsFailure::Other(cause) => f.write_str(cause),
        }
    }
}

/// Whether the queried name exists (NXDOMAIN is an answer, not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStatus {
    /// The name exists (with or without records of the asked type).
    Exists,
    /// NXDOMAIN.
    NxDomain,
}

/// The TXT records at one name, each record's strings already concatenated (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtAnswer {
    pub status: NameStatus,
    pub records: Vec<String>,
    /// Final target when the name is a CNAME (no trailing dot).
    pub cname: Option<String>,
}

/// The MX records of a domain, by preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxAnswer {
    pub status: NameStatus,
    /// `(preference, exchange)` sorted by preference; exchange without trailing dot,
    /// `""` for the null MX of RFC 7505.
    pub hosts: Vec<(u16, String)>,
}

impl MxAnswer {
    /// RFC 7505: a single MX with exchange "." says the domain accepts no mail.
    pub fn is_null_mx(&self) -> bool {
        matches!(self.hosts.as_slice(), [(_, host)] if host.is_empty())
    }
}

/// The addresses of a host name (IPv4 first, then IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAnswer {
    /// NXDOMAIN, or a name that exists (perhaps without addresses: NODATA).
    pub status: NameStatus,
    pub addresses: Vec<IpAddr>,
    /// Final target when the host is a CNAME (no trailing dot).
    pub cname: Option<String>,
}

/// DNS as the validator needs it. Names are absolute, without the trailing dot.
pub trait Dns: Send + Sync {
    fn txt(&self, name: &str) -> impl Future<Output = Result<TxtAnswer, DnsFailure>> + Send;
    fn mx(&self, domain: &str) -> impl Future<Output = Result<MxAnswer, DnsFailure>> + Send;
    fn addresses(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<AddressAnswer, DnsFailure>> + Send;
}

/// What an HTTPS GET of the policy returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPolicy {
    pub status: u16,
    pub content_type: Option<String>,
    /// `Location` of a 3xx answer.
    pub location: Option<String>,
    /// The body of a 200 answer (empty otherwise), at most the configured cap.
    pub body: Vec<u8>,
}

/// The stage at which a policy fetch timed out, for the error message. reqwest's connector
/// covers TCP and TLS together, so a connect timeout cannot be split between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStage {
    /// TCP connect or TLS handshake.
    Connect,
    /// Waiting for the answer or reading the body.
    Http,
}

impl FetchStage {
    pub const fn as_str(self) -> &'static str {
        match self {
            FetchStage::Connect => "connect/TLS",
            FetchStage::Http => "response",
        }
    }
}

impl FetchFailure {
    /// The stage this failure stopped the fetch at.
    pub const fn outcome(&self) -> FetchOutcome {
        match self {
            FetchFailure::Connect(_) => FetchOutcome::ConnectFailed,
            FetchFailure::Tls(_) => FetchOutcome::TlsFailed,
            FetchFailure::Timeout(..) => FetchOutcome::Timeout,
            FetchFailure::TooLarge { .. } => FetchOutcome::TooLarge,
            FetchFailure::Protocol(_) => FetchOutcome::ProtocolError,
        }
    }
}

/// Why the policy could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// TCP connection refused or unreachable.
    Connect(String),
    /// Certificate or handshake failure.
    Tls(String),
    /// A timeout at the given stage.
    Timeout(FetchStage, String),
    /// The body exceeded the cap (in bytes).
    TooLarge { cap: usize },
    /// The server spoke broken HTTP or closed the connection mid-answer.
    Protocol(String),
}

/// The policy fetch (RFC 8461 §3.3) to a host whose addresses the validator already resolved.
pub trait PolicyFetch: Send + Sync {
    fn fetch(
        &self,
        host: &str,
        addresses: &[IpAddr],
    ) -> impl Future<Output = Result<FetchedPolicy, FetchFailure>> + Send;
}
