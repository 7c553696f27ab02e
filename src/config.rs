//! Validated scanner settings, and the one place that turns them into a resolver, an HTTP client
//! and a validator. The library never sees command-line flags: the binary builds this.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

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
    /// Spec §7: probe every MX host over SMTP (`--probe-mx`); `None`: off, the default.
    pub mx_probe: Option<MxProbeSettings>,
}

/// Settings of the MX probe (spec §7), already checked.
#[derive(Debug, Clone)]
pub struct MxProbeSettings {
    /// The name sent in EHLO.
    pub ehlo_name: String,
    /// The whole SMTP exchange after the TCP connection.
    pub smtp_timeout: Duration,
    /// 25; other values are for labs and tests only.
    pub port: u16,
    /// Connections open at once to one address.
    pub per_ip: usize,
    /// New SMTP connections per second for the whole scan (`None`: unlimited).
    pub rate: Option<NonZeroU32>,
    /// Most MX hosts whose results are kept (`None`: all, as a scan's MX table needs); a
    /// long-running server bounds it so memory stays flat and old results are re-probed.
    pub cache_hosts: Option<usize>,
}

impl Default for MxProbeSettings {
    fn default() -> Self {
        MxProbeSettings {
            ehlo_name: "localhost".to_owned(),
            smtp_timeout: crate::net::smtp::DEFAULT_SMTP_TIMEOUT,
            port: crate::net::smtp::SMTP_PORT,
            per_ip: crate::scan::mx_cache::DEFAULT_SMTP_PER_IP,
            rate: NonZeroU32::new(20),
            cache_hosts: None,
        }
    }
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
        let validator = Validator::new(dns, fetcher, self.validation);
        Ok(match &self.mx_probe {
            Some(settings) => validator.with_mx_check(self.build_mx_check(settings)?),
            None => validator,
        })
    }

    /// The SMTP prober behind the per-scan cache and the politeness limits.
    fn build_mx_check(
        &self,
        settings: &MxProbeSettings,
    ) -> Result<Arc<dyn crate::validate::MxCheck>, String> {
        use crate::net::smtp::{SmtpProbeConfig, SmtpProber};
        use crate::scan::mx_cache::{MxProbeCache, Politeness};
        let roots = crate::net::trust::root_store(
            self.http.trust_store,
            self.http.extra_roots_pem.as_deref(),
        )?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config =
            SmtpProbeConfig::new(settings.ehlo_name.clone(), Arc::new(roots), provider);
        config.port = settings.port;
        config.connect_timeout = self.http.connect_timeout;
        config.smtp_timeout = settings.smtp_timeout;
        config.address_policy = self.validation.address_policy;
        let prober = SmtpProber::new(config)?
            .with_gate(Arc::new(Politeness::new(settings.per_ip, settings.rate)));
        let cache = MxProbeCache::new(prober);
        Ok(Arc::new(match settings.cache_hosts {
            Some(hosts) => cache.with_capacity(hosts),
            None => cache,
        }))
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
        ) + &match &self.mx_probe {
            Some(mx) => format!(
                " probe_mx=true max_mx_probed={} smtp_timeout_ms={} smtp_port={} smtp_per_ip={} smtp_rate={} ehlo_name={}",
                self.validation.max_mx_probed,
                mx.smtp_timeout.as_millis(),
                mx.port,
                mx.per_ip,
                mx.rate
                    .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
                mx.ehlo_name
            ),
            None => " probe_mx=false".to_owned(),
        }
    }

    /// The trust anchors the fetch verifies against, exactly (for run metadata and summaries).
    pub fn describe_trust(&self) -> String {
        crate::net::trust::describe(self.http.trust_store, self.http.extra_roots_pem.as_deref())
    }
}
