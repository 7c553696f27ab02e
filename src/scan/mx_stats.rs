//! Statistics of spec §7 (MX transport security): per-domain delivery facts and the MX-host
//! funnel, as mergeable values like [`super::stats::Statistics`], counted from typed columns
//! (`mx_tls_*`, `mx_uncovered_class`, the MX table's `status`), never from message text.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::mta_sts::mx_class::MxMismatchClass;
use crate::net::smtp::MxStatus;
use crate::output::mx_table::MxRow;
use crate::report::DomainReport;

/// A provider serving at least this many domains of the scan is third-party MX hosting
/// (IMC 2025's rule); the others count as self-managed.
pub const THIRD_PARTY_MIN_DOMAINS: u64 = 50;
/// Most providers tracked; the rest are counted under `(other)`.
const PROVIDERS_MAX: usize = 10_000;
const OTHER: &str = "(other)";

/// TLS state of the domains whose primary MX is run by one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProviderCounts {
    pub domains: u64,
    /// Primary MX `valid`.
    pub valid: u64,
    /// Primary MX with a definite TLS failure.
    pub failed: u64,
    /// Primary MX unreachable or forbidden.
    pub unknown: u64,
}

/// Per-domain facts of spec §7, over the domains whose MX hosts were probed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MxTransportStatistics {
    /// Domains with `mx_probed`.
    pub probed_domains: u64,
    /// Probed domains whose every probed MX is `valid`.
    pub every_mx_valid: u64,
    /// `delivery_at_risk` with an uncovered MX.
    pub at_risk_uncovered: u64,
    /// `delivery_at_risk` with an MX that fails TLS.
    pub at_risk_tls: u64,
    pub delivery_blocked: u64,
    /// Uncovered MX hosts per mismatch class, indexed like [`MxMismatchClass::ALL`] (with or
    /// without the probe).
    pub mismatch_classes: [u64; 4],
    /// By the registrable domain (Public Suffix List) of the primary MX host.
    pub providers: BTreeMap<String, ProviderCounts>,
}

/// The registrable domain of an MX host by the Public Suffix List (`mail.protection.outlook.com`
/// → `outlook.com`), or the host itself when it has none.
pub fn mx_provider(host: &str) -> &str {
    let host = host.strip_suffix('.').unwrap_or(host);
    psl::domain_str(host).unwrap_or(host)
}

impl MxTransportStatistics {
    /// Counts one result row.
    pub fn add(&mut self, report: &DomainReport) {
        for class in &report.mx_uncovered_class {
            if let Some(index) = MxMismatchClass::ALL.iter().position(|c| c == class) {
                self.mismatch_classes[index] += 1;
            }
        }
        if !report.mx_probed {
            return;
        }
        self.probed_domains += 1;
        let all_valid = !report.mx_tls_valid.is_empty()
            && report.mx_tls_failed.is_empty()
            && report.mx_tls_unknown.is_empty();
        self.every_mx_valid += u64::from(all_valid);
        if report.delivery_at_risk {
            self.at_risk_uncovered += u64::from(!report.mx_uncovered.is_empty());
            self.at_risk_tls += u64::from(!report.mx_tls_failed.is_empty());
        }
        self.delivery_blocked += u64::from(report.delivery_blocked);
        let Some(primary) = report.mx_hosts.first() else {
            return;
        };
        let primary = primary.strip_suffix('.').unwrap_or(primary);
        let is = |list: &[String]| list.iter().any(|h| h.eq_ignore_ascii_case(primary));
        // `mx_tls_failed` items are `host status` (spec §7).
        let failed = report.mx_tls_failed.iter().any(|item| {
            item.split_once(' ')
                .is_some_and(|(host, _)| host.eq_ignore_ascii_case(primary))
        });
        let counts = ProviderCounts {
            domains: 1,
            valid: u64::from(is(&report.mx_tls_valid)),
            failed: u64::from(failed),
            unknown: u64::from(is(&report.mx_tls_unknown)),
        };
        self.add_provider(mx_provider(primary), &counts);
    }

