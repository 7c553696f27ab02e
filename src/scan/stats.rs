//! Aggregate adoption statistics (spec §6): a plain value that counts rows, merges with `+=`
//! (shards, earlier scans), and renders as JSON and as a table.
//!
//! Counting is allocation-free for known keys; the maps keyed by open-ended text (TLDs,
//! delegation targets, error causes) are capped so memory stays bounded on any input.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::issues::IssueCode;
use crate::mta_sts::policy::Mode;
use crate::net::{FetchOutcome, Lookup};
use crate::output::mx_table::MxRow;
use crate::report::{DomainReport, Outcome};
use crate::scan::mx_stats::{MxHostStatistics, MxTransportStatistics, MxTransportSummary};

/// Most distinct keys kept in an open-ended map; later keys count under "(other)".
const MAP_LIMIT: usize = 10_000;
const OTHER: &str = "(other)";

/// Counts of one group of domains (a TLD, a rank bin).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    pub domains: u64,
    pub with_mx: u64,
    pub mta_sts: u64,
    pub valid: u64,
    pub enforce: u64,
}

impl GroupCounts {
    fn add(&mut self, row: &RowFacts) {
        self.domains += 1;
        self.with_mx += u64::from(row.with_mx);
        self.mta_sts += u64::from(row.has_mta_sts);
        self.valid += u64::from(row.valid);
        self.enforce += u64::from(row.enforce);
    }

    fn merge(&mut self, other: &GroupCounts) {
        self.domains += other.domains;
        self.with_mx += other.with_mx;
        self.mta_sts += other.mta_sts;
        self.valid += other.valid;
        self.enforce += other.enforce;
    }
}

/// The facts of one row the statistics use.
struct RowFacts {
    with_mx: bool,
    has_mta_sts: bool,
    valid: bool,
    enforce: bool,
}

/// Log-scale rank bins: the labels, and the inclusive upper bounds (rank 1000 is in the top 1k).
pub const RANK_BINS: [(&str, i64); 6] = [
    ("1-1k", 1_000),
    ("1k-10k", 10_000),
    ("10k-100k", 100_000),
    ("100k-1M", 1_000_000),
    ("1M-10M", 10_000_000),
    (">10M", i64::MAX),
];

/// Everything counted over a set of result rows. Merge with `+=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statistics {
    pub rows: u64,
    /// Indexed like [`Outcome::ALL`].
    pub outcomes: [u64; 5],
    pub existing: u64,
    pub with_mx: u64,
    pub mta_sts: u64,
    pub mta_sts_with_mx: u64,
    pub valid: u64,
    pub valid_with_mx: u64,
    /// Among valid policies: enforce, testing, none.
    pub modes: [u64; 3],
    /// Among fetched policies: <1 day, 1 day–<1 week, 1 week–1 year, invalid.
    pub max_age: [u64; 4],
    pub funnel: Funnel,
    /// Domains carrying each code, indexed like [`IssueCode::ALL`].
    pub issues: Vec<u64>,
    pub delivery_at_risk: u64,
    /// Among domains with MX: (MTA-STS, TLS-RPT) = (yes,yes), (yes,no), (no,yes), (no,no).
    pub sts_by_tlsrpt: [u64; 4],
    pub tlsrpt_with_mx: u64,
    pub tlsrpt_with_sts: u64,
    /// Denominators: domains whose `_smtp._tls` lookup completed (with MX / with MTA-STS).
    pub tlsrpt_known_with_mx: u64,
    pub tlsrpt_known_with_sts: u64,
    /// Rows with at least one failed lookup.
    pub lookup_failures: u64,
    pub error_causes: BTreeMap<String, u64>,
    pub by_tld: BTreeMap<String, GroupCounts>,
    /// Indexed like [`RANK_BINS`].
    pub by_rank: [GroupCounts; 6],
    pub ranked: u64,
    pub self_hosted: u64,
    pub delegated: u64,
    /// Delegated domains per provider ([`provider_of`] the CNAME target).
    pub delegation_targets: BTreeMap<String, u64>,
    /// Spec §7 per-domain facts (MX probe, mismatch classes).
    pub mx: MxTransportStatistics,
    /// Spec §7 MX-host funnel, from the MX table (the scan's probes, or `stats --mx-table`).
    pub mx_hosts: MxHostStatistics,
    /// Earliest and latest `scanned_at` (ms), for summaries recomputed from files.
    pub first_scanned_at: Option<i64>,
    pub last_scanned_at: Option<i64>,
}

