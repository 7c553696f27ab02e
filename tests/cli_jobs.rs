//! The binary as shells and unattended jobs use it: `--version`, `--help` examples, shell
//! completions, `--log-format json` on stderr, and `serve` started, used and stopped by a signal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{binary, lab};
use mta_sts_scan::lab::scenarios::lab_domain;

fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line:?}\n{text}"))
        })
        .collect()
}

#[test]
fn version_prints_the_cargo_version() {
    let stdout = stdout_of(binary().arg("--version"));
    assert_eq!(
        stdout.trim(),
        format!("mta-sts-scan {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_subcommand_help_has_examples() {
    for subcommand in [
        "check",
        "scan",
        "stats",
        "serve",
        "demo",
        "lab",
        "completions",
    ] {
        let help = stdout_of(binary().args([subcommand, "--help"]));
        let examples = help
            .split_once("Examples:\n")
            .map(|(_, examples)| examples)
            .unwrap_or_else(|| panic!("{subcommand} --help has no examples:\n{help}"));
        assert!(
            examples.contains(&format!("mta-sts-scan {subcommand}")),
            "{subcommand} --help examples do not run {subcommand}:\n{help}"
        );
    }
    let help = stdout_of(binary().arg("--help"));
    assert!(help.contains("--log-format"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn completions_for_every_shell() {
    let bash = stdout_of(binary().args(["completions", "bash"]));
    assert!(bash.contains("mta-sts-scan"), "{bash}");
    assert!(bash.contains("scan"), "{bash}");
    assert!(bash.contains("--log-format"), "{bash}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(binary().args(["completions", shell]));
        assert!(script.contains("mta-sts-scan"), "{shell}: {script}");
        assert!(script.contains("serve"), "{shell}: {script}");
    }
    let unknown = binary().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_with_json_logs_writes_only_json_lines_with_one_summary() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let domains: Vec<String> = ["valid-enforce", "no-sts", "record-multiple"]
        .iter()
        .flat_map(|slug| (0..3).map(move |n| lab_domain(slug, n)))
        .chain(["not a domain".to_owned()])
        .collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    let output = lab
        .command("scan")
        .arg(&list)
        .arg("-o")
        .arg(dir.path().join("out.csv"))
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines = json_lines(&stderr);
    let summaries: Vec<_> = lines
        .iter()
        .filter(|line| line["event"] == "summary")
        .collect();
    assert_eq!(summaries.len(), 1, "{stderr}");
    let summary = &summaries[0];
    assert_eq!(summary["level"], "info");
    assert_eq!(summary["summary"]["rows"], 10);
    assert_eq!(summary["summary"]["outcomes"]["valid"], 3);
    assert_eq!(summary["summary"]["outcomes"]["invalid"], 3);
    assert_eq!(summary["summary"]["outcomes"]["input_error"], 1);
    assert!(
        !stderr.contains("valid policies"),
        "the table is not written"
    );

    // The same from the environment, for an error.
    let missing = lab
        .command("scan")
        .arg(dir.path().join("missing.csv"))
        .env("MTA_STS_SCAN_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    let lines = json_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "error");
    assert!(
        lines[0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("cannot open the input")),
        "{stderr}"
    );

    // Argument errors too, once the arguments ask for JSON.
    let bad = binary()
        .args(["scan", "--log-format", "json", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    let lines = json_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "error");

    // And text stays text.
    let text = lab
        .command("scan")
        .arg(&list)
        .arg("-o")
        .arg(dir.path().join("out2.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(text.stderr).unwrap();
    assert!(stderr.contains("valid policies"), "{stderr}");
    assert!(
        serde_json::from_str::<serde_json::Value>(stderr.lines().next().unwrap_or("")).is_err()
    );
}

/// `serve` on an ephemeral port: the `listening` event names the address, the API answers
/// through the test internet, and SIGTERM stops it with exit status 0 and a `stopped` event.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_listens_answers_and_stops_on_sigterm() {
    let lab = lab().await;
    let mut child = lab
        .command("serve")
        .args(["--log-format", "json", "--request-timeout", "10s"])
        .env("MTA_STS_SCAN_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first_line = String::new();
    stderr.read_line(&mut first_line).unwrap();
    let listening: serde_json::Value = serde_json::from_str(&first_line).unwrap();
    assert_eq!(listening["event"], "listening", "{first_line}");
    let address = listening["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let check = client
        .get(format!(
            "http://{address}/v1/security/mta-sts?domain=valid-testing-1.test"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), reqwest::StatusCode::OK);
    let report: serde_json::Value = serde_json::from_str(&check.text().await.unwrap()).unwrap();
    assert_eq!(report["outcome"], "valid");
    assert_eq!(report["mode"], "testing");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let lines = json_lines(&rest);
    assert!(
        lines.iter().any(|line| line["event"] == "stopped"),
        "{rest}"
    );
}
