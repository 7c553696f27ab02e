//! The per-domain validator: gathers the typed facts of spec §1 through the network traits
//! ([`Validator::gather`], the only I/O), then applies the rules of §2–§4 with the pure
//! [`decide()`], which table tests drive without sockets.

mod decide;
pub mod facts;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

pub use decide::{MAX_AGE_LIMIT, MAX_AGE_SHORT_ENFORCE, MAX_AGE_SHORT_TESTING, decide};
use facts::{DomainFacts, FetchAttempt, PolicyFacts};

use crate::mta_sts::record::{StsRecordVerdict, evaluate_sts_records};
use crate::net::address::AddressPolicy;
use crate::net::smtp::{MxProbe, MxProber};
use crate::net::{Dns, NameStatus, PolicyFetch};
use crate::report::{DomainReport, now_millis};
use crate::scan::mx_cache::MxProbeCache;

/// Spec §7 probes of MX hosts as the validator uses them: one result per host for the whole
/// scan, looked up (and its addresses resolved, by the `resolve` future, polled only when this
/// call is the one that probes) at most once. Object-safe, so the validator's type does not
/// change with the probe.
pub trait MxCheck: Send + Sync {
    fn check<'a>(
        &'a self,
        host: &'a str,
        resolve: BoxFuture<'a, Result<Vec<IpAddr>, String>>,
    ) -> BoxFuture<'a, Arc<MxProbe>>;

    /// Every host probed so far with the number of lookups of it (the MX table).
    fn results(&self) -> Vec<(Arc<MxProbe>, u64)>;
}

impl<P: MxProber + 'static> MxCheck for MxProbeCache<P> {
    fn check<'a>(
        &'a self,
        host: &'a str,
        resolve: BoxFuture<'a, Result<Vec<IpAddr>, String>>,
    ) -> BoxFuture<'a, Arc<MxProbe>> {
        Box::pin(self.probe_resolving(host, move || resolve))
    }

    fn results(&self) -> Vec<(Arc<MxProbe>, u64)> {
        MxProbeCache::results(self)
    }
}

/// What the validator may do, beyond the lookups every domain gets.
#[derive(Debug, Clone, Copy)]
pub struct ValidationSettings {
    /// Which addresses the policy fetch may connect to.
    pub address_policy: AddressPolicy,
    /// Fetch the policy even without a TXT record (to find `policy_without_record`).
    pub probe_policy: bool,
    /// Spec §7: probe at most this many MX hosts per domain, in preference order (when an
    /// [`MxCheck`] is installed).
    pub max_mx_probed: usize,
}

/// Default `--max-mx-probed`.
pub const DEFAULT_MAX_MX_PROBED: usize = 10;

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            address_policy: AddressPolicy::default(),
            probe_policy: false,
            max_mx_probed: DEFAULT_MAX_MX_PROBED,
        }
    }
}

/// Validates domains with one DNS and one HTTPS implementation, and optionally an MX probe.
pub struct Validator<D, F> {
    dns: D,
    fetcher: F,
    settings: ValidationSettings,
    mx_check: Option<Arc<dyn MxCheck>>,
}

impl<D: Dns, F: PolicyFetch> Validator<D, F> {
    pub fn new(dns: D, fetcher: F, settings: ValidationSettings) -> Self {
        Validator {
            dns,
            fetcher,
            settings,
            mx_check: None,
        }
    }

    /// Turns the MX probe of spec §7 on (`--probe-mx`).
    pub fn with_mx_check(mut self, mx_check: Arc<dyn MxCheck>) -> Self {
        self.mx_check = Some(mx_check);
        self
    }

    /// The MX probe's results so far (the MX table), when probing is on.
    pub fn mx_results(&self) -> Option<Vec<(Arc<MxProbe>, u64)>> {
        self.mx_check.as_ref().map(|check| check.results())
    }

    /// Validates one input value: normalises it, then checks the domain.
    pub async fn check_input(&self, input: &str, rank: Option<i64>) -> DomainReport {
        match crate::domain::normalize_domain(input) {
            Ok(domain) => self.check_domain(domain, input.to_owned(), rank).await,
            Err(error) => DomainReport::input_error(input.to_owned(), rank, error.to_string()),
        }
    }

    /// Checks a normalised domain (spec §1–§4, and §7 when an MX probe is installed): the
    /// facts, then the decision.
    pub async fn check_domain(
        &self,
        domain: String,
        input: String,
        rank: Option<i64>,
    ) -> DomainReport {
        decide(self.gather(domain, input, rank).await)
    }

    /// Like [`Self::check_domain`], with the MX probe only when `probe_mx` (and installed):
    /// a server started with `--probe-mx` probes only the requests that ask for it.
    pub async fn check_domain_probing(
        &self,
        domain: String,
        input: String,
        rank: Option<i64>,
        probe_mx: bool,
    ) -> DomainReport {
        decide(self.gather_with(domain, input, rank, probe_mx).await)
    }