/// Where policy fetches of domains with an MTA-STS record failed (RFC 8461 §3.3 order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    /// Domains with a record, whose policy was fetched.
    pub attempted: u64,
    /// `mta-sts.D` did not resolve, or only to forbidden addresses.
    pub dns_failed: u64,
    pub tcp_failed: u64,
    pub tls_failed: u64,
    pub timed_out: u64,
    /// Redirects, other statuses, oversized bodies.
    pub http_failed: u64,
    /// Fetched, but the policy breaks a MUST of §3.2.
    pub syntax_failed: u64,
    /// Fetched and parsed without a MUST violation.
    pub usable: u64,
}

impl Statistics {
    pub fn new() -> Self {
        Statistics {
            issues: vec![0; IssueCode::ALL.len()],
            ..Statistics::default()
        }
    }

    /// Counts one result row.
    pub fn add(&mut self, report: &DomainReport) {
        if self.issues.len() != IssueCode::ALL.len() {
            self.issues.resize(IssueCode::ALL.len(), 0);
        }
        self.rows += 1;
        self.outcomes[outcome_index(report.outcome)] += 1;
        if report.scanned_at > 0 {
            self.first_scanned_at = Some(
                self.first_scanned_at
                    .map_or(report.scanned_at, |t| t.min(report.scanned_at)),
            );
            self.last_scanned_at = Some(
                self.last_scanned_at
                    .map_or(report.scanned_at, |t| t.max(report.scanned_at)),
            );
        }
        // Domains per code, not occurrences: a row with three uncovered MX hosts counts once.
        let mut seen = [0u64; IssueCode::ALL.len().div_ceil(64)];
        for issue in &report.issues {
            let index = issue.code as usize;
            let (word, bit) = (index / 64, 1u64 << (index % 64));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                self.issues[index] += 1;
            }
        }
        if report.outcome == Outcome::InputError {
            return;
        }
        self.mx.add(report);
        let nxdomain = report.has_issue(IssueCode::DomainNxdomain);
        let with_mx = !report.mx_hosts.is_empty();
        let valid = report.outcome == Outcome::Valid;
        let facts = RowFacts {
            with_mx,
            has_mta_sts: report.has_mta_sts,
            valid,
            enforce: valid && report.mode == Some(Mode::Enforce),
        };
        self.existing += u64::from(!nxdomain);
        self.with_mx += u64::from(with_mx);
        self.mta_sts += u64::from(report.has_mta_sts);
        self.mta_sts_with_mx += u64::from(report.has_mta_sts && with_mx);
        self.valid += u64::from(valid);
        self.valid_with_mx += u64::from(valid && with_mx);
        if valid && let Some(mode) = report.mode {
            self.modes[mode_index(mode)] += 1;
        }
        if report.policy_sha256.is_some() {
            let bucket = if report.has_issue(IssueCode::PolicyMaxAgeInvalid) {
                Some(3)
            } else {
                report.max_age.map(|age| match age {
                    0..86_400 => 0,
                    86_400..604_800 => 1,
                    _ => 2,
                })
            };
            if let Some(bucket) = bucket {
                self.max_age[bucket] += 1;
            }
        }
        if report.has_mta_sts {
            self.count_funnel(report);
        }
        self.delivery_at_risk += u64::from(report.delivery_at_risk);
        // A failed _smtp._tls lookup is unknown, not "no": it leaves both numerator and denominator.
        let tlsrpt_known = !report.lookup_failed(Lookup::TlsRptTxt);
        if with_mx && tlsrpt_known {
            self.tlsrpt_known_with_mx += 1;
            let cell = match (report.has_mta_sts, report.tls_rpt) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            self.sts_by_tlsrpt[cell] += 1;
            self.tlsrpt_with_mx += u64::from(report.tls_rpt);
        }
        if tlsrpt_known && report.has_mta_sts {
            self.tlsrpt_known_with_sts += 1;
            self.tlsrpt_with_sts += u64::from(report.tls_rpt);
        }
        self.count_failures(report);
        if let Some(tld) = report.domain.rsplit('.').next().filter(|t| !t.is_empty()) {
            count_group(&mut self.by_tld, tld, &facts);
        }
        if let Some(rank) = report.rank {
            self.ranked += 1;
            let bin = RANK_BINS
                .iter()
                .position(|(_, upper)| rank <= *upper)
                .unwrap_or(RANK_BINS.len() - 1);
            self.by_rank[bin].add(&facts);
        }
        if report.has_mta_sts {
            match report
                .policy_host_cname
                .as_deref()
                .or(report.sts_record_cname.as_deref())
            {
                Some(target) => {
                    self.delegated += 1;
                    count_key(&mut self.delegation_targets, provider_of(target), 1);
                }
                None => self.self_hosted += 1,
            }
        }
    }

    /// The fetch funnel, from the typed [`FetchOutcome`] of each domain with a record.
    fn count_funnel(&mut self, report: &DomainReport) {
        use IssueCode::*;
        let Some(outcome) = report.policy_fetch else {
            return;
        };
        let funnel = &mut self.funnel;
        funnel.attempted += 1;
        match outcome {
            FetchOutcome::DnsFailed | FetchOutcome::NoAddress | FetchOutcome::AddressForbidden => {
                funnel.dns_failed += 1
            }
            FetchOutcome::ConnectFailed => funnel.tcp_failed += 1,
            FetchOutcome::TlsFailed => funnel.tls_failed += 1,
            FetchOutcome::Timeout => funnel.timed_out += 1,
            FetchOutcome::ProtocolError
            | FetchOutcome::Redirect
            | FetchOutcome::HttpStatus
            | FetchOutcome::TooLarge => funnel.http_failed += 1,
            FetchOutcome::Fetched => {
                let broken = [
                    PolicySyntax,
                    PolicyVersionInvalid,
                    PolicyModeInvalid,
                    PolicyMaxAgeInvalid,
                    PolicyMxMissing,
                    PolicyMxInvalid,
                ]
                .iter()
                .any(|code| report.has_issue(*code));
                if broken {
                    funnel.syntax_failed += 1;
                } else {
                    funnel.usable += 1;
                }
            }
        }
    }

    /// Lookups that failed, by lookup and kind, from the typed `lookup_failures` facts.
    fn count_failures(&mut self, report: &DomainReport) {
        let timed_out = report.has_issue(IssueCode::DomainTimeout);
        if report.lookup_failures.is_empty() && !timed_out {
            return;
        }
        self.lookup_failures += 1;
        for failure in &report.lookup_failures {
            count_key(&mut self.error_causes, failure.as_str(), 1);
        }
        if timed_out {
            count_key(&mut self.error_causes, "domain_timeout", 1);
        }
    }

    /// Counts one row of the MX table (spec §7).
    pub fn add_mx_row(&mut self, row: &MxRow) {
        self.mx_hosts.add(row);
    }

    /// How many rows carry `code`.
    pub fn issue_count(&self, code: IssueCode) -> u64 {
        self.issues.get(code as usize).copied().unwrap_or(0)
    }

    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome_index(outcome)]
    }
}

