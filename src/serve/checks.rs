//! The work behind every face of the service (the REST endpoint, the MCP tools over stdio and over
//! HTTP): one domain's check, a list of domains through the scan pipeline with its limits, and
//! the plain-language summary of a report that an assistant can quote.
//!
//! [`Checks`] hides the validator's network types, so the handlers and the MCP server are plain
//! (non-generic) code over an `Arc<dyn Checks>`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout_at};

use crate::issues::Severity;
use crate::mta_sts::policy::Mode;
use crate::net::{Dns, PolicyFetch};
use crate::output::ResultWriter;
use crate::report::{DomainReport, Outcome, format_millis, now_millis};
use crate::scan::input::InputRow;
use crate::scan::pipeline::{ScanSettings, run_scan};
use crate::scan::progress::Progress;
use crate::scan::stats::{RunInfo, Statistics};
use crate::validate::Validator;

/// Most domains one `check_many` call (MCP) may name.
pub const MAX_DOMAINS_PER_LIST: usize = 100;

/// Whether a request may ask for the MX probe: only a server started with `--probe-mx` probes
/// (it connects to third-party mail servers on port 25, so the operator opts in). Every entry
/// point that accepts `probe_mx` (the MCP tool parameter, `?probe_mx=true`) asks here first.
pub fn mx_probe_allowed(probe_mx: bool, server_probes: bool) -> Result<(), String> {
    if probe_mx && !server_probes {
        Err("MX probing is off on this server: it must be started with --probe-mx (the probe connects to third-party mail servers on port 25)".to_owned())
    } else {
        Ok(())
    }
}

/// A list checked through the scan pipeline.
#[derive(Debug)]
pub struct ListResult {
    /// One report per input value, in input order.
    pub reports: Vec<DomainReport>,
    pub statistics: Statistics,
    /// Run metadata for [`Statistics::summary`].
    pub run: RunInfo,
}

/// Checks domains; implemented by the validator over any network implementation.
pub trait Checks: Send + Sync + 'static {
    /// Checks a normalised domain (`input` is the value as the client wrote it).
    fn check_one(
        &self,
        domain: String,
        input: String,
        probe_mx: bool,
    ) -> BoxFuture<'_, DomainReport>;

    /// Whether MX probing was switched on for this server (`--probe-mx`).
    fn probes_mx(&self) -> bool;

    /// Checks every value through the scan pipeline (`settings`: concurrency and the per-domain
    /// deadline); values that are not domain names get their input-error row.
    fn check_list(
        &self,
        inputs: Vec<String>,
        settings: ScanSettings,
    ) -> BoxFuture<'_, Result<ListResult, String>>;
}

impl<D, F> Checks for Arc<Validator<D, F>>
where
    D: Dns + 'static,
    F: PolicyFetch + 'static,
{
    fn check_one(
        &self,
        domain: String,
        input: String,
        probe_mx: bool,
    ) -> BoxFuture<'_, DomainReport> {
        Box::pin(self.check_domain_probing(domain, input, None, probe_mx))
    }

    fn probes_mx(&self) -> bool {
        Validator::probes_mx(self.as_ref())
    }

    fn check_list(
        &self,
        inputs: Vec<String>,
        settings: ScanSettings,
    ) -> BoxFuture<'_, Result<ListResult, String>> {
        Box::pin(async move {
            let started = Instant::now();
            let started_at = now_millis();
            let position: HashMap<String, usize> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(index, input)| (input.clone(), index))
                .collect();
            let total = inputs.len();
            let rows =
                futures::stream::iter(inputs.into_iter().enumerate().map(|(index, value)| {
                    Ok(InputRow {
                        line: u64::try_from(index + 1).unwrap_or(u64::MAX),
                        rank: None,
                        value,
                        problem: None,
                    })
                }));
            let mut collected = CollectReports::default();
            let scan = run_scan(
                rows,
                self.clone(),
                settings,
                &mut collected,
                &Progress::hidden(),
                std::future::pending(),
            )
            .await?;
            let mut reports = collected.reports;
            reports.sort_by_key(|report| position.get(&report.input).copied().unwrap_or(total));
            let wall = started.elapsed().as_secs_f64();
            let run = RunInfo {
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                input: format!("{total} domains"),
                started: Some(format_millis(started_at)),
                finished: Some(format_millis(now_millis())),
                wall_seconds: Some(wall),
                domains_per_second: (wall > 0.0).then(|| total as f64 / wall),
                ..RunInfo::default()
            };
            Ok(ListResult {
                reports,
                statistics: scan.statistics,
                run,
            })
        })
    }
}

