//! `mta-sts-scan demo`: the main job on the built-in test internet, offline. Starts the lab,
//! scans the demo list of `sample-data/` (compiled in, so an installed binary has it too), and
//! leaves the list, the results and the summary in a directory it names.

use std::path::PathBuf;
use std::time::Duration;

use crate::lab::{LabOptions, TestInternet};
use crate::output::{Format, OutputTarget};
use crate::scan::job::{InputSource, JobResult, ScanJob, run_job};
use crate::scan::pipeline::ScanSettings;

/// The demo list: lab domains of every scenario in a realistic mix, and a few non-domains.
pub const DEMO_LIST: &str = include_str!("../../sample-data/demo-domains.csv");

/// What the demo produced, and where.
pub struct DemoResult {
    pub job: JobResult,
    pub directory: PathBuf,
    pub results: PathBuf,
    pub summary: PathBuf,
    /// The MX table of the probed hosts.
    pub mx_table: PathBuf,
}

/// Runs the demo into `directory` (a new temporary directory when `None`).
pub async fn run_demo(
    directory: Option<PathBuf>,
    format: Format,
    show_progress: bool,
    stop: impl std::future::Future<Output = ()>,
) -> Result<DemoResult, String> {
    let directory = match directory {
        Some(directory) => directory,
        None => std::env::temp_dir().join(format!(
            "mta-sts-scan-demo-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        )),
    };
    std::fs::create_dir_all(&directory)
        .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
    let list = directory.join("demo-domains.csv");
    std::fs::write(&list, DEMO_LIST)
        .map_err(|e| format!("cannot write {}: {e}", list.display()))?;
    let results = directory.join(format!("results.{}", format.extension()));
    let summary = directory.join("summary.json");
    let lab = TestInternet::start(LabOptions::default())
        .await
        .map_err(|e| format!("cannot start the test internet: {e}"))?;
    let mut config = lab.scanner_config();
    config.dns.max_in_flight = 4096;
    // The demo probes MX hosts (spec §7): the lab's SMTP servers answer for `*.mx.test`.
    config.mx_probe = Some(lab.mx_probe_settings());
    let mx_table = directory.join(format!("mx.{}", format.extension()));
    let job = ScanJob {
        input: InputSource::File(list),
        column: None,
        output: OutputTarget::File(results.clone()),
        format,
        summary: Some(summary.clone()),
        show_progress,
        shard: None,
        resume: false,
        mx_output: Some(mx_table.clone()),
        settings: ScanSettings {
            concurrency: 256,
            domain_timeout: Duration::from_secs(15),
            ..ScanSettings::default()
        },
    };
    let job = run_job(&job, &config, stop).await?;
    Ok(DemoResult {
        job,
        directory,
        results,
        summary,
        mx_table,
    })
}
