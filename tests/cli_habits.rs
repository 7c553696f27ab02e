//! Everyday command-line habits: `scan --fail-on` for CI jobs, `scan --report`, and `check` with
//! several domains (arguments or `-` for standard input), all against the test internet.

use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;

use common::{Lab, lab};

fn scan(lab: &Lab) -> Command {
    let mut command = lab.command("scan");
    command.args(["--dns-rate", "0", "--https-rate", "0", "--quiet"]);
    command
}

fn with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_exits_1_after_writing_every_row_and_the_report() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("suppliers.txt");
    std::fs::write(
        &list,
        "valid-enforce-1.test\nrecord-multiple-1.test\nno-sts-1.test\n",
    )
    .unwrap();
    let results = dir.path().join("results.csv");
    let report = dir.path().join("report.html");
    let output = scan(&lab)
        .arg(&list)
        .arg("-o")
        .arg(&results)
        .arg("--report")
        .arg(&report)
        .args(["--fail-on", "delivery-at-risk,invalid"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--fail-on matched: invalid (1 rows)"),
        "{stderr}"
    );
    assert!(!stderr.contains("delivery-at-risk ("), "{stderr}");
    let rows = mta_sts_scan::output::read_results(&results, None)
        .unwrap()
        .count();
    assert_eq!(rows, 3, "the scan completed");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<section id=\"domains\">"));
    assert!(html.contains("record-multiple-1.test"));

    // Nothing matches: 0, as without --fail-on.
    for fail_on in ["delivery-at-risk,error", ""] {
        let output = scan(&lab)
            .arg(&list)
            .args(["-o", "-", "--fail-on", fail_on])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{fail_on}: {}",
            describe(&output)
        );
    }
    // Issue codes work too.
    let output = scan(&lab)
        .arg(&list)
        .args(["-o", "-", "--fail-on", "sts-record-multiple"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
}

#[test]
fn fail_on_and_report_refuse_bad_arguments_before_scanning() {
    for (args, message) in [
        (
            &["-", "--fail-on", "invalid,everything"][..],
            "--fail-on \"everything\"",
        ),
        (
            &["-", "-o", "-", "--report", "r.html"][..],
            "--report needs an output file",
        ),
    ] {
        let output = with_stdin(common::binary().arg("scan").args(args), "example.test\n");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing scanned");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_takes_several_domains_and_exits_with_the_worst() {
    let lab = lab().await;
    let output = lab
        .command("check")
        .args(["valid-enforce-1.test", "no-sts-1.test", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let domains: Vec<String> = stdout
        .lines()
        .map(|line| {
            let report: serde_json::Value = serde_json::from_str(line).unwrap();
            report["domain"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        domains,
        ["valid-enforce-1.test", "no-sts-1.test"],
        "in order"
    );

    // `-`: one per line from stdin, comments and blank lines skipped.
    let output = with_stdin(
        lab.command("check").args(["-", "--json"]),
        "valid-enforce-1.test\n# a comment\n\nservfail-1.test\n",
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);

    // Text: one report each; all valid gives 0.
    let output = lab
        .command("check")
        .args(["valid-enforce-1.test", "valid-enforce-2.test"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("valid-enforce-1.test") && stdout.contains("valid-enforce-2.test"));

    // One domain named on the command line keeps the pretty JSON object.
    let output = lab
        .command("check")
        .args(["valid-enforce-1.test", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.lines().count() > 1, "pretty");
    serde_json::from_str::<serde_json::Value>(&stdout).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_lists_in_and_compressed_results_out() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = "1,valid-enforce-1.test\n2,no-sts-1.test\n3,record-multiple-1.test\n";
    // Tranco's form: a zip holding one deflated CSV.
    let zipped = dir.path().join("top-1m.csv.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
    writer
        .start_file(
            "top-1m.csv",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .unwrap();
    writer.write_all(list.as_bytes()).unwrap();
    writer.finish().unwrap();
    let results = dir.path().join("results.csv.gz");
    let output = scan(&lab)
        .arg(&zipped)
        .arg("-o")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let gz = std::fs::read(&results).unwrap();
    assert_eq!(&gz[..2], b"\x1f\x8b", "gzip on disk");
    let rows: Vec<(String, Option<i64>)> = mta_sts_scan::output::read_results(&results, None)
        .unwrap()
        .map(|row| {
            let row = row.unwrap();
            (row.domain, row.rank)
        })
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.contains(&("record-multiple-1.test".to_owned(), Some(3))));

    // zstd on standard input, JSON Lines out as zstd; `stats` reads it back.
    let compressed = zstd::encode_all(list.as_bytes(), 3).unwrap();
    let jsonl = dir.path().join("results.jsonl.zst");
    let mut child = scan(&lab)
        .arg("-")
        .arg("-o")
        .arg(&jsonl)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&compressed).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stats = common::binary()
        .args(["stats", "--json"])
        .arg(&jsonl)
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(summary["rows"], 3, "{}", describe(&stats));
    assert_eq!(summary["outcomes"]["invalid"], 1);

    // What cannot work is refused before scanning.
    for (output_name, extra, message) in [
        (
            "r.parquet.gz",
            &[][..],
            "Parquet compresses its columns itself",
        ),
        ("r.csv.zip", &[][..], "cannot be written as zip"),
        (
            "results.csv.gz",
            &["--resume"][..],
            "--resume cannot continue a gzip file",
        ),
    ] {
        let output = scan(&lab)
            .arg(&zipped)
            .arg("-o")
            .arg(dir.path().join(output_name))
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{output_name}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{output_name}: {stderr}");
    }
    let rows = mta_sts_scan::output::read_results(&results, None).unwrap();
    assert_eq!(
        rows.map(Result::unwrap).count(),
        3,
        "the refused --resume left the file intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn color_is_chosen_by_flag_or_environment_not_only_by_the_terminal() {
    let lab = lab().await;
    let escape = |output: &Output| String::from_utf8_lossy(&output.stdout).contains("\u{1b}[");
    let check = |extra: &[&str], env: &[(&str, &str)]| {
        let mut command = lab.command("check");
        command.arg("record-multiple-1.test").args(extra);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    // Piped: no colour by default, whatever NO_COLOR says.
    assert!(!escape(&check(&[], &[])));
    assert!(escape(&check(&["--color", "always"], &[])));
    assert!(escape(&check(&["--color=always"], &[("NO_COLOR", "1")])));
    assert!(escape(&check(&[], &[("MTA_STS_SCAN_COLOR", "always")])));
    assert!(!escape(&check(
        &["--color", "never"],
        &[("MTA_STS_SCAN_COLOR", "always")]
    )));
    let bad = check(&["--color", "sometimes"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_and_rust_log_add_debug_lines_in_the_log_format() {
    let lab = lab().await;
    let list = "valid-enforce-1.test\nno-sts-1.test\n";
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = lab.command("scan");
        command.args(["-", "-o", "-", "--dns-rate", "0", "--https-rate", "0"]);
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = with_stdin(&mut command, list);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        String::from_utf8(output.stderr).unwrap()
    };
    let json_lines = |stderr: &str| -> Vec<serde_json::Value> {
        stderr
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    };
    let debug_domains = |lines: &[serde_json::Value]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["level"] == "debug" && l["message"] == "checked")
            .map(|l| l["domain"].as_str().unwrap().to_owned())
            .collect()
    };

    // Without -v: the summary line only, as before.
    let quiet = json_lines(&run(&["--log-format", "json"], &[]));
    assert_eq!(quiet.len(), 1, "{quiet:?}");
    assert_eq!(quiet[0]["event"], "summary");

    // -v: one debug line per domain, in the same JSON line shape, and the summary unchanged.
    let verbose = json_lines(&run(&["--log-format", "json", "-v"], &[]));
    let mut domains = debug_domains(&verbose);
    domains.sort();
    assert_eq!(domains, ["no-sts-1.test", "valid-enforce-1.test"]);
    let checked = verbose.iter().find(|l| l["message"] == "checked").unwrap();
    assert_eq!(checked["target"], "mta_sts_scan::scan::pipeline");
    assert!(checked["duration_ms"].is_u64(), "{checked}");
    let summaries: Vec<_> = verbose.iter().filter(|l| l["event"] == "summary").collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["summary"]["rows"], 2);

    // RUST_LOG alone turns them on too, and text lines name level and target.
    let text = run(&["--quiet"], &[("RUST_LOG", "mta_sts_scan=debug")]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("debug mta_sts_scan::scan::pipeline: checked domain=")),
        "{text}"
    );
    // A RUST_LOG meant for another tool is ignored with a warning, not an error.
    let odd = run(&["--quiet"], &[("RUST_LOG", "a[span{x=1}]=debug")]);
    assert!(odd.contains("warning: ignoring RUST_LOG"), "{odd}");
}
