//! DNS for the validator: the settings, the two engines behind [`super::Dns`], and what both share
//! (answers, CNAME targets, TXT concatenation, the record filters of `txt`/`mx`/`addresses`).
//!
//! [`scan_udp::ScanDns`] is the scanning path (long-lived UDP socket pool, TCP on truncation) and
//! the default; [`hickory::HickoryDns`] is hickory-resolver, kept as `--dns-engine hickory`.

pub mod hickory;
pub mod scan_udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};

pub use self::hickory::HickoryDns;
pub use self::scan_udp::ScanDns;
use super::{AddressAnswer, DnsFailure, MxAnswer, NameStatus, TxtAnswer};

/// Which implementation answers the validator's lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsEngineKind {
    /// The scanning path: a pool of long-lived UDP sockets, answers matched by ID, question and
    /// source, TCP on truncation, failover between name servers.
    #[default]
    Scan,
    /// hickory-resolver (a socket per query).
    Hickory,
}

impl DnsEngineKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DnsEngineKind::Scan => "scan",
            DnsEngineKind::Hickory => "hickory",
        }
    }
}

impl std::str::FromStr for DnsEngineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "scan" => Ok(DnsEngineKind::Scan),
            "hickory" => Ok(DnsEngineKind::Hickory),
            other => Err(format!(
                "unknown DNS engine {other:?} (expected scan or hickory)"
            )),
        }
    }
}

/// Resolver settings, already validated.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Name servers to ask; empty means those of `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// Time to wait for one answer.
    pub timeout: Duration,
    /// Tries per name server before a lookup fails.
    pub attempts: usize,
    /// Queries the resolver may have in flight at once (back-pressure beyond it).
    pub max_in_flight: usize,
    /// Extra tries, with exponential backoff, after a lookup ends in SERVFAIL or a timeout.
    pub retries: u32,
    /// First backoff before a retry (doubled each time).
    pub retry_backoff: Duration,
    /// Query over TCP only: for scans against a resolver of one's own.
    pub tcp_only: bool,
    /// Which engine answers.
    pub engine: DnsEngineKind,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(3),
            attempts: 2,
            max_in_flight: 4096,
            retries: 1,
            retry_backoff: Duration::from_millis(250),
            tcp_only: false,
            engine: DnsEngineKind::default(),
        }
    }
}

impl DnsSettings {
    /// A human-readable description of the name servers, for run metadata.
    pub fn describe(&self) -> String {
        if self.nameservers.is_empty() {
            "system (/etc/resolv.conf)".to_owned()
        } else {
            let all: Vec<String> = self.nameservers.iter().map(ToString::to_string).collect();
            all.join(",")
        }
    }
}

/// The engine chosen by [`DnsSettings::engine`].
#[derive(Clone)]
pub enum DnsClient {
    Scan(ScanDns),
    Hickory(HickoryDns),
}

impl DnsClient {
    /// Builds the configured engine.
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        Ok(match settings.engine {
            DnsEngineKind::Scan => DnsClient::Scan(ScanDns::new(settings)?),
            DnsEngineKind::Hickory => DnsClient::Hickory(HickoryDns::new(settings)?),
        })
    }
}

impl Engine for DnsClient {
    async fn query(&self, name: &str, kind: RecordType) -> Result<Answer, DnsFailure> {
        match self {
            DnsClient::Scan(dns) => dns.query(name, kind).await,
            DnsClient::Hickory(dns) => dns.query(name, kind).await,
        }
    }
}

/// One typed lookup, CNAMEs followed: what each engine provides.
pub(crate) trait Engine: Send + Sync {
    fn query(
        &self,
        name: &str,
        kind: RecordType,
    ) -> impl Future<Output = Result<Answer, DnsFailure>> + Send;
}

/// A lookup's answer: whether the name exists, and the answer records (CNAMEs included).
pub(crate) struct Answer {
    pub(crate) status: NameStatus,
    pub(crate) records: Vec<Record>,
}

impl Answer {
    pub(crate) fn nx_domain() -> Self {
        Answer {
            status: NameStatus::NxDomain,
            records: Vec::new(),
        }
    }