    /// Whether an MX probe is installed (`--probe-mx`).
    pub fn probes_mx(&self) -> bool {
        self.mx_check.is_some()
    }

    /// Runs the lookups of spec §1 and records what they returned, deciding nothing but which
    /// lookups are needed.
    pub async fn gather(&self, domain: String, input: String, rank: Option<i64>) -> DomainFacts {
        self.gather_with(domain, input, rank, true).await
    }

    /// [`Self::gather`], probing MX hosts only when `probe_mx` (and a probe is installed).
    pub async fn gather_with(
        &self,
        domain: String,
        input: String,
        rank: Option<i64>,
        probe_mx: bool,
    ) -> DomainFacts {
        let started = Instant::now();
        let scanned_at = now_millis();
        let sts_name = format!("_mta-sts.{domain}");
        let tlsrpt_name = format!("_smtp._tls.{domain}");
        // §1: the three lookups are independent.
        let (sts, tlsrpt, mx) = tokio::join!(
            self.dns.txt(&sts_name),
            self.dns.txt(&tlsrpt_name),
            self.dns.mx(&domain)
        );
        let exists = !matches!(&mx, Ok(answer) if answer.status == NameStatus::NxDomain);
        // §1 step 4: the policy is fetched when a record (or a near miss) is present, or when
        // probing is on and the _mta-sts lookup answered.
        let record_present = sts.as_ref().is_ok_and(|answer| {
            evaluate_sts_records(answer.records.iter().map(String::as_str))
                != StsRecordVerdict::Missing
        });
        let probing = !record_present && self.settings.probe_policy && sts.is_ok();
        let wants_policy = exists && (record_present || probing);
        let (policy, mx_probes) = tokio::join!(
            async {
                if wants_policy {
                    Some(self.gather_policy(&domain, probing).await)
                } else {
                    None
                }
            },
            async {
                if probe_mx {
                    self.gather_mx_probes(&mx).await
                } else {
                    None
                }
            }
        );
        DomainFacts {
            domain,
            input,
            rank,
            scanned_at,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            sts,
            tlsrpt,
            mx,
            policy,
            mx_probes,
        }
    }