/// The scan pipeline's sink for a list answered in one response.
#[derive(Default)]
struct CollectReports {
    reports: Vec<DomainReport>,
}

impl ResultWriter for CollectReports {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()> {
        self.reports.push(report.clone());
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Domains of one list checked at once (fewer when the server has fewer check slots).
const LIST_CONCURRENCY: usize = 16;
/// Longest request deadline accepted (longer ones are surely a typo).
const LONGEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why a check was not run or not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Every check slot stayed busy until half the deadline had passed.
    Busy { slots: usize, timeout: Duration },
    /// The check did not finish before the deadline.
    Overdue { timeout: Duration },
    /// The check's task ended without a report (it panicked).
    Stopped,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Busy { slots, timeout } => write!(
                f,
                "all {slots} check slots stayed busy for {} ms; try again later",
                timeout.as_millis()
            ),
            Refused::Overdue { timeout } => write!(
                f,
                "the check did not finish within {} ms",
                timeout.as_millis()
            ),
            Refused::Stopped => f.write_str("the check stopped unexpectedly"),
        }
    }
}

/// Runs checks for clients under the server's limits: a fixed number of check slots and a
/// deadline per request. Shared by the REST handlers and the MCP tools, so both draw on the
/// same slots.
#[derive(Clone)]
pub struct CheckRunner {
    checks: Arc<dyn Checks>,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    timeout: Duration,
}

impl CheckRunner {
    /// Fails on unusable limits (no slot, or a deadline of zero or over a day).
    pub fn new(
        checks: Arc<dyn Checks>,
        max_concurrent: usize,
        timeout: Duration,
    ) -> Result<CheckRunner, String> {
        if max_concurrent == 0 || max_concurrent > Semaphore::MAX_PERMITS {
            return Err(format!(
                "the number of concurrent checks must be between 1 and {}",
                Semaphore::MAX_PERMITS
            ));
        }
        if timeout.is_zero() || timeout > LONGEST_REQUEST_TIMEOUT {
            return Err("the request timeout must be positive and at most 24 hours".into());
        }
        Ok(CheckRunner {
            checks,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            timeout,
        })
    }

    /// The deadline of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits for `permits` slots at most half the deadline: a check that starts later could not
    /// finish in time, and under overload a quick refusal beats a queue of doomed requests.
    async fn slots(
        &self,
        permits: usize,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, Refused> {
        let slot_deadline = Instant::now() + self.timeout / 2;
        let permits = u32::try_from(permits).unwrap_or(u32::MAX);
        match timeout_at(
            slot_deadline.min(deadline),
            self.slots.clone().acquire_many_owned(permits),
        )
        .await
        {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_)) | Err(_) => Err(Refused::Busy {
                slots: self.max_concurrent,
                timeout: self.timeout,
            }),
        }
    }

    /// Checks a normalised domain within one request deadline.
    /// Whether this server may probe MX hosts (`--probe-mx`).
    pub fn probes_mx(&self) -> bool {
        self.checks.probes_mx()
    }

    pub async fn check(
        &self,
        domain: String,
        input: String,
        probe_mx: bool,
    ) -> Result<DomainReport, Refused> {
        let deadline = Instant::now() + self.timeout;
        let slot = self.slots(1, deadline).await?;
        let checks = self.checks.clone();
        // The check runs on its own task so it keeps its slot until its lookups end, even when
        // the client's deadline passes first or it disconnects; but never longer than one
        // request timeout, so slots always come back.
        let limit = self.timeout;
        let check = tokio::spawn(async move {
            let report =
                tokio::time::timeout(limit, checks.check_one(domain, input, probe_mx)).await;
            drop(slot);
            report
        });
        match timeout_at(deadline, check).await {
            Ok(Ok(Ok(report))) => Ok(report),
            Ok(Err(_)) => Err(Refused::Stopped),
            Ok(Ok(Err(_))) | Err(_) => Err(Refused::Overdue {
                timeout: self.timeout,
            }),
        }
    }

    /// Checks a list through the scan pipeline: each domain under the request deadline, up to
    /// 16 at once (holding that many check slots).
    pub async fn check_list(&self, inputs: Vec<String>) -> Result<ListResult, String> {
        let concurrency = LIST_CONCURRENCY
            .min(self.max_concurrent)
            .min(inputs.len().max(1));
        let deadline = Instant::now() + self.timeout;
        let slots = self
            .slots(concurrency, deadline)
            .await
            .map_err(|refused| refused.to_string())?;
        let settings = ScanSettings {
            concurrency,
            domain_timeout: self.timeout,
            flush_interval: Duration::from_secs(3600),
        };
        let result = self.checks.check_list(inputs, settings).await;
        drop(slots);
        result
    }
}

