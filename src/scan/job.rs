//! One scan job end to end: open the input and the output, start the reader thread and the row
//! count, run the pipeline, close the output, and build the run metadata and the summary.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use futures::StreamExt;

use crate::config::ScannerConfig;
use crate::output::mx_table::{MxRow, write_mx_table};
use crate::output::store::{Location, check_writable, is_object_path, upload_file, write_bytes};
use crate::output::{Format, OutputTarget, RunMetadata, append_writer, create_writer};
use crate::report::{format_millis, now_millis};
use crate::scan::input::{InputReader, InputRow};
use crate::scan::pipeline::{ScanSettings, run_scan};
use crate::scan::progress::Progress;
use crate::scan::resume::Done;
use crate::scan::shard::Shard;
use crate::scan::stats::{RunInfo, Statistics};

/// Where the domain list comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    /// `-` is standard input.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(PathBuf::from(arg))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            InputSource::Stdin => "(stdin)".to_owned(),
            InputSource::File(path) => path.display().to_string(),
        }
    }

    /// The list's lines, decompressed when it is gzip, zstd or (a file only) zip.
    fn open(&self) -> Result<Box<dyn BufRead + Send>, String> {
        match self {
            InputSource::Stdin => crate::compression::decode_stream(
                Box::new(BufReader::with_capacity(64 * 1024, std::io::stdin())),
                "the input (stdin)",
            ),
            InputSource::File(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| format!("cannot open the input {}: {e}", path.display()))?;
                crate::compression::read_file(file, path)
                    .map_err(|e| format!("cannot read the input: {e}"))
            }
        }
    }
}

/// A scan, fully specified.
#[derive(Debug, Clone)]
pub struct ScanJob {
    pub input: InputSource,
    /// Header column holding the domain.
    pub column: Option<String>,
    pub output: OutputTarget,
    pub format: Format,
    /// Where to write the summary JSON, if anywhere.
    pub summary: Option<PathBuf>,
    pub show_progress: bool,
    pub settings: ScanSettings,
    /// Only the rows of this shard.
    pub shard: Option<Shard>,
    /// Continue an interrupted run: skip rows already in the output, append the rest.
    pub resume: bool,
    /// Where to write the MX table of spec §7 (with `--probe-mx`).
    pub mx_output: Option<PathBuf>,
}

/// What a job produced.
#[derive(Debug)]
pub struct JobResult {
    pub statistics: Statistics,
    pub run: RunInfo,
}

