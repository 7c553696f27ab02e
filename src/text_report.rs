//! The human-readable report of `check`: verdict first, then what was found, every issue with
//! its severity, and the recommendations; ANSI colour only when asked (a terminal).

use std::fmt::Write as _;

use crate::issues::Severity;
use crate::mta_sts::policy::Mode;
use crate::report::{DomainReport, Outcome};

struct Paint {
    color: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn severity(&self, severity: Severity) -> String {
        let label = format!("{:<7}", severity.as_str().to_uppercase());
        match severity {
            Severity::Error => self.wrap("1;31", &label),
            Severity::Warning => self.wrap("33", &label),
            _ => self.wrap("36", &label),
        }
    }
    fn outcome(&self, outcome: Outcome) -> String {
        match outcome {
            Outcome::Valid => self.wrap("1;32", outcome.as_str()),
            Outcome::Invalid | Outcome::Error | Outcome::InputError => {
                self.wrap("1;31", outcome.as_str())
            }
            Outcome::Absent => self.wrap("1;33", outcome.as_str()),
        }
    }
}

/// Renders a report for a person.
pub fn render(report: &DomainReport, color: bool) -> String {
    let paint = Paint { color };
    let mut out = String::new();
    let name = if report.domain.is_empty() {
        &report.input
    } else {
        &report.domain
    };
    let mode = report
        .mode
        .map(|m| format!(" ({} mode)", m.as_str()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {}{mode}",
        paint.wrap("1", name),
        paint.outcome(report.outcome)
    );
    let line = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<16} {value}");
    };
    if report.outcome != Outcome::InputError {
        line(
            &mut out,
            "MTA-STS record",
            report.sts_record.as_deref().unwrap_or("none"),
        );
        if let Some(cname) = &report.sts_record_cname {
            line(&mut out, "  delegated to", cname);
        }
        if let Some(url) = &report.policy_url {
            let status = report
                .policy_http_status
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default();
            line(&mut out, "Policy", &format!("{url}{status}"));
            if let Some(cname) = &report.policy_host_cname {
                line(&mut out, "  hosted by", cname);
            }
            if report.policy_sha256.is_some() {
                let mode = report.mode.map_or("?", Mode::as_str);
                let max_age = report
                    .max_age
                    .map_or_else(|| "?".to_owned(), |v| v.to_string());
                line(
                    &mut out,
                    "  contents",
                    &format!(
                        "mode {mode}, max_age {max_age}, mx {}",
                        report.mx_patterns.join(" ")
                    ),
                );
            }
        }
        let mx = if report.mx_hosts.is_empty() {
            "none".to_owned()
        } else {
            report
                .mx_hosts
                .iter()
                .map(|host| {
                    if report.mx_uncovered.contains(host) {
                        format!("{host} (not covered)")
                    } else {
                        host.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        line(&mut out, "MX hosts", &mx);
        let rpt = if report.tls_rpt {
            report.tls_rpt_rua.join(", ")
        } else {
            "none".to_owned()
        };
        line(&mut out, "TLS-RPT", &rpt);
        if report.delivery_at_risk {
            let _ = writeln!(
                out,
                "  {}",
                paint.wrap(
                    "1;31",
                    "Delivery at risk: MTA-STS senders will not deliver to the uncovered MX hosts."
                )
            );
        }
    }
    if !report.issues.is_empty() {
        let _ = writeln!(out, "\n{}", paint.wrap("1", "Issues"));
        let mut issues: Vec<_> = report.issues.iter().collect();
        issues.sort_by_key(|issue| std::cmp::Reverse(issue.severity));
        for issue in issues {
            let _ = writeln!(
                out,
                "  {} {:<26} {}",
                paint.severity(issue.severity),
                issue.code.as_str(),
                issue.message
            );
        }
    }
    let recommendations = report.recommendations();
    if !recommendations.is_empty() {
        let _ = writeln!(out, "\n{}", paint.wrap("1", "Recommendations"));
        for sentence in recommendations {
            let _ = writeln!(out, "  - {sentence}");
        }
    }
    out
}
