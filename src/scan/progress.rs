//! The progress display: an indicatif bar on stderr (done/total, rate, ETA, running counts of
//! outcomes) when stderr is a terminal, nothing otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{DomainReport, Outcome};

/// Counts shown next to the bar are refreshed every this many rows.
const MESSAGE_EVERY: u64 = 256;

/// Progress of a scan; a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// valid, invalid, absent, error (input errors count as error).
    counts: [AtomicU64; 4],
}

impl Progress {
    /// A bar when `visible`; `total` when the number of rows is known up front.
    pub fn new(visible: bool, total: Option<u64>) -> Self {
        let bar = visible.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(5));
            let template = if total.is_some() {
                "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta} {msg}"
            } else {
                "{spinner} {elapsed_precise} {human_pos} domains {per_sec} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            counts: Default::default(),
        }
    }

    /// A hidden progress display.
    pub fn hidden() -> Self {
        Progress::new(false, None)
    }

    /// A handle to the bar (cheap clone) for setting the total from another task.
    pub fn handle(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    /// Counts one finished row.
    pub fn record(&self, report: &DomainReport) {
        let slot = match report.outcome {
            Outcome::Valid => 0,
            Outcome::Invalid => 1,
            Outcome::Absent => 2,
            Outcome::Error | Outcome::InputError => 3,
        };
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if bar.position() % MESSAGE_EVERY == 0 {
                bar.set_message(self.counts_text());
            }
        }
    }

    fn counts_text(&self) -> String {
        let [valid, invalid, absent, error] =
            [0, 1, 2, 3].map(|i| self.counts[i].load(Ordering::Relaxed));
        format!("valid {valid} | invalid {invalid} | absent {absent} | error {error}")
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.counts_text());
            bar.finish_and_clear();
        }
    }
}
