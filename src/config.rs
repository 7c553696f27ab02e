//! Validated scanner settings, and the one place that turns them into a resolver, an HTTP client
//! and a validator. The library never sees command-line flags: the binary builds this.

use crate::net::dns::{DnsSettings, HickoryDns};
use crate::net::http::{HttpSettings, ReqwestFetcher};
use crate::validate::{ValidationSettings, Validator};

/// Everything the validator needs to know, already checked.
#[derive(Debug, Clone, Default)]
pub struct ScannerConfig {
    pub dns: DnsSettings,
    pub http: HttpSettings,
    pub validation: ValidationSettings,
}

/// The validator over the real network implementations.
pub type NetValidator = Validator<HickoryDns, ReqwestFetcher>;

impl ScannerConfig {
    /// Builds the resolver, the HTTP client and the validator.
    pub fn build_validator(&self) -> Result<NetValidator, String> {
        let dns = HickoryDns::new(&self.dns)?;
        let fetcher = ReqwestFetcher::new(self.http.clone())?;
        Ok(Validator::new(dns, fetcher, self.validation))
    }

    /// The settings as one line, for run metadata.
    pub fn describe(&self) -> String {
        format!(
            "resolver={} dns_timeout_ms={} dns_attempts={} connect_timeout_ms={} total_timeout_ms={} body_cap={} policy_port={} allow_private={} probe_policy={}",
            self.dns.describe(),
            self.dns.timeout.as_millis(),
            self.dns.attempts,
            self.http.connect_timeout.as_millis(),
            self.http.total_timeout.as_millis(),
            self.http.body_cap,
            self.http.policy_port,
            self.validation.address_policy.allow_private,
            self.validation.probe_policy,
        )
    }
}
