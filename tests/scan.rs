//! `scan` end to end against the test internet: a list covering every scenario plus malformed
//! lines, in each output format. One row per input row, the right outcome and codes per row,
//! the summary equal to counts recomputed from the rows, and shards that merge to the whole.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use mta_sts_scan::config::ScannerConfig;
use mta_sts_scan::lab::scenarios::{SCENARIOS, lab_domain};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::output::{Format, OutputTarget, read_results};
use mta_sts_scan::report::{DomainReport, Outcome};
use mta_sts_scan::scan::job::{InputSource, ScanJob, run_job};
use mta_sts_scan::scan::pipeline::ScanSettings;
use mta_sts_scan::scan::stats::Statistics;

/// Malformed lines and what their rows must say.
const BAD_LINES: &[&str] = &[
    "https://example.com/path",
    "postmaster@example.com",
    "192.0.2.1",
    "*.example.com",
    "exa mple.com",
    "a..b.com",
];

/// A Tranco-style list: every scenario twice, the bad lines, a comment and a blank line.
fn write_list(path: &Path) -> usize {
    let mut text = String::from("# lab list\n\n");
    let mut rank = 0;
    for n in 0..2 {
        for scenario in SCENARIOS {
            rank += 1;
            text.push_str(&format!("{rank},{}\n", lab_domain(scenario.slug, n)));
        }
    }
    for bad in BAD_LINES {
        rank += 1;
        text.push_str(&format!("{rank},{bad}\n"));
    }
    rank += 1;
    text.push_str(&format!("{rank},\"unbalanced.test\n"));
    std::fs::write(path, text).unwrap();
    rank
}

fn lab_config(lab: &TestInternet) -> ScannerConfig {
    let mut config = lab.scanner_config();
    config.dns.max_in_flight = 1024;
    config
}

fn job(input: &Path, output: &Path, format: Format) -> ScanJob {
    ScanJob {
        input: InputSource::File(input.to_owned()),
        column: None,
        output: OutputTarget::File(output.to_owned()),
        format,
        summary: Some(output.with_extension("summary.json")),
        show_progress: false,
        shard: None,
        resume: false,
        mx_output: None,
        settings: ScanSettings {
            concurrency: 64,
            domain_timeout: Duration::from_secs(20),
            flush_interval: Duration::from_millis(200),
        },
    }
}

