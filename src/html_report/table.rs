//! The report's per-domain table: which rows it shows, in which order, and how they are embedded
//! in the page. The domains that need action come first; past a row limit the least urgent rows
//! are left out (and counted), so a report of millions of domains stays a page a browser opens,
//! and the memory used while reading stays bounded by the limit.

use crate::issues::Severity;
use crate::mta_sts::policy::Mode;
use crate::report::{DomainReport, Outcome};

/// How urgent a row is: lower is more urgent. The labels are shown in the table's filter.
pub const PRIORITIES: [&str; 8] = [
    "delivery at risk",
    "invalid policy",
    "lookup error",
    "valid, with warnings",
    "valid, not enforcing",
    "no MTA-STS, receives mail",
    "valid, clean",
    "no MTA-STS, no mail / not a domain",
];

/// Rows with a priority below this index need action (the table's default filter).
pub const ACTIONABLE_BELOW: u8 = 6;

/// The priority of a row, an index into [`PRIORITIES`].
pub fn priority(report: &DomainReport) -> u8 {
    if report.delivery_at_risk {
        return 0;
    }
    match report.outcome {
        Outcome::Invalid => 1,
        Outcome::Error => 2,
        Outcome::Valid if report.severity() >= Severity::Warning => 3,
        Outcome::Valid if report.mode != Some(Mode::Enforce) => 4,
        Outcome::Valid => 6,
        Outcome::Absent if !report.mx_hosts.is_empty() => 5,
        Outcome::Absent | Outcome::InputError => 7,
    }
}

/// One row of the table (embedded as a JSON array, to keep the page small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// Order of reading, the last tie-breaker.
    sequence: u64,
    priority: u8,
    /// The domain, or the input as read when it was not a domain.
    domain: String,
    rank: Option<i64>,
    outcome: &'static str,
    mode: Option<&'static str>,
    severity: &'static str,
    issues: Vec<&'static str>,
    /// Embedded as indexes into one list of sentences (each appears once in the page).
    recommendations: Vec<&'static str>,
}

impl TableRow {
    fn new(report: &DomainReport, sequence: u64) -> TableRow {
        let mut issues: Vec<&'static str> = report.issues.iter().map(|i| i.code.as_str()).collect();
        issues.dedup();
        TableRow {
            sequence,
            priority: priority(report),
            domain: if report.domain.is_empty() {
                report.input.clone()
            } else {
                report.domain.clone()
            },
            rank: report.rank,
            outcome: report.outcome.as_str(),
            mode: report.mode.map(Mode::as_str),
            severity: report.severity().as_str(),
            issues,
            recommendations: report.recommendations(),
        }
    }

    fn key(&self) -> (u8, i64, u64) {
        (self.priority, self.rank.unwrap_or(i64::MAX), self.sequence)
    }
}

/// The rows kept for the table: the `limit` most urgent (then best-ranked, then first read).
#[derive(Debug, Clone)]
pub struct TableRows {
    limit: usize,
    rows: Vec<TableRow>,
    seen: u64,
    /// Rows per priority, over every row seen (kept or not).
    by_priority: [u64; PRIORITIES.len()],
}

impl TableRows {
    pub fn new(limit: usize) -> TableRows {
        TableRows {
            limit,
            rows: Vec::new(),
            seen: 0,
            by_priority: [0; PRIORITIES.len()],
        }
    }

    pub fn add(&mut self, report: &DomainReport) {
        let row = TableRow::new(report, self.seen);
        self.seen += 1;
        self.by_priority[usize::from(row.priority)] += 1;
        if self.limit == 0 {
            return;
        }
        self.rows.push(row);
        // Amortised: prune to the limit whenever twice the limit is held.
        if self.rows.len() >= self.limit.saturating_mul(2) {
            self.prune();
        }
    }

    fn prune(&mut self) {
        self.rows.sort_by_key(TableRow::key);
        self.rows.truncate(self.limit);
    }

    /// The rows to show, most urgent first.
    pub fn finish(mut self) -> KeptRows {
        self.prune();
        KeptRows {
            left_out: self.seen - self.rows.len() as u64,
            seen: self.seen,
            rows: self.rows,
            by_priority: self.by_priority,
        }
    }
}

/// The rows the page shows, and what was left out.
#[derive(Debug, Clone)]
pub struct KeptRows {
    pub rows: Vec<TableRow>,
    pub seen: u64,
    pub left_out: u64,
    pub by_priority: [u64; PRIORITIES.len()],
}

