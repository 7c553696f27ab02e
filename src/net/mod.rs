//! The network boundary: the narrow traits the validator talks to, and the facts they return.
//!
//! The validator never sees hickory or reqwest: [`dns::HickoryDns`] is the only file that knows
//! the resolver and [`http::ReqwestFetcher`] the only one that knows the HTTP client. Tests and
//! benchmarks use the same implementations against the in-process test internet (`crate::lab`).

pub mod address;
pub mod dns;
pub mod http;
pub mod limit;
pub mod smtp;

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

/// The addresses of a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAnswer {
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

/// The stage at which a policy fetch failed, for the error message and the funnel statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStage {
    Connect,
    Tls,
    Http,
}

impl FetchStage {
    pub const fn as_str(self) -> &'static str {
        match self {
            FetchStage::Connect => "tcp",
            FetchStage::Tls => "tls",
            FetchStage::Http => "http",
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