    fn add_provider(&mut self, provider: &str, counts: &ProviderCounts) {
        let key = if self.providers.contains_key(provider) || self.providers.len() < PROVIDERS_MAX {
            provider
        } else {
            OTHER
        };
        let entry = self.providers.entry(key.to_owned()).or_default();
        entry.domains += counts.domains;
        entry.valid += counts.valid;
        entry.failed += counts.failed;
        entry.unknown += counts.unknown;
    }

    /// The top `n` providers by domains served.
    pub fn top_providers(&self, n: usize) -> Vec<(&str, ProviderCounts)> {
        let mut all: Vec<(&str, ProviderCounts)> = self
            .providers
            .iter()
            .filter(|(name, _)| name.as_str() != OTHER)
            .map(|(name, counts)| (name.as_str(), *counts))
            .collect();
        all.sort_by(|a, b| b.1.domains.cmp(&a.1.domains).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    /// Domains whose primary MX provider serves at least [`THIRD_PARTY_MIN_DOMAINS`] domains of
    /// the scan (third-party), and the rest (self-managed).
    pub fn hosting(&self) -> (u64, u64) {
        let third_party: u64 = self
            .providers
            .iter()
            .filter(|(name, c)| name.as_str() != OTHER && c.domains >= THIRD_PARTY_MIN_DOMAINS)
            .map(|(_, c)| c.domains)
            .sum();
        let all: u64 = self.providers.values().map(|c| c.domains).sum();
        (all - third_party, third_party)
    }
}

impl std::ops::AddAssign<&MxTransportStatistics> for MxTransportStatistics {
    fn add_assign(&mut self, other: &MxTransportStatistics) {
        self.probed_domains += other.probed_domains;
        self.every_mx_valid += other.every_mx_valid;
        self.at_risk_uncovered += other.at_risk_uncovered;
        self.at_risk_tls += other.at_risk_tls;
        self.delivery_blocked += other.delivery_blocked;
        for (mine, theirs) in self.mismatch_classes.iter_mut().zip(other.mismatch_classes) {
            *mine += theirs;
        }
        for (provider, counts) in &other.providers {
            self.add_provider(provider, counts);
        }
    }
}

/// The MX-host funnel of spec §7 over probed MX hosts (rows of the MX table): connected →
/// STARTTLS offered → handshake → certificate valid, with the statuses that stopped each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MxHostStatistics {
    pub hosts: u64,
    /// A greeting was received.
    pub connected: u64,
    pub starttls_offered: u64,
    /// The TLS handshake completed (a protocol version was negotiated).
    pub handshake: u64,
    pub certificate_valid: u64,
    /// Hosts per status, indexed like [`MxStatus::ALL`].
    pub by_status: [u64; 9],
}

impl MxHostStatistics {
    /// Counts one row of the MX table.
    pub fn add(&mut self, row: &MxRow) {
        self.hosts += 1;
        self.connected += u64::from(row.banner.is_some());
        self.starttls_offered += u64::from(row.starttls);
        self.handshake += u64::from(row.tls_version.is_some());
        if let Some(status) = MxStatus::ALL.iter().position(|s| s.as_str() == row.status) {
            self.by_status[status] += 1;
            self.certificate_valid += u64::from(MxStatus::ALL[status] == MxStatus::Valid);
        }
    }
}

impl std::ops::AddAssign<&MxHostStatistics> for MxHostStatistics {
    fn add_assign(&mut self, other: &MxHostStatistics) {
        self.hosts += other.hosts;
        self.connected += other.connected;
        self.starttls_offered += other.starttls_offered;
        self.handshake += other.handshake;
        self.certificate_valid += other.certificate_valid;
        for (mine, theirs) in self.by_status.iter_mut().zip(other.by_status) {
            *mine += theirs;
        }
    }
}

/// The summary section of spec §7.
#[derive(Debug, Serialize)]
pub struct MxTransportSummary {
    pub probed_domains: u64,
    pub every_mx_valid: u64,
    pub delivery_at_risk_by_cause: BTreeMap<&'static str, u64>,
    pub delivery_blocked: u64,
    pub top_mx_providers: Vec<ProviderSummary>,
    pub mx_hosting: BTreeMap<&'static str, u64>,
    pub mismatch_classes: BTreeMap<&'static str, u64>,
    pub mx_host_funnel: Option<MxFunnelSummary>,
}

#[derive(Debug, Serialize)]
pub struct ProviderSummary {
    pub provider: String,
    #[serde(flatten)]
    pub counts: ProviderCounts,
}

#[derive(Debug, Serialize)]
pub struct MxFunnelSummary {
    pub hosts: u64,
    pub connected: u64,
    pub starttls_offered: u64,
    pub handshake: u64,
    pub certificate_valid: u64,
    pub by_status: BTreeMap<&'static str, u64>,
}

/// The §7 summary section from both values.
pub fn summarise(domains: &MxTransportStatistics, hosts: &MxHostStatistics) -> MxTransportSummary {
    let (self_managed, third_party) = domains.hosting();
    MxTransportSummary {
        probed_domains: domains.probed_domains,
        every_mx_valid: domains.every_mx_valid,
        delivery_at_risk_by_cause: [
            ("uncovered", domains.at_risk_uncovered),
            ("tls", domains.at_risk_tls),
        ]
        .into_iter()
        .collect(),
        delivery_blocked: domains.delivery_blocked,
        top_mx_providers: domains
            .top_providers(10)
            .into_iter()
            .map(|(provider, counts)| ProviderSummary {
                provider: provider.to_owned(),
                counts,
            })
            .collect(),
        mx_hosting: [("self_managed", self_managed), ("third_party", third_party)]
            .into_iter()
            .collect(),
        mismatch_classes: MxMismatchClass::ALL
            .iter()
            .zip(domains.mismatch_classes)
            .map(|(class, n)| (class.as_str(), n))
            .collect(),
        mx_host_funnel: (hosts.hosts > 0).then(|| MxFunnelSummary {
            hosts: hosts.hosts,
            connected: hosts.connected,
            starttls_offered: hosts.starttls_offered,
            handshake: hosts.handshake,
            certificate_valid: hosts.certificate_valid,
            by_status: MxStatus::ALL
                .iter()
                .zip(hosts.by_status)
                .map(|(status, n)| (status.as_str(), n))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_registrable_domains_by_the_public_suffix_list() {
        for (host, provider) in [
            ("mail.protection.outlook.com", "outlook.com"),
            ("aspmx.l.google.com.", "google.com"),
            ("mx1.example.co.uk", "example.co.uk"),
            ("mx.mail.example.com.au", "example.com.au"),
            ("valid.mx.test", "mx.test"),
        ] {
            assert_eq!(mx_provider(host), provider, "{host}");
        }
    }

    fn probed(primary: &str, valid: bool) -> DomainReport {
        let mut report = DomainReport::new("d.test".into(), String::new(), None);
        report.mx_probed = true;
        report.mx_hosts = vec![primary.to_owned()];
        if valid {
            report.mx_tls_valid = vec![primary.to_owned()];
        } else {
            report.mx_tls_failed = vec![format!("{primary} cert_expired")];
        }
        report
    }

    #[test]
    fn domains_split_by_provider_hosting_and_cause() {
        let mut stats = MxTransportStatistics::default();
        for n in 0..60 {
            stats.add(&probed(&format!("mx{n}.mail.bigmail.com"), true));
        }
        let mut blocked = probed("mx.small.example", false);
        blocked.delivery_at_risk = true;
        blocked.delivery_blocked = true;
        blocked.mx_uncovered = vec!["mx.small.example".into()];
        blocked.mx_uncovered_class = vec![MxMismatchClass::Typo];
        stats.add(&blocked);
        assert_eq!(stats.probed_domains, 61);
        assert_eq!(stats.every_mx_valid, 60);
        assert_eq!((stats.at_risk_uncovered, stats.at_risk_tls), (1, 1));
        assert_eq!(stats.delivery_blocked, 1);
        assert_eq!(stats.mismatch_classes, [0, 0, 1, 0]);
        assert_eq!(stats.hosting(), (1, 60));
        let top = stats.top_providers(10);
        assert_eq!(top[0].0, "bigmail.com");
        assert_eq!(top[0].1.valid, 60);
        assert_eq!(top[1].1.failed, 1);
        // Merging halves gives the whole.
        let mut merged = MxTransportStatistics::default();
        merged += &stats;
        merged += &MxTransportStatistics::default();
        assert_eq!(merged, stats);
    }
}
