//! Crash safety for real: spawn a scan, SIGKILL it mid-run, check the output is readable up to
//! the last flush (CSV/JSON Lines: whole lines only; Parquet: complete part files), then
//! `--resume` and check that every input row is in the final result exactly once.

#![cfg(unix)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mta_sts_scan::lab::scenarios::lab_domain;
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::output::read_results;

fn scan_command(lab: &TestInternet, ca: &Path, list: &Path, output: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mta-sts-scan"));
    command
        .arg("scan")
        .arg(list)
        .arg("-o")
        .arg(output)
        .args(["--resolver", &lab.dns_address.to_string()])
        .args(["--policy-port", &lab.https_port.to_string()])
        .arg("--ca-file")
        .arg(ca)
        .args(["--allow-private-addresses", "--dns-timeout", "800ms", "-q"])
        .args([
            "--dns-rate",
            "0",
            "--https-rate",
            "0",
            "--concurrency",
            "16",
        ])
        .args([
            "--fetch-timeout",
            "1s",
            "--connect-timeout",
            "1s",
            "--flush-interval",
            "100ms",
        ])
        .env_remove("MTA_STS_SCAN_SHARD")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Waits until the scan's output holds at least one durable result row.
async fn wait_for_first_rows(output: &Path, extension: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        // Readable through the same reader `stats` and `--resume` use (a Parquet part counts
        // once its footer is written).
        let ready = read_results(output, None).is_ok_and(|mut rows| rows.any(|row| row.is_ok()));
        if ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{extension}: no rows written within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn inputs(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for row in read_results(path, None).unwrap() {
        *counts.entry(row.unwrap().input).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_scans_leave_readable_output_and_resume_to_exactly_once() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, lab.ca_pem()).unwrap();
    // Every fourth domain is a tarpit (a one-second fetch), so the scan runs for seconds; some
    // lines repeat, and resuming must keep each occurrence.
    let mut lines: Vec<String> = (0..400)
        .map(|n| {
            if n % 4 == 0 {
                lab_domain("tarpit", n)
            } else {
                lab_domain("no-sts", n)
            }
        })
        .collect();
    lines.extend((0..20).map(|n| lab_domain("no-sts", n * 4 + 1)));
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lines.join("\n")).unwrap();
    let mut expected: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        *expected.entry(line.clone()).or_insert(0) += 1;
    }

    for extension in ["csv", "jsonl", "parquet"] {
        let output = dir.path().join(format!("out.{extension}"));
        let mut child = scan_command(&lab, &ca, &list, &output).spawn().unwrap();
        // Kill as soon as a first flush has made rows durable: an event, not a fixed time, so
        // the test holds on a loaded machine.
        wait_for_first_rows(&output, extension).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let partial = inputs(&output);
        let written: usize = partial.values().sum();
        assert!(
            written > 0 && written < lines.len(),
            "{extension}: {written} rows after kill"
        );
        if extension != "parquet" {
            let bytes = std::fs::read(&output).unwrap();
            assert_eq!(bytes.last(), Some(&b'\n'), "{extension}: whole lines only");
        } else {
            assert!(!output.exists(), "the merged file appears only at the end");
        }

        let status = scan_command(&lab, &ca, &list, &output)
            .arg("--resume")
            .status()
            .unwrap();
        assert!(status.success(), "{extension}: resume failed");
        assert_eq!(
            inputs(&output),
            expected,
            "{extension}: each input row exactly once"
        );
        if extension == "parquet" {
            assert!(!dir.path().join("out.parquet.parts").exists());
        }
    }
}