impl std::ops::AddAssign<&Statistics> for Statistics {
    fn add_assign(&mut self, other: &Statistics) {
        self.rows += other.rows;
        add_arrays(&mut self.outcomes, &other.outcomes);
        self.existing += other.existing;
        self.with_mx += other.with_mx;
        self.mta_sts += other.mta_sts;
        self.mta_sts_with_mx += other.mta_sts_with_mx;
        self.valid += other.valid;
        self.valid_with_mx += other.valid_with_mx;
        add_arrays(&mut self.modes, &other.modes);
        add_arrays(&mut self.max_age, &other.max_age);
        let (f, o) = (&mut self.funnel, &other.funnel);
        f.attempted += o.attempted;
        f.dns_failed += o.dns_failed;
        f.tcp_failed += o.tcp_failed;
        f.tls_failed += o.tls_failed;
        f.timed_out += o.timed_out;
        f.http_failed += o.http_failed;
        f.syntax_failed += o.syntax_failed;
        f.usable += o.usable;
        if self.issues.len() < other.issues.len() {
            self.issues.resize(other.issues.len(), 0);
        }
        add_arrays(&mut self.issues, &other.issues);
        self.delivery_at_risk += other.delivery_at_risk;
        add_arrays(&mut self.sts_by_tlsrpt, &other.sts_by_tlsrpt);
        self.tlsrpt_with_mx += other.tlsrpt_with_mx;
        self.tlsrpt_with_sts += other.tlsrpt_with_sts;
        self.tlsrpt_known_with_mx += other.tlsrpt_known_with_mx;
        self.tlsrpt_known_with_sts += other.tlsrpt_known_with_sts;
        self.lookup_failures += other.lookup_failures;
        for (cause, count) in &other.error_causes {
            count_key(&mut self.error_causes, cause, *count);
        }
        for (tld, counts) in &other.by_tld {
            merge_group(&mut self.by_tld, tld, counts);
        }
        for (mine, theirs) in self.by_rank.iter_mut().zip(&other.by_rank) {
            mine.merge(theirs);
        }
        self.ranked += other.ranked;
        self.self_hosted += other.self_hosted;
        self.delegated += other.delegated;
        for (target, count) in &other.delegation_targets {
            count_key(&mut self.delegation_targets, target, *count);
        }
        self.mx += &other.mx;
        self.mx_hosts += &other.mx_hosts;
        self.first_scanned_at = min_option(self.first_scanned_at, other.first_scanned_at, i64::min);
        self.last_scanned_at = min_option(self.last_scanned_at, other.last_scanned_at, i64::max);
    }
}

