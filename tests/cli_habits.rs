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
        assert_eq!(output.status.code(), Some(0), "{fail_on}: {}", describe(&output));
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
        (&["-", "--fail-on", "invalid,everything"][..], "--fail-on \"everything\""),
        (&["-", "-o", "-", "--report", "r.html"][..], "--report needs an output file"),
    ] {
        let output = with_stdin(common::binary().arg("scan").args(args), "example.test\n");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", describe(&output));
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
    assert_eq!(domains, ["valid-enforce-1.test", "no-sts-1.test"], "in order");

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