    /// Spec §7: the probe result of each MX host (preference order, at most
    /// `max_mx_probed`), through the shared per-scan cache; `None` when probing is off.
    async fn gather_mx_probes(
        &self,
        mx: &Result<crate::net::MxAnswer, crate::net::DnsFailure>,
    ) -> Option<Vec<Arc<MxProbe>>> {
        let check = self.mx_check.as_ref()?;
        let hosts: Vec<&str> = match mx {
            Ok(answer) if answer.status == NameStatus::Exists => answer
                .hosts
                .iter()
                .map(|(_, host)| host.as_str())
                .filter(|host| !host.is_empty())
                .take(self.settings.max_mx_probed)
                .collect(),
            _ => return None,
        };
        if hosts.is_empty() {
            return None;
        }
        let probes = hosts.iter().map(|host| {
            let resolve: BoxFuture<'_, Result<Vec<IpAddr>, String>> = Box::pin(async move {
                match self.dns.addresses(host).await {
                    Ok(answer) if answer.addresses.is_empty() => {
                        Err(if answer.status == NameStatus::NxDomain {
                            "NXDOMAIN".to_owned()
                        } else {
                            "no A or AAAA record".to_owned()
                        })
                    }
                    Ok(answer) => Ok(answer.addresses),
                    Err(failure) => Err(failure.to_string()),
                }
            });
            check.check(host, resolve)
        });
        Some(futures::future::join_all(probes).await)
    }

    /// Resolves the policy host, applies the address policy, and fetches from the permitted
    /// addresses (IPv4 and IPv6; the fetcher tries them in order).
    async fn gather_policy(&self, domain: &str, probing: bool) -> PolicyFacts {
        let host = format!("mta-sts.{domain}");
        let addresses = self.dns.addresses(&host).await;
        let attempt = match &addresses {
            Ok(answer) if !answer.addresses.is_empty() => {
                let permitted: Vec<IpAddr> = answer
                    .addresses
                    .iter()
                    .copied()
                    .filter(|address| self.settings.address_policy.permits(*address))
                    .collect();
                if permitted.is_empty() {
                    FetchAttempt::Forbidden
                } else {
                    let result = self.fetcher.fetch(&host, &permitted).await;
                    FetchAttempt::Fetched {
                        addresses: permitted,
                        result,
                    }
                }
            }
            _ => FetchAttempt::NoAddress,
        };
        PolicyFacts {
            host,
            probing,
            addresses,
            attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The gathering step with fake DNS and fetch implementations: which lookups are made, and
    //! which addresses the fetcher is given. No sockets.

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::Mutex;

    use super::*;
    use crate::net::{AddressAnswer, DnsFailure, FetchFailure, FetchedPolicy, MxAnswer, TxtAnswer};
    use crate::report::Outcome;

    struct FakeDns {
        sts: Vec<&'static str>,
        host: Result<Vec<IpAddr>, DnsFailure>,
    }

    impl Dns for FakeDns {
        async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsFailure> {
            let records = if name.starts_with("_mta-sts.") {
                self.sts.iter().map(|r| (*r).to_owned()).collect()
            } else {
                vec!["v=TLSRPTv1; rua=mailto:r@d.test".to_owned()]
            };
            Ok(TxtAnswer {
                status: NameStatus::Exists,
                records,
                cname: None,
            })
        }

        async fn mx(&self, _: &str) -> Result<MxAnswer, DnsFailure> {
            Ok(MxAnswer {
                status: NameStatus::Exists,
                hosts: vec![(10, "mx1.d.test".to_owned())],
            })
        }

        async fn addresses(&self, _: &str) -> Result<AddressAnswer, DnsFailure> {
            self.host.clone().map(|addresses| AddressAnswer {
                status: NameStatus::Exists,
                addresses,
                cname: None,
            })
        }
    }

    /// Serves a valid policy and remembers the addresses it was given.
    #[derive(Default)]
    struct FakeFetch {
        calls: Mutex<Vec<Vec<IpAddr>>>,
    }

    impl PolicyFetch for &FakeFetch {
        async fn fetch(
            &self,
            _: &str,
            addresses: &[IpAddr],
        ) -> Result<FetchedPolicy, FetchFailure> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(addresses.to_vec());
            }
            Ok(FetchedPolicy {
                status: 200,
                content_type: Some("text/plain".into()),
                location: None,
                body: b"version: STSv1\nmode: enforce\nmx: mx1.d.test\nmax_age: 604800\n".to_vec(),
            })
        }
    }

    const PRIVATE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const PUBLIC_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1));
    const PUBLIC_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0, 0, 0x1111));

    #[tokio::test]
    async fn gather_fetches_only_what_the_rules_ask_for() {
        struct Row {
            name: &'static str,
            sts: Vec<&'static str>,
            host: Result<Vec<IpAddr>, DnsFailure>,
            probe: bool,
            fetched_from: Option<Vec<IpAddr>>,
            outcome: Outcome,
        }
        let rows = [
            Row {
                name: "record, public v4 and v6: both handed over, v4 first",
                sts: vec!["v=STSv1; id=1"],
                host: Ok(vec![PUBLIC_V4, PUBLIC_V6]),
                probe: false,
                fetched_from: Some(vec![PUBLIC_V4, PUBLIC_V6]),
                outcome: Outcome::Valid,
            },
            Row {
                name: "private v4 is filtered out, v6 remains",
                sts: vec!["v=STSv1; id=1"],
                host: Ok(vec![PRIVATE, PUBLIC_V6]),
                probe: false,
                fetched_from: Some(vec![PUBLIC_V6]),
                outcome: Outcome::Valid,
            },
            Row {
                name: "only private: not contacted",
                sts: vec!["v=STSv1; id=1"],
                host: Ok(vec![PRIVATE]),
                probe: false,
                fetched_from: None,
                outcome: Outcome::Invalid,
            },
            Row {
                name: "no record, no probing: no fetch",
                sts: vec![],
                host: Ok(vec![PUBLIC_V4]),
                probe: false,
                fetched_from: None,
                outcome: Outcome::Absent,
            },
            Row {
                name: "no record, probing: fetched",
                sts: vec![],
                host: Ok(vec![PUBLIC_V4]),
                probe: true,
                fetched_from: Some(vec![PUBLIC_V4]),
                outcome: Outcome::Absent,
            },
            Row {
                name: "policy host SERVFAIL: inconclusive, no fetch",
                sts: vec!["v=STSv1; id=1"],
                host: Err(DnsFailure::ServFail),
                probe: false,
                fetched_from: None,
                outcome: Outcome::Error,
            },
        ];
        for row in rows {
            let fetch = FakeFetch::default();
            let validator = Validator::new(
                FakeDns {
                    sts: row.sts,
                    host: row.host,
                },
                &fetch,
                ValidationSettings {
                    probe_policy: row.probe,
                    ..ValidationSettings::default()
                },
            );
            let report = validator
                .check_domain("d.test".into(), "d.test".into(), None)
                .await;
            let calls = fetch.calls.lock().map(|c| c.clone()).unwrap_or_default();
            assert_eq!(calls.first().cloned(), row.fetched_from, "{}", row.name);
            assert!(calls.len() <= 1, "{}: fetched twice", row.name);
            assert_eq!(
                report.outcome, row.outcome,
                "{}: {:?}",
                row.name, report.issues
            );
        }
    }
}