fn min_option(a: Option<i64>, b: Option<i64>, pick: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

fn add_arrays(mine: &mut [u64], theirs: &[u64]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

fn count_key(map: &mut BTreeMap<String, u64>, key: &str, count: u64) {
    if let Some(existing) = map.get_mut(key) {
        *existing += count;
    } else if map.len() < MAP_LIMIT {
        map.insert(key.to_owned(), count);
    } else {
        *map.entry(OTHER.to_owned()).or_insert(0) += count;
    }
}

fn count_group(map: &mut BTreeMap<String, GroupCounts>, key: &str, facts: &RowFacts) {
    if let Some(existing) = map.get_mut(key) {
        existing.add(facts);
    } else {
        let key = if map.len() < MAP_LIMIT { key } else { OTHER };
        map.entry(key.to_owned()).or_default().add(facts);
    }
}

fn merge_group(map: &mut BTreeMap<String, GroupCounts>, key: &str, counts: &GroupCounts) {
    if let Some(existing) = map.get_mut(key) {
        existing.merge(counts);
    } else {
        let key = if map.len() < MAP_LIMIT { key } else { OTHER };
        map.entry(key.to_owned()).or_default().merge(counts);
    }
}

/// The provider behind a delegation target: its registrable domain, approximated as the last
/// two labels, or three under a two-letter country code with a short second level (`co.uk`).
/// Hosted MTA-STS gives each customer its own target, so the full name would count each once.
pub fn provider_of(target: &str) -> &str {
    let labels: Vec<usize> = target.match_indices('.').map(|(i, _)| i).collect();
    let keep = match labels.as_slice() {
        [.., a, b] => {
            let tld = &target[b + 1..];
            let second = &target[a + 1..*b];
            if tld.len() == 2 && second.len() <= 3 && labels.len() >= 3 {
                3
            } else {
                2
            }
        }
        _ => return target,
    };
    match labels.len().checked_sub(keep) {
        Some(index) => &target[labels[index] + 1..],
        None => target,
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Valid => 0,
        Outcome::Invalid => 1,
        Outcome::Absent => 2,
        Outcome::Error => 3,
        Outcome::InputError => 4,
    }
}

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Enforce => 0,
        Mode::Testing => 1,
        Mode::None => 2,
    }
}

/// Run metadata for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    pub tool_version: String,
    pub input: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub wall_seconds: Option<f64>,
    pub domains_per_second: Option<f64>,
    pub resolver: Option<String>,
    pub settings: Option<String>,
    /// The certificate trust store and its version.
    pub trust_store: Option<String>,
    /// True when the scan was interrupted before the end of its input.
    pub interrupted: bool,
}

