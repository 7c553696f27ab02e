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

const SPINNER: &str = "{spinner} {elapsed_precise} {human_pos} domains {rate} {msg}";
const BAR: &str =
    "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} {rate} ETA {eta} {msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}

fn show_total(bar: &ProgressBar, total: u64) {
    bar.set_length(total);
    bar.set_style(style(BAR));
}

impl Progress {
    /// A bar when `visible`; `total` when the number of rows is known up front.
    pub fn new(visible: bool, total: Option<u64>) -> Self {
        let bar = visible.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
            match total {
                Some(total) => show_total(&bar, total),
                None => bar.set_style(style(SPINNER)),
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

    /// Sets the total once known (counted in the background): the spinner becomes a bar
    /// with an ETA. Returns a setter that outlives `self`'s borrow.
    pub fn total_setter(&self) -> impl FnOnce(u64) + Send + 'static {
        let bar = self.bar.clone();
        move |total| {
            if let Some(bar) = bar {
                show_total(&bar, total);
            }
        }
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
            let position = bar.position();
            if position <= MESSAGE_EVERY || position % MESSAGE_EVERY == 0 {
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