impl KeptRows {
    /// Rows that need action (priority below [`ACTIONABLE_BELOW`]) among all rows read.
    pub fn actionable(&self) -> u64 {
        self.by_priority[..usize::from(ACTIONABLE_BELOW)]
            .iter()
            .sum()
    }

    /// The rows as JSON for a `<script type="application/json">` element: `<`, `>` and `&`
    /// are escaped so no value can close the element.
    pub fn to_script_json(&self) -> Result<String, String> {
        let mut sentences: Vec<&'static str> = Vec::new();
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                let recommendations: Vec<usize> = row
                    .recommendations
                    .iter()
                    .map(
                        |sentence| match sentences.iter().position(|s| s == sentence) {
                            Some(index) => index,
                            None => {
                                sentences.push(sentence);
                                sentences.len() - 1
                            }
                        },
                    )
                    .collect();
                serde_json::json!([
                    row.priority,
                    row.domain,
                    row.rank,
                    row.outcome,
                    row.mode,
                    row.severity,
                    row.issues,
                    recommendations,
                ])
            })
            .collect();
        let document = serde_json::json!({
            "priorities": PRIORITIES,
            "actionable_below": ACTIONABLE_BELOW,
            "recommendations": sentences,
            "rows": rows,
        });
        serde_json::to_string(&document)
            .map(|json| script_safe(&json))
            .map_err(|e| format!("cannot embed the table: {e}"))
    }
}

/// JSON that can sit inside a `<script>` element: every `<`, `>` and `&` as a `\u` escape
/// (valid JSON, the same value).
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::{Issue, IssueCode};

    fn report(name: &str, outcome: Outcome, rank: Option<i64>) -> DomainReport {
        let mut report = DomainReport::new(name.into(), name.into(), rank);
        report.outcome = outcome;
        report
    }

    #[test]
    fn urgent_rows_come_first_and_the_rest_is_counted_when_left_out() {
        let mut table = TableRows::new(3);
        let mut at_risk = report("risk.test", Outcome::Valid, Some(50));
        at_risk.mode = Some(Mode::Enforce);
        at_risk.delivery_at_risk = true;
        let mut clean = report("clean.test", Outcome::Valid, Some(1));
        clean.mode = Some(Mode::Enforce);
        let mut absent_mx = report("nosts.test", Outcome::Absent, Some(2));
        absent_mx.mx_hosts = vec!["mx.nosts.test".into()];
        let mut invalid = report("bad.test", Outcome::Invalid, Some(9));
        invalid
            .issues
            .push(Issue::new(IssueCode::PolicySyntax, "line 2"));
        // Many clean rows force several prunes; the urgent ones must survive them all.
        for n in 0..20 {
            let mut filler = report(&format!("f{n}.test"), Outcome::Absent, None);
            filler.mx_hosts.clear();
            table.add(&filler);
        }
        for row in [&clean, &absent_mx, &invalid, &at_risk] {
            table.add(row);
        }
        let kept = table.finish();
        let names: Vec<&str> = kept.rows.iter().map(|r| r.domain.as_str()).collect();
        assert_eq!(names, ["risk.test", "bad.test", "nosts.test"]);
        assert_eq!((kept.seen, kept.left_out), (24, 21));
        assert_eq!(kept.actionable(), 3);
        assert_eq!(kept.by_priority[7], 20);
        assert_eq!(kept.rows[1].issues, ["policy_syntax"]);
    }

    #[test]
    fn equal_priorities_keep_the_best_ranked_then_the_first_read() {
        let mut table = TableRows::new(2);
        for (name, rank) in [("c", None), ("b", Some(500)), ("a", Some(10)), ("d", None)] {
            table.add(&report(name, Outcome::Invalid, rank));
        }
        let kept = table.finish();
        let names: Vec<&str> = kept.rows.iter().map(|r| r.domain.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn embedded_json_cannot_close_the_script_element() {
        let mut table = TableRows::new(10);
        let mut evil = report("", Outcome::InputError, None);
        evil.input = "</script><script>alert(1)</script>&".into();
        table.add(&evil);
        let json = table.finish().to_script_json().unwrap();
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["rows"][0][1], "</script><script>alert(1)</script>&",
            "the value survives the escaping"
        );
    }
}
