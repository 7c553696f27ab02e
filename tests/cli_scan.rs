//! `mta-sts-scan scan` and `stats` as a scheduled job runs them: the real binary, stdin and
//! stdout, exit statuses, an interrupted scan that still closes its output, shard file names.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{Lab, binary, lab};
use mta_sts_scan::lab::scenarios::lab_domain;
use mta_sts_scan::output::read_results;
use mta_sts_scan::report::Outcome;

trait Scan {
    fn scan(&self) -> Command;
}

impl Scan for Lab {
    /// `scan` against the test internet, without the polite default rates.
    fn scan(&self) -> Command {
        let mut command = self.command("scan");
        command.args(["--dns-rate", "0", "--https-rate", "0"]);
        command
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_to_jsonl_on_stdout_with_the_summary_on_stderr() {
    let lab = lab().await;
    let mut child = lab
        .scan()
        .args(["-", "-o", "-", "--format", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"valid-enforce-1.test\nno-sts-1.test\nnot a domain\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("valid policies"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_unreadable_input_exit_with_2() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = lab
        .scan()
        .arg(dir.path().join("nope.csv"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open the input"));
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "a.test\n").unwrap();
    for args in [
        vec!["-o", "list.txt"],                       // the input itself
        vec!["--summary", "/nonexistent-dir/s.json"], // found before scanning
        vec!["--concurrency", "10000000"],
        vec!["-o", "out.xlsx"],
        vec!["-o", "-", "--format", "parquet"],
        vec!["--concurrency", "0"],
        vec!["--column", "host"],
    ] {
        let out = lab
            .scan()
            .arg(&list)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let unwritable = lab
        .scan()
        .arg(&list)
        .args(["-o", "/nonexistent-dir/out.csv"])
        .output()
        .unwrap();
    assert_eq!(unwritable.status.code(), Some(2));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_closes_the_output_prints_the_partial_summary_and_exits_130() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    // Slow domains so the scan is still running when the signal comes.
    let domains: Vec<String> = (0..2000).map(|n| lab_domain("tarpit", n)).collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    let output = dir.path().join("out.parquet");
    let child = lab
        .scan()
        .arg(&list)
        .arg("-o")
        .arg(&output)
        .args([
            "--concurrency",
            "20",
            "--fetch-timeout",
            "1s",
            "--connect-timeout",
            "1s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal once the scan is under way (its first lookups reached the lab's name server; the
    // handlers are installed before scanning starts): an event, not a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while lab
        .internet
        .dns_queries
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scan never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let result = child.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    let rows: Vec<_> = read_results(&output, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!rows.is_empty() && rows.len() < 2000, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r.outcome == Outcome::Invalid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_name_their_files_and_merge_to_the_whole_in_stats() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let domains: Vec<String> = [
        "valid-enforce",
        "no-sts",
        "nxdomain",
        "mode-none",
        "record-multiple",
    ]
    .iter()
    .flat_map(|slug| (0..20).map(move |n| lab_domain(slug, n)))
    .collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    let stats_json = |files: &[std::path::PathBuf]| {
        let out = binary()
            .arg("stats")
            .args(files)
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json.as_object_mut().unwrap().remove("run");
        json
    };
    let whole = dir.path().join("whole.csv");
    assert!(
        lab.scan()
            .arg(&list)
            .arg("-o")
            .arg(&whole)
            .arg("-q")
            .status()
            .unwrap()
            .success()
    );
    let mut shard_files = Vec::new();
    for k in 0..3 {
        // K from the Kubernetes Indexed Job variable, N from the flag.
        let status = lab
            .scan()
            .arg(&list)
            .arg("-o")
            .arg(dir.path().join("part.parquet"))
            .args(["--shard", "3", "-q"])
            .env("JOB_COMPLETION_INDEX", k.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let file = dir.path().join(format!("part.shard-{k}-of-3.parquet"));
        assert!(file.exists(), "{}", file.display());
        shard_files.push(file);
    }
    assert_eq!(stats_json(&shard_files), stats_json(&[whole]));
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_file_soft_limit_is_raised_for_high_concurrency() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    let domains: Vec<String> = (0..200).map(|n| lab_domain("tarpit", n)).collect();
    std::fs::write(&list, domains.join("\n")).unwrap();
    // Start the binary with a soft limit of 256 descriptors (a scan needs about three per domain
    // in flight) and read the limit the running process has.
    let scan = lab.scan();
    let program = scan.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = scan
        .get_args()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let script = format!(
        "ulimit -Sn 256 && exec '{program}' {} '{}' -o '{}' -q",
        args.join(" "),
        list.display(),
        dir.path().join("out.csv").display()
    );
    let mut child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    // Wait until the shell has exec'd the scanner and the scanner has started scanning.
    let proc = format!("/proc/{}", child.id());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        let exe = std::fs::read_link(format!("{proc}/exe")).unwrap_or_default();
        if exe.ends_with(
            env!("CARGO_BIN_EXE_mta-sts-scan")
                .rsplit('/')
                .next()
                .unwrap(),
        ) && lab
            .internet
            .dns_queries
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let limits = std::fs::read_to_string(format!("{proc}/limits")).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .unwrap();
    assert!(soft > 256, "soft limit still {soft} (hard {hard})");
}
