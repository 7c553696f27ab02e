//! `mta-sts-scan serve` as an operator runs it: the real binary with an API key file, a client
//! rate and JSON logs, against the test internet; its access log lines and its clean exit on
//! SIGTERM.

mod common;

use std::time::Duration;

use common::lab;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

const KEY: &str = "operator-key-0123456789abcdef";

async fn next_event(lines: &mut Lines<BufReader<ChildStderr>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a log line in time")
        .unwrap()
        .expect("stderr still open");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_takes_keys_and_rate_and_logs_each_request_as_json() {
    let lab = lab().await;
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), format!("# the operator's keys\n\n{KEY}\n")).unwrap();
    let mut command = tokio::process::Command::from(lab.command("serve"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--client-rate", "100/min"])
        .arg("--api-key-file")
        .arg(keys.path())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = next_event(&mut lines).await;
    assert_eq!(listening["event"], "listening", "{listening}");
    let base = format!("http://{}", listening["address"].as_str().unwrap());

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{base}/v1/security/mta-sts?domain=valid-enforce-1.test");
    let answer = http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 401);

    for expected in [200, 401] {
        let event = next_event(&mut lines).await;
        assert_eq!(event["level"], "info", "{event}");
        assert_eq!(event["event"], "request", "{event}");
        assert_eq!(event["method"], "GET");
        assert_eq!(event["path"], "/v1/security/mta-sts");
        assert_eq!(event["status"], expected);
        assert_eq!(event["client"], "127.0.0.1");
        assert!(event["duration_ms"].is_u64(), "{event}");
        assert!(!event.to_string().contains(KEY), "{event}");
    }

    let pid = i32::try_from(child.id().unwrap()).unwrap();
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopped = next_event(&mut lines).await;
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_key_files_and_rates_are_refused_at_start() {
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), "# nothing but a comment\n").unwrap();
    for args in [
        vec![
            "--api-key-file".to_owned(),
            keys.path().display().to_string(),
        ],
        vec![
            "--api-key-file".to_owned(),
            "/nonexistent/keys.txt".to_owned(),
        ],
        vec!["--client-rate".to_owned(), "0/min".to_owned()],
        vec!["--client-rate".to_owned(), "5/fortnight".to_owned()],
    ] {
        let output = common::binary()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}
