//! `diff OLD NEW`: what changed per domain between two scan runs, from the typed result columns
//! (outcome, mode, `sts_id`, `policy_sha256`, MX hosts, uncovered MX, CNAME targets, TLS-RPT),
//! never from message text; plus a summary of the transitions.
//!
//! The old run is held in memory as one compact [`Snapshot`] per domain (the compared columns
//! only); the new run is streamed against it, so one row per changed domain comes out in the new
//! run's order, followed by the domains that disappeared, in the old run's order.

pub mod output;

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::net::Lookup;
use crate::report::{DomainReport, Outcome};

macro_rules! change_kinds {
    ($( $(#[$doc:meta])* $kind:ident => $name:literal, )*) => {
        /// A kind of change between two runs; a domain can have several.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ChangeKind { $( $(#[$doc])* $kind, )* }

        impl ChangeKind {
            /// Every kind, in report order.
            pub const ALL: &'static [ChangeKind] = &[$( ChangeKind::$kind, )*];

            /// The stable name used in the `changes` column, the summary and `--fail-on-change`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ChangeKind::$kind => $name, )* }
            }
        }
    };
}

change_kinds! {
    /// The outcome differs (valid → invalid, absent → valid, …).
    Outcome => "outcome",
    /// Both runs have a policy mode and it differs (testing → enforce, …).
    Mode => "mode",
    /// The policy body's SHA-256 changed but the TXT `id` did not: senders holding the cached
    /// policy never fetch the new one (RFC 8461 §3.1: the id MUST change with the policy).
    PolicyChangedIdKept => "policy_changed_id_kept",
    /// The TXT `id` changed but the policy body did not.
    IdChangedPolicyKept => "id_changed_policy_kept",
    /// The set of MX hosts differs (both lookups succeeded).
    MxChanged => "mx_changed",
    /// An MX host the policy covered before (or that did not exist) is not covered now.
    NewlyUncovered => "newly_uncovered",
    /// The CNAME target of `_mta-sts.D` or of `mta-sts.D` differs (a hosting provider change).
    ProviderChanged => "provider_changed",
    /// A TLS-RPT record appeared.
    TlsRptAdded => "tls_rpt_added",
    /// The TLS-RPT record went away (both lookups answered).
    TlsRptRemoved => "tls_rpt_removed",
    /// The domain is in the new run only.
    Appeared => "appeared",
    /// The domain is in the old run only.
    Disappeared => "disappeared",
}

impl ChangeKind {
    /// Parses a name of [`ChangeKind::as_str`].
    pub fn from_name(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name.trim())
    }
}

/// The compared columns of one result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub outcome: Outcome,
    pub mode: Option<&'static str>,
    pub sts_id: Option<String>,
    pub policy_sha256: Option<String>,
    /// Lower case, sorted, without duplicates.
    pub mx_hosts: Vec<String>,
    /// Lower case, sorted, without duplicates.
    pub mx_uncovered: Vec<String>,
    pub sts_record_cname: Option<String>,
    pub policy_host_cname: Option<String>,
    pub tls_rpt: bool,
    mx_lookup_failed: bool,
    tls_rpt_lookup_failed: bool,
}

/// Host names compared as a set: lower case, no trailing dot, sorted, no duplicates.
fn host_set(hosts: &[String]) -> Vec<String> {
    let mut set: Vec<String> = hosts
        .iter()
        .map(|host| host.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    set.sort();
    set.dedup();
    set
}

fn normalize_name(name: &Option<String>) -> Option<String> {
    name.as_ref()
        .map(|name| name.trim_end_matches('.').to_ascii_lowercase())
}

impl Snapshot {
    /// The compared columns of a report.
    pub fn of(report: &DomainReport) -> Snapshot {
        let failed = |lookup: Lookup| report.lookup_failures.iter().any(|f| f.lookup == lookup);
        Snapshot {
            outcome: report.outcome,
            mode: report.mode.map(|mode| mode.as_str()),
            sts_id: report.sts_id.clone(),
            policy_sha256: report
                .policy_sha256
                .as_ref()
                .map(|s| s.to_ascii_lowercase()),
            mx_hosts: host_set(&report.mx_hosts),
            mx_uncovered: host_set(&report.mx_uncovered),
            sts_record_cname: normalize_name(&report.sts_record_cname),
            policy_host_cname: normalize_name(&report.policy_host_cname),
            tls_rpt: report.tls_rpt,
            mx_lookup_failed: failed(Lookup::Mx),
            tls_rpt_lookup_failed: failed(Lookup::TlsRptTxt),
        }
    }
}

/// The key that pairs rows of two runs: the normalised domain, or the raw input when the row
/// was not a domain.
fn key_of(report: &DomainReport) -> String {
    if report.domain.is_empty() {
        report.input.clone()
    } else {
        report.domain.clone()
    }
}

/// One domain that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub domain: String,
    /// Never empty; in [`ChangeKind::ALL`] order.
    pub changes: Vec<ChangeKind>,
    pub old: Option<Snapshot>,
    pub new: Option<Snapshot>,
    /// MX hosts uncovered in the new run but not in the old.
    pub newly_uncovered: Vec<String>,
}