/// Runs the job; `stop` ends it early (in-flight rows are still written, the output closed).
pub async fn run_job(
    job: &ScanJob,
    config: &ScannerConfig,
    stop: impl Future<Output = ()>,
) -> Result<JobResult, String> {
    let started_at = now_millis();
    let started = Instant::now();
    refuse_overwriting_the_input(job)?;
    if let Some(path) = &job.summary {
        // Find an unwritable summary path now, not after hours of scanning.
        let location = Location::parse(&path.to_string_lossy())?;
        check_writable(&location)
            .await
            .map_err(|e| format!("cannot write the summary: {e}"))?;
    }
    if let OutputTarget::File(path) = &job.output
        && is_object_path(path)
    {
        // Wrong credentials or a missing bucket: say so before the first domain is scanned.
        check_writable(&Location::parse(&path.to_string_lossy())?).await?;
    }
    if let Some(path) = &job.mx_output
        && is_object_path(path)
    {
        check_writable(&Location::parse(&path.to_string_lossy())?)
            .await
            .map_err(|e| format!("cannot write the MX table: {e}"))?;
    }
    let reader = job.input.open()?;
    tracing::debug!(
        input = %job.input.describe(),
        format = job.format.as_str(),
        concurrency = job.settings.concurrency,
        resume = job.resume,
        "scan starting"
    );
    let validator = std::sync::Arc::new(config.build_validator()?);
    let metadata = RunMetadata {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        scan_started: format_millis(started_at),
        resolver: config.dns.describe(),
        settings: config.describe(),
        trust_store: config.describe_trust(),
        input: match job.shard {
            Some(shard) => format!("{} (shard {shard})", job.input.describe()),
            None => job.input.describe(),
        },
    };
    let (mut writer, done) = match (&job.output, job.resume) {
        (OutputTarget::File(path), true) => {
            let done = Done::load(path, job.format)?;
            (append_writer(path, job.format, &metadata)?, Some(done))
        }
        (OutputTarget::Stdout, true) => {
            return Err("--resume needs an output file (-o PATH)".to_owned());
        }
        (target, false) => (create_writer(target, job.format, &metadata)?, None),
    };
    let resumed_statistics = done.as_ref().map(|done| done.statistics.clone());
    // With --resume the bar counts only the rows still to check.
    let already_done = done.as_ref().map_or(0, Done::rows);
    let progress = Progress::new(job.show_progress, None);
    if job.show_progress
        && let InputSource::File(path) = &job.input
    {
        // Count the rows in the background so the bar can show a total and an ETA.
        let path = path.clone();
        let column = job.column.clone();
        let shard = job.shard;
        let counted = tokio::task::spawn_blocking(move || count_rows(&path, column, shard));
        let bar_total = progress.total_setter();
        tokio::spawn(async move {
            if let Ok(Some(total)) = counted.await {
                bar_total(total.saturating_sub(already_done));
            }
        });
    }
    let rows = spawn_reader(
        reader,
        job.column.clone(),
        job.shard,
        done,
        job.settings.concurrency,
    );
    let result = run_scan(
        rows,
        std::sync::Arc::clone(&validator),
        job.settings,
        writer.as_mut(),
        &progress,
        stop,
    )
    .await;
    progress.finish();
    let closed = writer
        .finish()
        .map_err(|e| format!("cannot finish the output: {e}"));
    let mut result = result?;
    closed?;
    // Spec §7: the MX table (one row per probed host) and its funnel in the statistics.
    if let Some(probes) = validator.mx_results() {
        let mut mx_rows: Vec<MxRow> = probes
            .iter()
            .map(|(probe, domains)| MxRow::from_probe(probe, *domains))
            .collect();
        for row in &mx_rows {
            result.statistics.add_mx_row(row);
        }
        if let Some(path) = &job.mx_output {
            write_mx_output(path, &mut mx_rows)?;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let checked_now = result.statistics.rows;
    if let Some(mut earlier) = resumed_statistics {
        earlier += &result.statistics;
        result.statistics = earlier;
    }
    let run = RunInfo {
        tool_version: metadata.tool_version,
        input: metadata.input,
        started: Some(metadata.scan_started),
        finished: Some(format_millis(now_millis())),
        wall_seconds: Some(wall),
        domains_per_second: (wall > 0.0).then(|| checked_now as f64 / wall),
        resolver: Some(metadata.resolver),
        settings: Some(metadata.settings),
        trust_store: Some(metadata.trust_store),
        interrupted: result.interrupted,
    };
    if let Some(path) = &job.summary {
        write_summary(path, &result.statistics, &run)?;
    }
    Ok(JobResult {
        statistics: result.statistics,
        run,
    })
}

/// Writes the MX table to a local file, or stages it locally and uploads it (`s3://`).
fn write_mx_output(path: &std::path::Path, rows: &mut [MxRow]) -> Result<(), String> {
    let Location::Object(object) = Location::parse(&path.to_string_lossy())? else {
        return write_mx_table(path, rows);
    };
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = std::env::temp_dir().join(format!(
        "mta-sts-scan-mx-{}-{}.{extension}",
        std::process::id(),
        now_millis()
    ));
    let written = write_mx_table(&staged, rows).and_then(|()| upload_file(&staged, &object));
    let _ = std::fs::remove_file(&staged);
    written.map_err(|e| e.replace(&staged.display().to_string(), &path.display().to_string()))
}

/// `scan list.csv -o list.csv` would truncate the list before reading it.
fn refuse_overwriting_the_input(job: &ScanJob) -> Result<(), String> {
    let InputSource::File(input) = &job.input else {
        return Ok(());
    };
    let Ok(input) = input.canonicalize() else {
        return Ok(()); // opening the input reports it
    };
    let output = match &job.output {
        OutputTarget::File(path) => Some(path),
        OutputTarget::Stdout => None,
    };
    for path in output.into_iter().chain(job.summary.as_ref()) {
        if path.canonicalize().is_ok_and(|p| p == input) {
            return Err(format!(
                "{} is the input: refusing to overwrite it",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Writes the summary JSON.
pub fn write_summary(
    path: &std::path::Path,
    statistics: &Statistics,
    run: &RunInfo,
) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(&statistics.summary(run)).map_err(|e| e.to_string())?;
    if is_object_path(path) {
        return write_bytes(&Location::parse(&path.to_string_lossy())?, json)
            .map_err(|e| format!("cannot write the summary: {e}"));
    }
    std::fs::write(path, json)
        .map_err(|e| format!("cannot write the summary {}: {e}", path.display()))
}

/// Reads rows on a blocking thread into a bounded channel: the list is never held in memory.
fn spawn_reader(
    reader: Box<dyn BufRead + Send>,
    column: Option<String>,
    shard: Option<Shard>,
    mut done: Option<Done>,
    concurrency: usize,
) -> impl futures::Stream<Item = Result<InputRow, String>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(concurrency.max(1) * 2);
    tokio::task::spawn_blocking(move || {
        for row in InputReader::new(reader, column) {
            if let (Some(shard), Ok(row)) = (&shard, &row)
                && !shard.accepts(row)
            {
                continue;
            }
            if let (Some(done), Ok(row)) = (&mut done, &row)
                && done.take(&row.value)
            {
                continue;
            }
            let fatal = row.is_err();
            if sender.blocking_send(row).is_err() || fatal {
                break;
            }
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|row| (row, receiver))
    })
    .fuse()
}

/// Counts the data rows of a file (for the progress total).
fn count_rows(path: &std::path::Path, column: Option<String>, shard: Option<Shard>) -> Option<u64> {
    let reader = crate::compression::open_file(path).ok()?;
    let mut rows = 0;
    for row in InputReader::new(reader, column) {
        let row = row.ok()?;
        rows += u64::from(shard.is_none_or(|shard| shard.accepts(&row)));
    }
    Some(rows)
}
