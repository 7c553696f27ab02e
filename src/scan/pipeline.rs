//! The pipeline shape: input rows → per-domain checks spawned as tasks on the runtime's workers
//! (at most `concurrency` in flight), each under a deadline → one consumer that writes, counts and
//! shows progress. Memory is bounded by the concurrency, not by the list length; throughput
//! grows with the worker threads because the checks are not polled from one task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

use crate::issues::{Issue, IssueCode};
use crate::net::{Dns, PolicyFetch};
use crate::output::ResultWriter;
use crate::report::{DomainReport, Outcome, now_millis};
use crate::scan::input::InputRow;
use crate::scan::progress::Progress;
use crate::scan::stats::Statistics;
use crate::validate::Validator;

/// How the scan runs, already validated.
#[derive(Debug, Clone, Copy)]
pub struct ScanSettings {
    /// Domains checked at once.
    pub concurrency: usize,
    /// Longest time one domain may take, all lookups included.
    pub domain_timeout: Duration,
    /// How often the output is made durable (whole lines / closed row groups).
    pub flush_interval: Duration,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            concurrency: 100,
            domain_timeout: Duration::from_secs(30),
            flush_interval: Duration::from_secs(5),
        }
    }
}

/// What a finished (or interrupted) scan reports.
#[derive(Debug)]
pub struct ScanResult {
    pub statistics: Statistics,
    /// True when the stop signal ended the scan before the input did.
    pub interrupted: bool,
}

/// Runs the scan. `rows` yields input rows or a fatal input error; `stop` resolves when the
/// scan must end early (Ctrl-C): no new row is started, rows in flight finish and are written.
pub async fn run_scan<D, F, S, X>(
    rows: S,
    validator: Arc<Validator<D, F>>,
    settings: ScanSettings,
    writer: &mut dyn ResultWriter,
    progress: &Progress,
    stop: X,
) -> Result<ScanResult, String>
where
    D: Dns + 'static,
    F: PolicyFetch + 'static,
    S: Stream<Item = Result<InputRow, String>>,
    X: Future<Output = ()>,
{
    let mut stopped = std::pin::pin!(stop);
    let mut interrupted = false;
    let mut input_error: Option<String> = None;
    let mut statistics = Statistics::new();
    {
        // Stop taking rows at the first fatal input error or at the stop signal.
        let rows = rows
            .take_until(futures::future::poll_fn(|cx| {
                if stopped.as_mut().poll(cx).is_ready() {
                    interrupted = true;
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }))
            .scan((), |_, row| {
                futures::future::ready(match row {
                    Ok(row) => Some(row),
                    Err(error) => {
                        input_error = Some(error);
                        None
                    }
                })
            });
        let timeout = settings.domain_timeout;
        let mut reports = std::pin::pin!(
            rows.map(|row| Spawned::check(&validator, row, timeout))
                .buffer_unordered(settings.concurrency.max(1))
        );
        // Flush on a clock, not only when rows arrive: a stalled input must not hold rows back.
        let mut flush_timer = tokio::time::interval(settings.flush_interval);
        flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unflushed = false;
        loop {
            tokio::select! {
                report = reports.next() => {
                    let Some(report) = report else { break };
                    writer
                        .write(&report)
                        .map_err(|e| format!("cannot write the output: {e}"))?;
                    statistics.add(&report);
                    progress.record(&report);
                    tracing::debug!(
                        domain = %report.domain,
                        outcome = report.outcome.as_str(),
                        duration_ms = report.duration_ms,
                        issues = report.issues.len(),
                        error = report.error.as_deref().unwrap_or(""),
                        "checked"
                    );
                    unflushed = true;
                }
                _ = flush_timer.tick() => {
                    if unflushed {
                        writer
                            .flush()
                            .map_err(|e| format!("cannot write the output: {e}"))?;
                        unflushed = false;
                    }
                }
            }
        }
    }
    writer
        .flush()
        .map_err(|e| format!("cannot write the output: {e}"))?;
    if let Some(error) = input_error {
        return Err(error);
    }
    Ok(ScanResult {
        statistics,
        interrupted,
    })
}

/// One row's report: an input error, the validator's verdict, or a deadline report.
pub async fn check_row<D: Dns, F: PolicyFetch>(
    validator: &Validator<D, F>,
    row: InputRow,
    timeout: Duration,
) -> DomainReport {
    if let Some(problem) = row.problem {
        return DomainReport::input_error(row.value, row.rank, problem);
    }
    let started = Instant::now();
    let scanned_at = now_millis();
    match tokio::time::timeout(timeout, validator.check_input(&row.value, row.rank)).await {
        Ok(report) => report,
        Err(_) => {
            let domain = crate::domain::normalize_domain(&row.value).unwrap_or_default();
            let mut report = DomainReport::new(domain, row.value, row.rank);
            let message = format!("checks did not finish within the {timeout:?} domain deadline");
            report.outcome = Outcome::Error;
            report.error = Some(message.clone());
            report
                .issues
                .push(Issue::new(IssueCode::DomainTimeout, message));
            report.scanned_at = scanned_at;
            report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            report
        }
    }
}

/// One row's check running as its own task; dropping it (an early end of the scan) aborts it.
struct Spawned {
    task: tokio::task::JoinHandle<DomainReport>,
    /// The row's value and rank, for the report of a check that panicked.
    value: String,
    rank: Option<i64>,
}

impl Spawned {
    fn check<D, F>(validator: &Arc<Validator<D, F>>, row: InputRow, timeout: Duration) -> Self
    where
        D: Dns + 'static,
        F: PolicyFetch + 'static,
    {
        let (value, rank) = (row.value.clone(), row.rank);
        let validator = Arc::clone(validator);
        let task = tokio::spawn(async move { check_row(&validator, row, timeout).await });
        Spawned { task, value, rank }
    }
}

impl Future for Spawned {
    type Output = DomainReport;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DomainReport> {
        match Pin::new(&mut self.task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(report)) => Poll::Ready(report),
            // A check that panicked (a bug) is reported as an error row; the scan goes on.
            Poll::Ready(Err(failure)) => {
                let domain = crate::domain::normalize_domain(&self.value).unwrap_or_default();
                let mut report =
                    DomainReport::new(domain, std::mem::take(&mut self.value), self.rank);
                report.outcome = Outcome::Error;
                report.error = Some(format!("the check stopped unexpectedly: {failure}"));
                Poll::Ready(report)
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.task.abort();
    }
}