    /// The final target of a CNAME chain, if the answer went through one.
    fn cname_target(&self, queried: &str) -> Option<String> {
        self.records
            .iter()
            .rev()
            .find_map(|record| match &record.data {
                RData::CNAME(target) => Some(name_text(&target.0)),
                _ => None,
            })
            .filter(|target| !target.eq_ignore_ascii_case(queried))
    }
}

/// Longest name in presentation form without the root dot (RFC 1035 §2.3.4: 255 wire octets).
pub(crate) const MAX_NAME_OCTETS: usize = 253;

pub(crate) fn absolute_name(name: &str) -> Result<Name, DnsFailure> {
    let mut fqdn = Name::from_ascii(name)
        .map_err(|e| DnsFailure::Other(format!("invalid query name {name:?}: {e}")))?;
    fqdn.set_fqdn(true);
    Ok(fqdn)
}

/// A name as text, lowercase, without the trailing dot.
pub(crate) fn name_text(name: &Name) -> String {
    let mut text = name.to_ascii();
    if text.ends_with('.') {
        text.pop();
    }
    text.make_ascii_lowercase();
    text
}

fn concatenate(strings: &[Box<[u8]>]) -> String {
    let total = strings.iter().map(|s| s.len()).sum();
    let mut bytes = Vec::with_capacity(total);
    for part in strings {
        bytes.extend_from_slice(part);
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
    }
}

async fn txt<E: Engine>(engine: &E, name: &str) -> Result<TxtAnswer, DnsFailure> {
    let answer = engine.query(name, RecordType::TXT).await?;
    let records = answer
        .records
        .iter()
        .filter_map(|record| match &record.data {
            // RFC 8461 §3.1: the strings of one record are concatenated without spaces.
            RData::TXT(txt) => Some(concatenate(&txt.txt_data)),
            _ => None,
        })
        .collect();
    Ok(TxtAnswer {
        status: answer.status,
        cname: answer.cname_target(name),
        records,
    })
}

async fn mx<E: Engine>(engine: &E, domain: &str) -> Result<MxAnswer, DnsFailure> {
    let answer = engine.query(domain, RecordType::MX).await?;
    let mut hosts: Vec<(u16, String)> = answer
        .records
        .iter()
        .filter_map(|record| match &record.data {
            RData::MX(mx) => Some((mx.preference, name_text(&mx.exchange))),
            _ => None,
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    Ok(MxAnswer {
        status: answer.status,
        hosts,
    })
}

async fn addresses<E: Engine>(engine: &E, host: &str) -> Result<AddressAnswer, DnsFailure> {
    // A and AAAA together: a host whose IPv4 address is refused, unreachable or private may
    // still be reachable over IPv6, and the fetch tries every permitted address in order.
    let (v4, v6) = tokio::join!(
        engine.query(host, RecordType::A),
        engine.query(host, RecordType::AAAA)
    );
    let mut found: Vec<IpAddr> = Vec::new();
    let mut cname = None;
    let mut status = NameStatus::Exists;
    if let Ok(answer) = &v4 {
        found.extend(
            answer
                .records
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                }),
        );
        cname = answer.cname_target(host);
        status = answer.status;
    }
    if let Ok(answer) = &v6 {
        found.extend(
            answer
                .records
                .iter()
                .filter_map(|record| match &record.data {
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                }),
        );
        cname = cname.or_else(|| answer.cname_target(host));
        if v4.is_err() {
            status = answer.status;
        }
    }
    // One family failing leaves the answer incomplete: with no address from the other, the
    // lookup failed (inconclusive), it did not find "no address".
    if found.is_empty() {
        v4?;
        v6?;
    }
    Ok(AddressAnswer {
        status,
        addresses: found,
        cname,
    })
}

/// `Dns` for an engine, through the shared record filters.
macro_rules! dns_through_engine {
    ($($engine:ty),*) => {$(
        impl super::Dns for $engine {
            async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsFailure> {
                txt(self, name).await
            }

            async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsFailure> {
                mx(self, domain).await
            }

            async fn addresses(&self, host: &str) -> Result<AddressAnswer, DnsFailure> {
                addresses(self, host).await
            }
        }
    )*};
}

dns_through_engine!(DnsClient, ScanDns, HickoryDns);