#[derive(Serialize)]
struct Share {
    count: u64,
    of: u64,
    percent: Option<f64>,
}

fn share(count: u64, of: u64) -> Share {
    Share {
        count,
        of,
        percent: (of > 0).then(|| (count as f64 * 10_000.0 / of as f64).round() / 100.0),
    }
}

#[derive(Serialize)]
struct Named<T: Serialize> {
    name: String,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct Counted {
    count: u64,
}

/// The summary document: run metadata plus every figure of spec §6.
#[derive(Serialize)]
pub struct Summary<'a> {
    run: &'a RunInfo,
    rows: u64,
    outcomes: BTreeMap<&'static str, u64>,
    domains_existing: u64,
    domains_with_mx: u64,
    mta_sts: MtaStsAdoption,
    modes: BTreeMap<&'static str, u64>,
    max_age: BTreeMap<&'static str, u64>,
    policy_fetch_funnel: Funnel,
    issues: BTreeMap<&'static str, u64>,
    delivery_at_risk: u64,
    tls_rpt: TlsRptAdoption,
    lookup_errors: LookupErrors,
    by_tld_top20: Vec<Named<GroupCounts>>,
    by_rank: Vec<Named<GroupCounts>>,
    policy_hosting: Hosting,
    /// Spec §7: MX transport security (probe figures are zero without `--probe-mx`).
    mx_transport: MxTransportSummary,
}

#[derive(Serialize)]
struct MtaStsAdoption {
    records: u64,
    valid_policies: u64,
    records_among_mx_domains: Share,
    valid_among_mx_domains: Share,
}

#[derive(Serialize)]
struct TlsRptAdoption {
    among_mx_domains: Share,
    among_mta_sts_domains: Share,
    /// Among domains with MX.
    mta_sts_and_tls_rpt: u64,
    mta_sts_only: u64,
    tls_rpt_only: u64,
    neither: u64,
}

#[derive(Serialize)]
struct LookupErrors {
    domains: Share,
    top_causes: Vec<Named<Counted>>,
}

