//! The hickory-resolver 0.26 engine (`--dns-engine hickory`): the only file that knows the
//! resolver's API.
//!
//! Independent resolvers are built per process and shared by every task, with settings for bulk
//! scans: no search list (absolute names), no cache worth the name (millions of unique names).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};

use super::{Answer, DnsSettings, Engine, MAX_NAME_OCTETS, absolute_name};
use crate::net::{DnsFailure, NameStatus};

/// DNS lookups through one shared hickory resolver.
#[derive(Clone)]
pub struct HickoryDns {
    /// Independent resolvers used in turn: each has its own request queue and background
    /// task, so one queue does not throttle a whole scan.
    resolvers: Arc<[TokioResolver]>,
    next: Arc<AtomicUsize>,
    retries: u32,
    retry_backoff: Duration,
}

impl HickoryDns {
    /// Builds the resolver. Fails when no name server is configured or `/etc/resolv.conf` is
    /// unreadable.
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        let config = if settings.nameservers.is_empty() {
            let (system, _) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
            // Keep the servers, drop the search list: every query name is absolute anyway.
            ResolverConfig::from_parts(None, vec![], system.name_servers().to_vec())
        } else {
            let servers = settings
                .nameservers
                .iter()
                .map(|address| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = address.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = address.port();
                    let connections = if settings.tcp_only {
                        vec![tcp]
                    } else {
                        vec![udp, tcp]
                    };
                    NameServerConfig::new(address.ip(), true, connections)
                })
                .collect();
            ResolverConfig::from_parts(None, vec![], servers)
        };
        let lanes = settings
            .max_in_flight
            .div_ceil(QUERIES_PER_LANE)
            .clamp(1, MAX_LANES);
        let resolvers = (0..lanes)
            .map(|_| build_resolver(config.clone(), settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HickoryDns {
            resolvers: resolvers.into(),
            next: Arc::new(AtomicUsize::new(0)),
            retries: settings.retries,
            retry_backoff: settings.retry_backoff,
        })
    }

    fn resolver(&self) -> &TokioResolver {
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.resolvers.len();
        &self.resolvers[lane]
    }

    pub(crate) async fn query_answer(
        &self,
        name: &str,
        kind: RecordType,
    ) -> Result<Answer, DnsFailure> {
        // A name longer than DNS allows (a 250-octet domain under `_mta-sts.`) cannot exist.
        if name.len() > MAX_NAME_OCTETS {
            return Ok(Answer::nx_domain());
        }
        let fqdn = absolute_name(name)?;
        let mut retries_left = self.retries;
        let mut backoff = self.retry_backoff;
        let mut congested = 0u32;
        loop {
            let result = self.lookup_once(&fqdn, kind).await;
            match result {
                // Local back-pressure (the resolver's request queue is full) is not an answer:
                // wait a moment and send again, without spending a retry.
                Err(Failure::Congested) if congested < MAX_CONGESTED_RETRIES => {
                    congested += 1;
                    tokio::time::sleep(Duration::from_millis(u64::from(congested.min(20)))).await;
                }
                Err(Failure::Dns(DnsFailure::ServFail | DnsFailure::Timeout))
                    if retries_left > 0 =>
                {
                    retries_left -= 1;
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                Err(Failure::Congested) => {
                    return Err(DnsFailure::Other(
                        "resolver congested (request queue full)".into(),
                    ));
                }
                Err(Failure::Dns(failure)) => return Err(failure),
                Ok(answer) => return Ok(answer),
            }
        }
    }

    async fn lookup_once(&self, fqdn: &Name, kind: RecordType) -> Result<Answer, Failure> {
        match self.resolver().lookup(fqdn.clone(), kind).await {
            Ok(lookup) => Ok(Answer {
                status: NameStatus::Exists,
                records: lookup.answers().to_vec(),
            }),
            Err(error) if error.is_nx_domain() => Ok(Answer::nx_domain()),
            Err(error) if error.is_no_records_found() => Ok(Answer {
                status: NameStatus::Exists,
                records: Vec::new(),
            }),
            Err(error) if is_congestion(&error) => Err(Failure::Congested),
            Err(error) => Err(Failure::Dns(classify(&error))),
        }
    }
}

/// Queries in flight per resolver lane, and the most lanes.
const QUERIES_PER_LANE: usize = 256;
const MAX_LANES: usize = 16;

fn build_resolver(config: ResolverConfig, settings: &DnsSettings) -> Result<TokioResolver, String> {
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    let options = builder.options_mut();
    options.timeout = settings.timeout;
    options.attempts = settings.attempts.max(1);
    options.ndots = 0;
    options.cache_size = 0;
    options.num_concurrent_reqs = 1;
    options.max_active_requests = QUERIES_PER_LANE.min(settings.max_in_flight.max(1));
    options.preserve_intermediates = true;
    options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    options.try_tcp_on_error = true;
    options.os_port_selection = true;
    // With several --resolver flags, hickory's default ordering (by observed latency and errors)
    // sends queries to the healthy servers; a dead one is tried less and less.
    builder
        .build()
        .map_err(|e| format!("cannot build the resolver: {e}"))
}

/// Retries of local back-pressure before it counts as a failure (about two seconds in all).
const MAX_CONGESTED_RETRIES: u32 = 120;

enum Failure {
    /// Our own resolver's queue was full: nothing reached the name server.
    Congested,
    Dns(DnsFailure),
}

/// hickory reports a full request queue as `Busy`, or as a send error on its stream handle.
fn is_congestion(error: &NetError) -> bool {
    match error {
        NetError::Busy | NetError::NoConnections => true,
        NetError::Msg(message) => message.contains("channel is full"),
        other => other.to_string().contains("channel is full"),
    }
}

fn classify(error: &NetError) -> DnsFailure {
    match error {
        NetError::Timeout => DnsFailure::Timeout,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsFailure::ServFail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsFailure::Refused,
        NetError::Dns(DnsError::NoRecordsFound(no_records))
            if no_records.response_code == ResponseCode::ServFail =>
        {
            DnsFailure::ServFail
        }
        NetError::Dns(DnsError::NoRecordsFound(no_records))
            if no_records.response_code == ResponseCode::Refused =>
        {
            DnsFailure::Refused
        }
        other => {
            let text = other.to_string();
            if text.contains("timed out") {
                DnsFailure::Timeout
            } else {
                DnsFailure::Other(text)
            }
        }
    }
}

impl Engine for HickoryDns {
    async fn query(&self, name: &str, kind: RecordType) -> Result<Answer, DnsFailure> {
        self.query_answer(name, kind).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Dns;

    #[tokio::test]
    async fn a_name_longer_than_dns_allows_does_not_exist() {
        // Nothing listens on the discard port: a query that went out would fail, not NXDOMAIN.
        let settings = DnsSettings {
            nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            timeout: Duration::from_millis(200),
            attempts: 1,
            retries: 0,
            ..DnsSettings::default()
        };
        let dns = HickoryDns::new(&settings).unwrap();
        let long = format!("_mta-sts.{}.example", vec!["a".repeat(60); 4].join("."));
        assert!(long.len() > MAX_NAME_OCTETS);
        let answer = dns.txt(&long).await.unwrap();
        assert_eq!(answer.status, NameStatus::NxDomain);
        assert!(answer.records.is_empty());
    }
}