/// The changes between two snapshots of one domain (`None`: not in that run).
pub fn compare(old: Option<&Snapshot>, new: Option<&Snapshot>) -> (Vec<ChangeKind>, Vec<String>) {
    let (old, new) = match (old, new) {
        (None, None) => return (Vec::new(), Vec::new()),
        (None, Some(_)) => return (vec![ChangeKind::Appeared], Vec::new()),
        (Some(_), None) => return (vec![ChangeKind::Disappeared], Vec::new()),
        (Some(old), Some(new)) => (old, new),
    };
    let mut changes = Vec::new();
    if old.outcome != new.outcome {
        changes.push(ChangeKind::Outcome);
    }
    if let (Some(before), Some(after)) = (old.mode, new.mode)
        && before != after
    {
        changes.push(ChangeKind::Mode);
    }
    let ids = (old.sts_id.as_ref(), new.sts_id.as_ref());
    let hashes = (old.policy_sha256.as_ref(), new.policy_sha256.as_ref());
    if let ((Some(old_id), Some(new_id)), (Some(old_hash), Some(new_hash))) = (ids, hashes) {
        if old_hash != new_hash && old_id == new_id {
            changes.push(ChangeKind::PolicyChangedIdKept);
        }
        if old_id != new_id && old_hash == new_hash {
            changes.push(ChangeKind::IdChangedPolicyKept);
        }
    }
    let mx_known = !old.mx_lookup_failed && !new.mx_lookup_failed;
    if mx_known && old.mx_hosts != new.mx_hosts {
        changes.push(ChangeKind::MxChanged);
    }
    let newly_uncovered: Vec<String> = new
        .mx_uncovered
        .iter()
        .filter(|host| old.mx_uncovered.binary_search(host).is_err())
        .cloned()
        .collect();
    if !newly_uncovered.is_empty() {
        changes.push(ChangeKind::NewlyUncovered);
    }
    if old.sts_record_cname != new.sts_record_cname
        || old.policy_host_cname != new.policy_host_cname
    {
        changes.push(ChangeKind::ProviderChanged);
    }
    let tls_rpt_known = !old.tls_rpt_lookup_failed && !new.tls_rpt_lookup_failed;
    if tls_rpt_known && !old.tls_rpt && new.tls_rpt {
        changes.push(ChangeKind::TlsRptAdded);
    }
    if tls_rpt_known && old.tls_rpt && !new.tls_rpt {
        changes.push(ChangeKind::TlsRptRemoved);
    }
    (changes, newly_uncovered)
}

/// Counts over a whole diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffSummary {
    pub old_rows: u64,
    pub new_rows: u64,
    /// Domains with at least one change.
    pub changed_domains: u64,
    /// Domains with each change kind, by [`ChangeKind::ALL`] index.
    pub counts: Vec<u64>,
    /// Domains in both runs by old outcome (row) and new outcome (column), [`Outcome::ALL`]
    /// order; unchanged domains are on the diagonal.
    pub transitions: [[u64; 5]; 5],
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|o| *o == outcome)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    old_rows: u64,
    new_rows: u64,
    changed_domains: u64,
    changes: serde_json::Map<String, serde_json::Value>,
    /// old outcome → new outcome → domains.
    outcome_transitions: serde_json::Map<String, serde_json::Value>,
    old: &'a str,
    new: &'a str,
}