#[derive(Serialize)]
struct Hosting {
    self_hosted: u64,
    delegated: u64,
    /// Providers (registrable domain of the CNAME target), by domains delegated to them.
    top10_providers: Vec<Named<Counted>>,
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<Named<Counted>> {
    let mut all: Vec<_> = map.iter().collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    all.into_iter()
        .take(n)
        .map(|(name, count)| Named {
            name: name.clone(),
            value: Counted { count: *count },
        })
        .collect()
}

impl Statistics {
    /// The summary document for these statistics.
    pub fn summary<'a>(&self, run: &'a RunInfo) -> Summary<'a> {
        let mut tlds: Vec<_> = self.by_tld.iter().collect();
        tlds.sort_by(|a, b| b.1.domains.cmp(&a.1.domains).then(a.0.cmp(b.0)));
        Summary {
            run,
            rows: self.rows,
            outcomes: Outcome::ALL
                .iter()
                .map(|o| (o.as_str(), self.outcome_count(*o)))
                .collect(),
            domains_existing: self.existing,
            domains_with_mx: self.with_mx,
            mta_sts: MtaStsAdoption {
                records: self.mta_sts,
                valid_policies: self.valid,
                records_among_mx_domains: share(self.mta_sts_with_mx, self.with_mx),
                valid_among_mx_domains: share(self.valid_with_mx, self.with_mx),
            },
            modes: [
                ("enforce", self.modes[0]),
                ("testing", self.modes[1]),
                ("none", self.modes[2]),
            ]
            .into_iter()
            .collect(),
            max_age: [
                ("under_1_day", self.max_age[0]),
                ("1_day_to_1_week", self.max_age[1]),
                ("1_week_to_1_year", self.max_age[2]),
                ("invalid", self.max_age[3]),
            ]
            .into_iter()
            .collect(),
            policy_fetch_funnel: self.funnel,
            issues: IssueCode::ALL
                .iter()
                .map(|c| (c.as_str(), self.issue_count(*c)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            delivery_at_risk: self.delivery_at_risk,
            tls_rpt: TlsRptAdoption {
                among_mx_domains: share(self.tlsrpt_with_mx, self.tlsrpt_known_with_mx),
                among_mta_sts_domains: share(self.tlsrpt_with_sts, self.tlsrpt_known_with_sts),
                mta_sts_and_tls_rpt: self.sts_by_tlsrpt[0],
                mta_sts_only: self.sts_by_tlsrpt[1],
                tls_rpt_only: self.sts_by_tlsrpt[2],
                neither: self.sts_by_tlsrpt[3],
            },
            lookup_errors: LookupErrors {
                domains: share(self.lookup_failures, self.rows - self.outcomes[4]),
                top_causes: top(&self.error_causes, 10),
            },
            by_tld_top20: tlds
                .into_iter()
                .take(20)
                .map(|(name, counts)| Named {
                    name: name.clone(),
                    value: *counts,
                })
                .collect(),
            by_rank: RANK_BINS
                .iter()
                .zip(&self.by_rank)
                .filter(|(_, counts)| counts.domains > 0)
                .map(|((label, _), counts)| Named {
                    name: (*label).to_owned(),
                    value: *counts,
                })
                .collect(),
            policy_hosting: Hosting {
                self_hosted: self.self_hosted,
                delegated: self.delegated,
                top10_providers: top(&self.delegation_targets, 10),
            },
            mx_transport: crate::scan::mx_stats::summarise(&self.mx, &self.mx_hosts),
        }
    }

    /// The summary as a table for a person (stderr at the end of a scan, `stats`).
    pub fn render_table(&self, run: &RunInfo) -> String {
        let mut out = String::new();
        let pct = |count: u64, of: u64| {
            if of == 0 {
                "-".to_owned()
            } else {
                format!("{:.2}%", count as f64 * 100.0 / of as f64)
            }
        };
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<34} {value}");
        };
        row("input", run.input.clone());
        if let Some(wall) = run.wall_seconds {
            let rate = run.domains_per_second.unwrap_or(0.0);
            row("wall time", format!("{wall:.1} s ({rate:.0} domains/s)"));
        }
        if run.interrupted {
            row("status", "INTERRUPTED: partial results".to_owned());
        }
        row("rows", self.rows.to_string());
        for outcome in Outcome::ALL {
            let n = self.outcome_count(outcome);
            row(
                &format!("  {}", outcome.as_str()),
                format!("{n} ({})", pct(n, self.rows)),
            );
        }
        row("domains that exist", self.existing.to_string());
        row("domains with MX", self.with_mx.to_string());
        row(
            "MTA-STS records (of MX domains)",
            format!(
                "{} ({})",
                self.mta_sts_with_mx,
                pct(self.mta_sts_with_mx, self.with_mx)
            ),
        );
        row(
            "valid policies (of MX domains)",
            format!(
                "{} ({})",
                self.valid_with_mx,
                pct(self.valid_with_mx, self.with_mx)
            ),
        );
        row(
            "modes enforce/testing/none",
            format!("{} / {} / {}", self.modes[0], self.modes[1], self.modes[2]),
        );
        row(
            "max_age <1d / <1w / <=1y / invalid",
            format!(
                "{} / {} / {} / {}",
                self.max_age[0], self.max_age[1], self.max_age[2], self.max_age[3]
            ),
        );
        let f = &self.funnel;
        row(
            "policy fetch attempted",
            format!(
                "{} (dns {} / tcp {} / tls {} / timeout {} / http {} / syntax {} failed; {} usable)",
                f.attempted,
                f.dns_failed,
                f.tcp_failed,
                f.tls_failed,
                f.timed_out,
                f.http_failed,
                f.syntax_failed,
                f.usable
            ),
        );
        row("delivery at risk", self.delivery_at_risk.to_string());
        row(
            "TLS-RPT (of MX domains)",
            format!(
                "{} ({})",
                self.tlsrpt_with_mx,
                pct(self.tlsrpt_with_mx, self.with_mx)
            ),
        );
        row(
            "TLS-RPT (of MTA-STS domains)",
            format!(
                "{} ({})",
                self.tlsrpt_with_sts,
                pct(self.tlsrpt_with_sts, self.mta_sts)
            ),
        );
        row(
            "MTA-STS x TLS-RPT (MX domains)",
            format!(
                "both {} / sts only {} / rpt only {} / neither {}",
                self.sts_by_tlsrpt[0],
                self.sts_by_tlsrpt[1],
                self.sts_by_tlsrpt[2],
                self.sts_by_tlsrpt[3]
            ),
        );
        let looked_up = self.rows - self.outcomes[4];
        row(
            "lookup failures",
            format!(
                "{} ({})",
                self.lookup_failures,
                pct(self.lookup_failures, looked_up)
            ),
        );
        for cause in top(&self.error_causes, 5) {
            row(&format!("  {}", cause.name), cause.value.count.to_string());
        }
        row(
            "policy hosting self / delegated",
            format!("{} / {}", self.self_hosted, self.delegated),
        );
        for target in top(&self.delegation_targets, 5) {
            row(
                &format!("  {}", target.name),
                target.value.count.to_string(),
            );
        }
        let classes = &self.mx.mismatch_classes;
        if classes.iter().any(|n| *n > 0) {
            row(
                "uncovered MX by class",
                format!(
                    "label_depth {} / tld {} / typo {} / other_domain {}",
                    classes[0], classes[1], classes[2], classes[3]
                ),
            );
        }
        let mx = &self.mx;
        if mx.probed_domains > 0 {
            row("MX probed (domains)", mx.probed_domains.to_string());
            row(
                "  every MX valid",
                format!(
                    "{} ({})",
                    mx.every_mx_valid,
                    pct(mx.every_mx_valid, mx.probed_domains)
                ),
            );
            row(
                "  at risk: uncovered / TLS",
                format!("{} / {}", mx.at_risk_uncovered, mx.at_risk_tls),
            );
            row("  delivery blocked", mx.delivery_blocked.to_string());
            let (self_managed, third_party) = mx.hosting();
            row(
                "  MX self-managed / third-party",
                format!("{self_managed} / {third_party}"),
            );
            for (provider, counts) in mx.top_providers(5) {
                row(
                    &format!("  {provider}"),
                    format!(
                        "{} domains: valid {} / failed {} / unknown {}",
                        counts.domains, counts.valid, counts.failed, counts.unknown
                    ),
                );
            }
        }
        let hosts = &self.mx_hosts;
        if hosts.hosts > 0 {
            row(
                "MX hosts: connected > STARTTLS > TLS > valid",
                format!(
                    "{} > {} > {} > {} (of {})",
                    hosts.connected,
                    hosts.starttls_offered,
                    hosts.handshake,
                    hosts.certificate_valid,
                    hosts.hosts
                ),
            );
        }
        let mut issues: Vec<_> = IssueCode::ALL
            .iter()
            .map(|c| (c.as_str(), self.issue_count(*c)))
            .filter(|(_, n)| *n > 0)
            .collect();
        issues.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        if !issues.is_empty() {
            row("issues", String::new());
            for (code, n) in issues {
                row(&format!("  {code}"), n.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::Issue;

    #[test]
    fn providers_group_customer_specific_targets() {
        for (target, provider) in [
            ("mta-sts.provider.test", "provider.test"),
            ("_mta-sts.customer42.hosted-sts.net", "hosted-sts.net"),
            ("mta-sts.tenant.mailhost.co.uk", "mailhost.co.uk"),
            ("example.com", "example.com"),
            ("localhost", "localhost"),
        ] {
            assert_eq!(provider_of(target), provider, "{target}");
        }
    }

    #[test]
    fn rank_bins_include_their_upper_bound_and_codes_count_once_per_domain() {
        let mut statistics = Statistics::new();
        for rank in [1, 1000, 1001, 1_000_000] {
            let mut report = DomainReport::new(format!("d{rank}.test"), String::new(), Some(rank));
            report.mx_hosts = vec!["mx.test".into()];
            for host in ["a", "b", "c"] {
                report
                    .issues
                    .push(Issue::new(IssueCode::MxNotCovered, host));
            }
            statistics.add(&report);
        }
        let bins: Vec<u64> = statistics.by_rank.iter().map(|g| g.domains).collect();
        assert_eq!(bins, [2, 1, 0, 1, 0, 0]);
        assert_eq!(statistics.issue_count(IssueCode::MxNotCovered), 4);
    }

    #[test]
    fn a_failed_tlsrpt_lookup_is_unknown_not_no() {
        let mut statistics = Statistics::new();
        let mut failed = DomainReport::new("a.test".into(), String::new(), None);
        failed.mx_hosts = vec!["mx.a.test".into()];
        failed.lookup_failures.push(crate::net::LookupFailure::new(
            Lookup::TlsRptTxt,
            &crate::net::DnsFailure::ServFail,
        ));
        statistics.add(&failed);
        let mut answered = DomainReport::new("b.test".into(), String::new(), None);
        answered.mx_hosts = vec!["mx.b.test".into()];
        answered.tls_rpt = true;
        statistics.add(&answered);
        assert_eq!(statistics.with_mx, 2);
        assert_eq!(
            (statistics.tlsrpt_with_mx, statistics.tlsrpt_known_with_mx),
            (1, 1)
        );
    }

    /// Issue 9: statistics count typed facts, never message text. Reports built by the real
    /// decision from hand-made facts give the same statistics after every message is reworded.
    #[test]
    fn rewording_messages_changes_no_statistic() {
        use crate::net::{
            AddressAnswer, DnsFailure, FetchFailure, MxAnswer, NameStatus, TxtAnswer,
        };
        use crate::validate::decide;
        use crate::validate::facts::{DomainFacts, FetchAttempt, PolicyFacts};
        let txt = |records: &[&str]| -> Result<TxtAnswer, DnsFailure> {
            Ok(TxtAnswer {
                status: NameStatus::Exists,
                records: records.iter().map(|r| (*r).to_owned()).collect(),
                cname: None,
            })
        };
        let base = |domain: &str| DomainFacts {
            domain: domain.to_owned(),
            input: domain.to_owned(),
            rank: Some(5),
            scanned_at: 10,
            duration_ms: 1,
            sts: txt(&["v=STSv1; id=1"]),
            tlsrpt: txt(&["v=TLSRPTv1; rua=mailto:r@x.test"]),
            mx: Ok(MxAnswer {
                status: NameStatus::Exists,
                hosts: vec![(10, format!("mx.{domain}"))],
            }),
            policy: Some(PolicyFacts {
                host: format!("mta-sts.{domain}"),
                probing: false,
                addresses: Ok(AddressAnswer {
                    status: NameStatus::Exists,
                    addresses: vec!["192.0.2.1".parse().unwrap()],
                    cname: None,
                }),
                attempt: FetchAttempt::Fetched {
                    addresses: vec!["192.0.2.1".parse().unwrap()],
                    result: Err(FetchFailure::Connect("refused".into())),
                },
            }),
            mx_probes: None,
        };
        let facts = vec![
            base("a.test"),
            DomainFacts {
                tlsrpt: Err(DnsFailure::ServFail),
                ..base("b.test")
            },
            DomainFacts {
                mx: Err(DnsFailure::Timeout),
                ..base("c.test")
            },
            DomainFacts {
                sts: Err(DnsFailure::Refused),
                policy: None,
                ..base("d.test")
            },
            DomainFacts {
                policy: base("e.test").policy.map(|p| PolicyFacts {
                    addresses: Err(DnsFailure::ServFail),
                    attempt: FetchAttempt::NoAddress,
                    ..p
                }),
                ..base("e.test")
            },
        ];
        let reports: Vec<DomainReport> = facts.into_iter().map(decide).collect();
        let mut original = Statistics::new();
        let mut reworded = Statistics::new();
        for report in &reports {
            original.add(report);
            let mut changed = report.clone();
            changed.error = changed.error.map(|_| "something went wrong".to_owned());
            for issue in &mut changed.issues {
                issue.message = "reworded".to_owned();
            }
            reworded.add(&changed);
        }
        assert_eq!(original, reworded);
        // And the typed facts are what was counted.
        assert_eq!(original.lookup_failures, 4);
        assert_eq!(original.funnel.attempted, 4);
        assert_eq!(original.funnel.tcp_failed, 3);
        assert_eq!(original.funnel.dns_failed, 1);
        assert_eq!(original.tlsrpt_known_with_mx, 3);
        assert_eq!(original.error_causes.get("tlsrpt_txt:servfail"), Some(&1));
        assert_eq!(original.error_causes.get("policy_host:servfail"), Some(&1));
        assert_eq!(original.outcome_count(Outcome::Error), 2);
    }
}
