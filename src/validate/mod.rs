//! The per-domain validator: gathers the typed facts of spec §1 through the network traits
//! ([`Validator::gather`], the only I/O), then applies the rules of §2–§4 with the pure
//! [`decide()`], which table tests drive without sockets.

mod decide;
pub mod facts;

use std::net::IpAddr;
use std::time::Instant;

pub use decide::{MAX_AGE_LIMIT, MAX_AGE_SHORT_ENFORCE, MAX_AGE_SHORT_TESTING, decide};
use facts::{DomainFacts, FetchAttempt, PolicyFacts};

use crate::mta_sts::record::{StsRecordVerdict, evaluate_sts_records};
use crate::net::address::AddressPolicy;
use crate::net::{Dns, NameStatus, PolicyFetch};
use crate::report::{DomainReport, now_millis};

/// What the validator may do, beyond the lookups every domain gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationSettings {
    /// Which addresses the policy fetch may connect to.
    pub address_policy: AddressPolicy,
    /// Fetch the policy even without a TXT record (to find `policy_without_record`).
    pub probe_policy: bool,
}

/// Validates domains with one DNS and one HTTPS implementation.
pub struct Validator<D, F> {
    dns: D,
    fetcher: F,
    settings: ValidationSettings,
}

impl<D: Dns, F: PolicyFetch> Validator<D, F> {
    pub fn new(dns: D, fetcher: F, settings: ValidationSettings) -> Self {
        Validator {
            dns,
            fetcher,
            settings,
        }
    }

    /// Validates one input value: normalises it, then checks the domain.
    pub async fn check_input(&self, input: &str, rank: Option<i64>) -> DomainReport {
        match crate::domain::normalize_domain(input) {
            Ok(domain) => self.check_domain(domain, input.to_owned(), rank).await,
            Err(error) => DomainReport::input_error(input.to_owned(), rank, error.to_string()),
        }
    }

    /// Checks a normalised domain (spec §1–§4): the facts, then the decision.
    pub async fn check_domain(
        &self,
        domain: String,
        input: String,
        rank: Option<i64>,
    ) -> DomainReport {
        decide(self.gather(domain, input, rank).await)
    }

    /// Runs the lookups of spec §1 and records what they returned, deciding nothing but which
    /// lookups are needed.
    pub async fn gather(&self, domain: String, input: String, rank: Option<i64>) -> DomainFacts {
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
        let policy = if exists && (record_present || probing) {
            Some(self.gather_policy(&domain, probing).await)
        } else {
            None
        };
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
        }
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