impl DiffSummary {
    fn new() -> Self {
        DiffSummary {
            counts: vec![0; ChangeKind::ALL.len()],
            ..DiffSummary::default()
        }
    }

    /// Domains with this change kind.
    pub fn count(&self, kind: ChangeKind) -> u64 {
        ChangeKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|index| self.counts.get(index))
            .copied()
            .unwrap_or(0)
    }

    /// The summary as JSON; `old` and `new` name the compared runs.
    pub fn to_json(&self, old: &str, new: &str) -> serde_json::Value {
        let changes = ChangeKind::ALL
            .iter()
            .map(|kind| (kind.as_str().to_owned(), self.count(*kind).into()))
            .collect();
        let outcome_transitions = Outcome::ALL
            .iter()
            .map(|from| {
                let row: serde_json::Map<String, serde_json::Value> = Outcome::ALL
                    .iter()
                    .map(|to| {
                        let count = self.transitions[outcome_index(*from)][outcome_index(*to)];
                        (to.as_str().to_owned(), count.into())
                    })
                    .collect();
                (from.as_str().to_owned(), row.into())
            })
            .collect();
        serde_json::to_value(SummaryJson {
            old_rows: self.old_rows,
            new_rows: self.new_rows,
            changed_domains: self.changed_domains,
            changes,
            outcome_transitions,
            old,
            new,
        })
        .unwrap_or_default()
    }

    /// The summary as a table for people.
    pub fn render_table(&self, old: &str, new: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "diff {old} → {new}");
        let _ = writeln!(
            out,
            "rows: {} old, {} new; {} domains changed",
            self.old_rows, self.new_rows, self.changed_domains
        );
        let _ = writeln!(out, "\nchanges (domains)");
        for kind in ChangeKind::ALL {
            let _ = writeln!(out, "  {:<24} {:>10}", kind.as_str(), self.count(*kind));
        }
        let _ = writeln!(out, "\noutcome old ↓ / new →");
        let _ = write!(out, "  {:<12}", "");
        for to in Outcome::ALL {
            let _ = write!(out, " {:>11}", to.as_str());
        }
        out.push('\n');
        for from in Outcome::ALL {
            let _ = write!(out, "  {:<12}", from.as_str());
            for to in Outcome::ALL {
                let count = self.transitions[outcome_index(from)][outcome_index(to)];
                let _ = write!(out, " {count:>11}");
            }
            out.push('\n');
        }
        out
    }
}

/// Compares two runs: every changed domain goes to `emit` (see the module doc for the order).
/// Errors name the row's source as the readers do.
pub fn diff_runs(
    old: impl Iterator<Item = Result<DomainReport, String>>,
    new: impl Iterator<Item = Result<DomainReport, String>>,
    mut emit: impl FnMut(&DiffRow) -> Result<(), String>,
) -> Result<DiffSummary, String> {
    struct OldEntry {
        order: u64,
        snapshot: Snapshot,
        matched: bool,
    }
    let mut summary = DiffSummary::new();
    let mut earlier: HashMap<String, OldEntry> = HashMap::new();
    for row in old {
        let report = row?;
        summary.old_rows += 1;
        let order = summary.old_rows;
        earlier.entry(key_of(&report)).or_insert_with(|| OldEntry {
            order,
            snapshot: Snapshot::of(&report),
            matched: false,
        });
    }
    let mut record = |summary: &mut DiffSummary, row: DiffRow| -> Result<(), String> {
        if row.changes.is_empty() {
            return Ok(());
        }
        summary.changed_domains += 1;
        for change in &row.changes {
            if let Some(index) = ChangeKind::ALL.iter().position(|k| k == change) {
                summary.counts[index] += 1;
            }
        }
        emit(&row)
    };
    for row in new {
        let report = row?;
        summary.new_rows += 1;
        let key = key_of(&report);
        let snapshot = Snapshot::of(&report);
        let old = earlier.get_mut(&key).map(|entry| {
            entry.matched = true;
            &entry.snapshot
        });
        if let Some(old) = old {
            summary.transitions[outcome_index(old.outcome)][outcome_index(snapshot.outcome)] += 1;
        }
        let (changes, newly_uncovered) = compare(old, Some(&snapshot));
        let old = old.cloned();
        record(
            &mut summary,
            DiffRow {
                domain: key,
                changes,
                old,
                new: Some(snapshot),
                newly_uncovered,
            },
        )?;
    }
    let mut gone: Vec<(String, OldEntry)> = earlier
        .into_iter()
        .filter(|(_, entry)| !entry.matched)
        .collect();
    gone.sort_by_key(|(_, entry)| entry.order);
    for (domain, entry) in gone {
        record(
            &mut summary,
            DiffRow {
                domain,
                changes: vec![ChangeKind::Disappeared],
                old: Some(entry.snapshot),
                new: None,
                newly_uncovered: Vec::new(),
            },
        )?;
    }
    Ok(summary)
}