/// A few sentences an assistant can quote: the verdict, what is wrong, what to do first.
pub fn plain_summary(report: &DomainReport) -> String {
    let name = if report.domain.is_empty() {
        report.input.as_str()
    } else {
        report.domain.as_str()
    };
    let mut text = match report.outcome {
        Outcome::Valid => match report.mode {
            Some(Mode::Enforce) => format!(
                "{name}: MTA-STS is valid and enforced: senders that support MTA-STS deliver to it only over authenticated TLS."
            ),
            Some(Mode::Testing) => format!(
                "{name}: MTA-STS is valid but in testing mode: failures are reported, not yet enforced."
            ),
            _ => format!("{name}: MTA-STS is valid but switched off (mode none)."),
        },
        Outcome::Invalid => format!(
            "{name}: MTA-STS is published but invalid, so senders ignore it and mail is not protected."
        ),
        Outcome::Absent => {
            if report.mx_hosts.is_empty() {
                format!("{name}: no MTA-STS, and the domain does not receive mail (no MX).")
            } else {
                format!(
                    "{name}: no MTA-STS: mail to this domain can be downgraded to plain text by an attacker."
                )
            }
        }
        Outcome::Error => format!(
            "{name}: the check could not finish ({}), so there is no verdict; try again later.",
            report.error.as_deref().unwrap_or("a lookup failed")
        ),
        Outcome::InputError => format!(
            "{name:?} is not a domain name ({}).",
            report.error.as_deref().unwrap_or("invalid")
        ),
    };
    if report.delivery_at_risk {
        let _ = write!(
            text,
            " Delivery is at risk: the policy does not cover {}.",
            report.mx_uncovered.join(", ")
        );
    }
    let mut problems: Vec<_> = report
        .issues
        .iter()
        .filter(|issue| issue.severity >= Severity::Warning)
        .collect();
    problems.sort_by_key(|issue| std::cmp::Reverse(issue.severity));
    if !problems.is_empty() && report.outcome != Outcome::InputError {
        text.push_str("\nWhat is wrong:");
        for issue in problems.iter().take(3) {
            let _ = write!(
                text,
                "\n- {} ({}): {}",
                issue.code, issue.severity, issue.message
            );
        }
        if problems.len() > 3 {
            let _ = write!(text, "\n- and {} more", problems.len() - 3);
        }
    }
    if let Some(first) = report.recommendations().first() {
        let _ = write!(text, "\nWhat to do first: {first}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::{Issue, IssueCode};

    #[test]
    fn the_summary_gives_verdict_problem_and_first_step() {
        let mut report = DomainReport::new("example.com".into(), "example.com".into(), None);
        report.outcome = Outcome::Invalid;
        report.has_mta_sts = true;
        report.mx_hosts = vec!["mx.example.com".into()];
        report.issues.push(Issue::new(
            IssueCode::StsRecordMultiple,
            "2 v=STSv1 records",
        ));
        report
            .issues
            .push(Issue::new(IssueCode::ModeTesting, "testing"));
        let text = plain_summary(&report);
        assert!(
            text.starts_with("example.com: MTA-STS is published but invalid"),
            "{text}"
        );
        assert!(
            text.contains("- sts_record_multiple (error): 2 v=STSv1 records"),
            "{text}"
        );
        assert!(
            !text.contains("mode_testing"),
            "info findings are not problems: {text}"
        );
        assert!(
            text.contains("What to do first: Keep exactly one v=STSv1"),
            "{text}"
        );

        let report = DomainReport::input_error("not a domain".into(), None, "bad".into());
        assert!(plain_summary(&report).starts_with("\"not a domain\" is not a domain name"));
    }

    #[test]
    fn only_a_requested_mx_probe_is_refused() {
        assert!(mx_probe_allowed(false, false).is_ok());
        assert!(mx_probe_allowed(true, true).is_ok());
        assert_eq!(
            mx_probe_allowed(true, false),
            Err("MX probing is off on this server: it must be started with --probe-mx (the probe connects to third-party mail servers on port 25)".to_owned())
        );
    }
}
