//! Validated scanner settings, and the one place that turns them into a resolver, an HTTP client
//! and a validator. The library never sees command-line flags: the binary builds this.

use std::num::NonZeroU32;

use crate::net::dns::{DnsClient, DnsSettings};
use crate::net::http::{HttpSettings, ReqwestFetcher};
use crate::net::limit::{Limit, RateLimited};
use crate::validate::{ValidationSettings, Validator};

/// Everything the validator needs to know, already checked.
#[derive(Debug, Clone, Default)]
pub struct ScannerConfig {
    pub dns: DnsSettings,
    pub http: HttpSettings,
    pub validation: ValidationSettings,
    /// DNS queries per second for the whole process (`None`: unlimited).
    pub dns_rate: Option<NonZeroU32>,
    /// Policy fetches per second for the whole process (`None`: unlimited).
    pub https_rate: Option<NonZeroU32>,
}

/// The validator over the real network implementations.
pub type NetValidator = Validator<RateLimited<DnsClient>, RateLimited<ReqwestFetcher>>;

impl ScannerConfig {
    /// Builds the resolver, the HTTP client and the validator.
    pub fn build_validator(&self) -> Result<NetValidator, String> {
        let dns = RateLimited::new(DnsClient::new(&self.dns)?, Limit::per_second(self.dns_rate));
        let fetcher = RateLimited::new(
            ReqwestFetcher::new(self.http.clone())?,
            Limit::per_second(self.https_rate),
        );
        Ok(Validator::new(dns, fetcher, self.validation))
    }

    /// The settings as one line, for run metadata.
    pub fn describe(&self) -> String {
        format!(
            "resolver={} dns_engine={} dns_timeout_ms={} dns_attempts={} dns_retries={} connect_timeout_ms={} total_timeout_ms={} body_cap={} policy_port={} allow_private={} probe_policy={} dns_rate={} https_rate={} trust_store={}",
            self.dns.describe(),
            self.dns.engine.as_str(),
            self.dns.timeout.as_millis(),
            self.dns.attempts,
            self.dns.retries,
            self.http.connect_timeout.as_millis(),
            self.http.total_timeout.as_millis(),
            self.http.body_cap,
            self.http.policy_port,
            self.validation.address_policy.allow_private,
            self.validation.probe_policy,
            self.dns_rate
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
            self.https_rate
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
            self.http.trust_store.as_str(),
        )
    }

    /// The trust anchors the fetch verifies against, exactly (for run metadata and summaries).
    pub fn describe_trust(&self) -> String {
        crate::net::trust::describe(self.http.trust_store, self.http.extra_roots_pem.as_deref())
    }
}