/// A diff, fully specified.
#[derive(Debug, Clone)]
pub struct DiffJob {
    /// The earlier run: a result file or object, or a glob of them (shards).
    pub old: String,
    /// The later run, likewise.
    pub new: String,
    /// Where the changed rows go (`-`: standard output).
    pub output: String,
    pub format: crate::output::Format,
    /// Where the summary JSON goes, if anywhere (a path or an object URL).
    pub summary: Option<String>,
}

/// The rows of every file a source pattern names, in order.
pub fn read_source(
    pattern: &str,
) -> Result<impl Iterator<Item = Result<DomainReport, String>>, String> {
    let sources = crate::output::store::expand_sources(pattern)?;
    // Open each file when the previous one is read (its error, if any, comes as a row).
    Ok(sources.into_iter().flat_map(|source| {
        let path = std::path::PathBuf::from(&source);
        let rows: Box<dyn Iterator<Item = Result<DomainReport, String>> + Send> =
            match crate::output::read_results(&path, None) {
                Ok(rows) => {
                    Box::new(rows.map(move |row| row.map_err(|e| format!("{source}: {e}"))))
                }
                Err(error) => Box::new(std::iter::once(Err(error))),
            };
        rows
    }))
}

/// Runs a diff: writes the changed rows and the summary JSON, returns the summary.
pub fn run_diff(job: &DiffJob) -> Result<DiffSummary, String> {
    if let Some(summary) = &job.summary
        && !crate::output::store::is_object_url(summary)
    {
        // An unwritable summary path fails now, before the runs are read.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(summary)
            .map_err(|e| format!("cannot write the summary {summary}: {e}"))?;
    }
    let old = read_source(&job.old)?;
    let new = read_source(&job.new)?;
    let mut writer = output::DiffWriter::create(&job.output, job.format)?;
    let summary = diff_runs(old, new, |row| writer.write(row))?;
    writer.finish()?;
    if let Some(path) = &job.summary {
        let json = serde_json::to_vec_pretty(&summary.to_json(&job.old, &job.new))
            .map_err(|e| e.to_string())?;
        let location = crate::output::store::Location::parse(path)?;
        crate::output::store::write_bytes(&location, json)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            outcome: Outcome::Valid,
            mode: Some("enforce"),
            sts_id: Some("1".into()),
            policy_sha256: Some("aa".into()),
            mx_hosts: vec!["mx1.a.test".into()],
            mx_uncovered: vec![],
            sts_record_cname: None,
            policy_host_cname: None,
            tls_rpt: true,
            mx_lookup_failed: false,
            tls_rpt_lookup_failed: false,
        }
    }

    #[test]
    fn identical_snapshots_have_no_change() {
        assert_eq!(compare(Some(&snapshot()), Some(&snapshot())).0, vec![]);
    }

    #[test]
    fn every_kind_has_a_unique_name() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(ChangeKind::from_name("nope"), None);
    }

    #[test]
    fn failed_lookups_are_not_changes() {
        let old = snapshot();
        let mut new = snapshot();
        new.mx_hosts.clear();
        new.mx_lookup_failed = true;
        new.tls_rpt = false;
        new.tls_rpt_lookup_failed = true;
        assert_eq!(compare(Some(&old), Some(&new)).0, vec![]);
    }

    #[test]
    fn policy_and_id_moving_together_is_no_finding() {
        let old = snapshot();
        let mut new = snapshot();
        new.sts_id = Some("2".into());
        new.policy_sha256 = Some("bb".into());
        assert_eq!(compare(Some(&old), Some(&new)).0, vec![]);
        new.sts_id = Some("1".into());
        assert_eq!(
            compare(Some(&old), Some(&new)).0,
            vec![ChangeKind::PolicyChangedIdKept]
        );
    }
}