fn read_all(path: &Path) -> Vec<DomainReport> {
    read_results(path, None)
        .unwrap()
        .map(|row| row.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_writes_one_correct_row_per_input_row_in_every_format() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let input_rows = write_list(&list);
    for format in [Format::Csv, Format::Parquet, Format::Jsonl] {
        let output = dir.path().join(format!("results.{}", format.extension()));
        let result = run_job(
            &job(&list, &output, format),
            &lab_config(&lab),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(!result.run.interrupted);
        let rows = read_all(&output);
        assert_eq!(rows.len(), input_rows, "{format:?}: one row per input row");
        assert_eq!(result.statistics.rows as usize, input_rows);

        let by_input: HashMap<&str, &DomainReport> =
            rows.iter().map(|r| (r.input.as_str(), r)).collect();
        assert_eq!(
            by_input.len(),
            input_rows,
            "{format:?}: inputs are distinct"
        );
        for n in 0..2 {
            // MX-probe scenarios are judged with --probe-mx in tests/mx_probe.rs.
            for scenario in SCENARIOS.iter().filter(|s| !s.needs_mx_probe()) {
                let domain = lab_domain(scenario.slug, n);
                let row = by_input[domain.as_str()];
                assert_eq!(
                    row.outcome, scenario.outcome,
                    "{format:?} {domain}: {:?}",
                    row.issues
                );
                for code in scenario.codes {
                    assert!(row.has_issue(*code), "{format:?} {domain}: no {code}");
                }
                assert!(row.rank.is_some());
            }
        }
        for bad in BAD_LINES.iter().chain(&["\"unbalanced.test"]) {
            let row = rows
                .iter()
                .find(|r| r.input == *bad || r.input == bad.trim_matches('"'))
                .unwrap_or_else(|| panic!("{format:?}: no row for {bad:?}"));
            assert_eq!(row.outcome, Outcome::InputError, "{format:?} {bad}");
            assert!(row.error.as_deref().is_some_and(|e| !e.is_empty()));
        }

        // The summary equals the statistics recomputed from the rows written.
        let mut recomputed = Statistics::new();
        for row in &rows {
            recomputed.add(row);
        }
        assert_eq!(recomputed, result.statistics, "{format:?}: summary = rows");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(output.with_extension("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["rows"], input_rows);
        assert_eq!(
            summary["outcomes"]["valid"],
            rows.iter().filter(|r| r.outcome == Outcome::Valid).count()
        );
        assert_eq!(
            summary["mta_sts"]["records"],
            rows.iter().filter(|r| r.has_mta_sts).count()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_of_shards_merge_to_the_whole() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    write_list(&list);
    let text = std::fs::read_to_string(&list).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let shard_a = dir.path().join("a.csv");
    let shard_b = dir.path().join("b.csv");
    std::fs::write(&shard_a, first.join("\n")).unwrap();
    std::fs::write(&shard_b, second.join("\n")).unwrap();
    let config = lab_config(&lab);
    let whole_out = dir.path().join("whole.jsonl");
    let a_out = dir.path().join("a.parquet");
    let b_out = dir.path().join("b.csv.out.csv");
    run_job(
        &job(&list, &whole_out, Format::Jsonl),
        &config,
        std::future::pending(),
    )
    .await
    .unwrap();
    run_job(
        &job(&shard_a, &a_out, Format::Parquet),
        &config,
        std::future::pending(),
    )
    .await
    .unwrap();
    run_job(
        &job(&shard_b, &b_out, Format::Csv),
        &config,
        std::future::pending(),
    )
    .await
    .unwrap();

    let stats_of = |path: &Path| {
        let mut statistics = Statistics::new();
        for row in read_all(path) {
            statistics.add(&row);
        }
        statistics
    };
    let mut merged = stats_of(&a_out);
    merged += &stats_of(&b_out);
    let whole = stats_of(&whole_out);
    // Timestamps differ between runs; every count must agree.
    merged.first_scanned_at = None;
    merged.last_scanned_at = None;
    let mut whole_counts = whole.clone();
    whole_counts.first_scanned_at = None;
    whole_counts.last_scanned_at = None;
    assert_eq!(merged, whole_counts);
    assert!(whole.rows > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_signal_ends_the_scan_with_a_readable_partial_output() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let domains: Vec<String> = (0..5000).map(|n| lab_domain("no-sts", n)).collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    let output = dir.path().join("partial.parquet");
    let mut scan = job(&list, &output, Format::Parquet);
    scan.settings.concurrency = 8;
    // Stop once the scan is under way (a few hundred lookups answered): an event, not a time.
    let queries = lab.dns_queries.clone();
    let stop = async move {
        while queries.load(std::sync::atomic::Ordering::Relaxed) < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let result = run_job(&scan, &lab_config(&lab), stop).await.unwrap();
    assert!(result.run.interrupted);
    let rows = read_all(&output);
    assert_eq!(rows.len() as u64, result.statistics.rows);
    assert!(rows.len() < 5000, "stopped early ({} rows)", rows.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domain_deadline_turns_a_stalled_domain_into_an_error_row() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "tarpit-1.test\nvalid-enforce-1.test\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let mut scan = job(&list, &output, Format::Jsonl);
    scan.settings.domain_timeout = Duration::from_millis(700);
    run_job(&scan, &lab_config(&lab), std::future::pending())
        .await
        .unwrap();
    let rows = read_all(&output);
    let stalled = rows.iter().find(|r| r.domain == "tarpit-1.test").unwrap();
    assert_eq!(stalled.outcome, Outcome::Error);
    assert!(stalled.has_issue(mta_sts_scan::issues::IssueCode::DomainTimeout));
    assert!(
        stalled.duration_ms >= 700 && stalled.duration_ms < 2_000,
        "{}",
        stalled.duration_ms
    );
    let fine = rows
        .iter()
        .find(|r| r.domain == "valid-enforce-1.test")
        .unwrap();
    assert_eq!(fine.outcome, Outcome::Valid);
}
