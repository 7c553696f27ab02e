//! Object-store input and output against a real S3 server: s3s + s3s-fs speaking HTTP on
//! loopback, started by each test (no in-memory stand-in). Covers a partitioned Parquet scan
//! read back by `stats` and as a Hive-style table, shards of three runs merged, a killed upload
//! resumed with no row lost or duplicated, `diff` between two uploaded runs, and clear early
//! errors (exit 2 before any domain is scanned) for wrong credentials and a missing bucket.

#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mta_sts_scan::lab::scenarios::lab_domain;
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::output::read_results;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const ACCESS_KEY: &str = "lake-access";
const SECRET_KEY: &str = "lake-secret-key";
const BUCKET: &str = "lake";

/// An S3-compatible server on 127.0.0.1, storing its buckets under a temporary directory.
struct S3Server {
    endpoint: String,
    _root: tempfile::TempDir,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn start_s3() -> S3Server {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(BUCKET)).unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accept = tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let connection = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    });
    S3Server {
        endpoint,
        _root: root,
        accept,
    }
}

impl S3Server {
    /// The test's own client of the bucket.
    fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(BUCKET)
                .with_access_key_id(ACCESS_KEY)
                .with_secret_access_key(SECRET_KEY)
                .build()
                .unwrap(),
        )
    }

    /// Sets the environment the binary reads its credentials and endpoint from.
    fn environment(&self, command: &mut Command) {
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1");
    }
}

/// Every key in the bucket, sorted.
async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let mut listing = store.list(None);
    let mut keys = Vec::new();
    while let Some(meta) = listing.next().await {
        keys.push(meta.unwrap().location.to_string());
    }
    keys.sort();
    keys
}

/// Downloads an object into `dir` (keeping its file name) and returns the local path.
async fn fetch(store: &Arc<dyn ObjectStore>, key: &str, dir: &Path) -> PathBuf {
    let bytes = store
        .get(&ObjectPath::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let local = dir.join(key.replace('/', "_"));
    std::fs::write(&local, bytes).unwrap();
    local
}

/// How often each input value appears in a local result file.
fn inputs(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for row in read_results(path, None).unwrap() {
        *counts.entry(row.unwrap().input).or_insert(0) += 1;
    }
    counts
}

fn counts(lines: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines {
        *counts.entry(line.clone()).or_insert(0) += 1;
    }
    counts
}

struct Setup {
    lab: common::Lab,
    s3: S3Server,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    Setup {
        lab: common::lab().await,
        s3: start_s3().await,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    /// `mta-sts-scan SUBCOMMAND` reaching the lab and the S3 server.
    fn command(&self, subcommand: &str) -> Command {
        let mut command = if subcommand == "scan" {
            let mut command = self.lab.command("scan");
            command.args(["-q", "--dns-rate", "0", "--https-rate", "0"]);
            command
        } else {
            let mut command = common::binary();
            command.arg(subcommand);
            command
        };
        self.s3.environment(&mut command);
        command
    }

    fn list(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }
}

fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn mixed_domains(count: u64) -> Vec<String> {
    let slugs = ["valid-enforce", "no-sts", "mx-uncovered", "nxdomain"];
    (0..count)
        .map(|n| lab_domain(slugs[(n % 4) as usize], n))
        .collect()
}

fn utc_today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Shards of one run land as Hive partitions (`dt=YYYY-MM-DD/part-K-of-N.parquet`), read back
/// as one table with a `dt` column, and merged by `stats` through a glob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_parquet_shards_are_a_hive_table_that_stats_reads() {
    let setup = setup().await;
    let lines = mixed_domains(60);
    let list = setup.list("list.txt", &lines);
    let day_before = utc_today();
    for shard in 0..3 {
        let mut scan = setup.command("scan");
        scan.arg(&list)
            .args(["-o", "s3://lake/mta-sts/dt={date}/part-{shard}.parquet"])
            .args(["--shard", &format!("{shard}/3")])
            .args(["--summary", "s3://lake/summaries/run={run_id}/{shard}.json"])
            .args(["--run-id", "weekly-48"]);
        run(&mut scan);
    }
    let day_after = utc_today();
    let store = setup.s3.store();
    let all = keys(&store).await;
    let table: Vec<&String> = all.iter().filter(|k| k.starts_with("mta-sts/")).collect();
    eprintln!("bucket after three sharded runs: {all:#?}");
    assert_eq!(
        table.len(),
        3,
        "one object per shard, nothing else: {all:?}"
    );
    let date = table[0]
        .strip_prefix("mta-sts/dt=")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    assert!(date == day_before || date == day_after, "{date}");
    for shard in 0..3 {
        let key = format!("mta-sts/dt={date}/part-{shard}-of-3.parquet");
        assert!(all.contains(&key), "{key} in {all:?}");
        let summary = format!("summaries/run=weekly-48/{shard}-of-3.json");
        assert!(all.contains(&summary), "{summary} in {all:?}");
    }

    // Read the directory as a Hive-partitioned table, as DuckDB/Spark/Athena do: every file
    // under the table root, partition columns from the `name=value` path segments.
    let mut rows_by_dt: BTreeMap<String, usize> = BTreeMap::new();
    let mut domains = Vec::new();
    for key in &table {
        let partitions: Vec<(&str, &str)> = key
            .split('/')
            .filter_map(|segment| segment.split_once('='))
            .collect();
        assert_eq!(partitions.len(), 1, "{key}");
        let (column, value) = partitions[0];
        assert_eq!(column, "dt");
        let local = fetch(&store, key, setup.dir.path()).await;
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&local).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let dt = arrow_array::StringArray::from(vec![value; batch.num_rows()]);
            let mut fields: Vec<arrow_schema::Field> = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(arrow_schema::Field::new(
                column,
                arrow_schema::DataType::Utf8,
                false,
            ));
            let mut columns = batch.columns().to_vec();
            columns.push(Arc::new(dt));
            let with_partition = arrow_array::RecordBatch::try_new(
                Arc::new(arrow_schema::Schema::new(fields)),
                columns,
            )
            .unwrap();
            let dt_column = with_partition
                .column_by_name("dt")
                .expect("the dt column appears");
            let dt_values = dt_column
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap();
            assert!(dt_values.iter().all(|v| v == Some(date.as_str())));
            *rows_by_dt.entry(value.to_owned()).or_default() += with_partition.num_rows();
            let inputs = with_partition
                .column_by_name("input")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.unwrap().to_owned())
                .collect::<Vec<_>>();
            domains.extend(inputs);
        }
    }
    assert_eq!(rows_by_dt, BTreeMap::from([(date.clone(), lines.len())]));
    domains.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(domains, expected, "each domain in exactly one shard");

    // `stats` reads the shards back through a glob of s3:// keys.
    let output = run(setup
        .command("stats")
        .arg("s3://lake/mta-sts/dt=*/part-*-of-3.parquet")
        .arg("--json"));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = summary.to_string();
    eprintln!(
        "stats over the glob: rows {} outcomes {}",
        summary["rows"], summary["outcomes"]
    );
    assert!(
        text.contains(&format!("\"rows\":{}", lines.len())) || summary["rows"] == lines.len(),
        "{text}"
    );
}

/// Waits until the scan has uploaded at least one part of `key`.
async fn wait_for_uploaded_part(store: &Arc<dyn ObjectStore>, key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let prefix = format!("{key}.parts/part-");
    loop {
        if keys(store).await.iter().any(|k| k.starts_with(&prefix)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key}: no part uploaded within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scan killed mid-upload leaves only complete parts (no object a reader would take for a
/// result); `--resume` continues from them and the final object holds every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_upload_resumes_without_loss_or_duplicates() {
    let setup = setup().await;
    // Every fourth domain is a tarpit (a slow fetch), so the scan runs for seconds; some lines
    // repeat, and resuming must keep each occurrence.
    let mut lines: Vec<String> = (0..240)
        .map(|n| {
            if n % 4 == 0 {
                lab_domain("tarpit", n)
            } else {
                lab_domain("no-sts", n)
            }
        })
        .collect();
    lines.extend((0..10).map(|n| lab_domain("no-sts", n * 4 + 1)));
    let list = setup.list("list.txt", &lines);
    let store = setup.s3.store();
    for extension in ["parquet", "csv"] {
        let key = format!("killed/results.{extension}");
        let url = format!("s3://lake/{key}");
        let scan = |resume: bool| {
            let mut command = setup.command("scan");
            command
                .arg(&list)
                .args(["-o", &url])
                .args(["--concurrency", "16", "--flush-interval", "100ms"])
                .args(["--fetch-timeout", "1s", "--connect-timeout", "1s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if resume {
                command.arg("--resume");
            }
            command
        };
        let mut child = scan(false).spawn().unwrap();
        wait_for_uploaded_part(&store, &key).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let after_kill = keys(&store).await;
        assert!(
            !after_kill.contains(&key),
            "{extension}: no final object before the merge: {after_kill:?}"
        );
        // What a killed run left is readable (the parts), and partial.
        let output = run(setup.command("stats").arg(&url).arg("--json"));
        let partial: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let partial_rows = partial["rows"].as_u64().unwrap_or_default();
        assert!(
            partial_rows > 0 && (partial_rows as usize) < lines.len(),
            "{extension}: {partial_rows} rows after kill"
        );

        let status = scan(true).status().unwrap();
        assert!(status.success(), "{extension}: resume failed");
        let after_resume = keys(&store).await;
        assert!(after_resume.contains(&key), "{after_resume:?}");
        assert!(
            !after_resume
                .iter()
                .any(|k| k.starts_with(&format!("{key}.parts"))),
            "{extension}: parts removed after the merge: {after_resume:?}"
        );
        let local = fetch(&store, &key, setup.dir.path()).await;
        assert_eq!(
            inputs(&local),
            counts(&lines),
            "{extension}: each input row exactly once"
        );
        // Resuming a finished upload scans nothing and keeps every row once.
        let status = scan(true).status().unwrap();
        assert!(status.success(), "{extension}: second resume failed");
        let again = fetch(&store, &key, setup.dir.path()).await;
        assert_eq!(
            inputs(&again),
            counts(&lines),
            "{extension}: after a second resume"
        );
        assert!(
            !keys(&store)
                .await
                .iter()
                .any(|k| k.starts_with(&format!("{key}.parts"))),
            "{extension}: no parts left after the second resume"
        );
    }
}

/// `diff` reads two uploaded runs and writes its rows and summary to the object store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_between_two_uploaded_runs() {
    let setup = setup().await;
    let first: Vec<String> = (0..8).map(|n| lab_domain("no-sts", n)).collect();
    let mut second: Vec<String> = (2..8).map(|n| lab_domain("no-sts", n)).collect();
    second.push(lab_domain("valid-enforce", 1));
    let first_list = setup.list("first.txt", &first);
    let second_list = setup.list("second.txt", &second);
    run(setup
        .command("scan")
        .arg(&first_list)
        .args(["-o", "s3://lake/runs/run=1/results.parquet"]));
    run(setup
        .command("scan")
        .arg(&second_list)
        .args(["-o", "s3://lake/runs/run=2/results.csv"]));
    let output = run(setup
        .command("diff")
        .arg("s3://lake/runs/run=1/*.parquet")
        .arg("s3://lake/runs/run=2/results.csv")
        .args(["-o", "s3://lake/diffs/changes.jsonl"])
        .args(["--summary", "s3://lake/diffs/summary.json"]));
    let table = String::from_utf8_lossy(&output.stderr);
    eprintln!("{table}");
    assert!(table.contains("appeared"), "{table}");

    let store = setup.s3.store();
    let local = fetch(&store, "diffs/changes.jsonl", setup.dir.path()).await;
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&local)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let changes: BTreeMap<String, String> = rows
        .iter()
        .map(|row| {
            (
                row["domain"].as_str().unwrap().to_owned(),
                row["changes"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        BTreeMap::from([
            (lab_domain("no-sts", 0), "disappeared".to_owned()),
            (lab_domain("no-sts", 1), "disappeared".to_owned()),
            (lab_domain("valid-enforce", 1), "appeared".to_owned()),
        ])
    );
    let summary_file = fetch(&store, "diffs/summary.json", setup.dir.path()).await;
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(summary_file).unwrap()).unwrap();
    assert_eq!(summary["changes"]["appeared"], 1);
    assert_eq!(summary["changes"]["disappeared"], 2);
    assert_eq!(summary["old_rows"], 8);
    assert_eq!(summary["new_rows"], 7);
    assert_eq!(summary["outcome_transitions"]["absent"]["absent"], 6);
}

/// Wrong credentials and a missing bucket fail at once with exit status 2 and a message that
/// says what to check: the lab answers every DNS query only after ten minutes, so a scan that
/// started before checking the output would not end within the test's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_missing_bucket_fail_before_scanning() {
    let s3 = start_s3().await;
    let slow = TestInternet::start(LabOptions {
        dns_delay: Duration::from_secs(600),
        http_delay: Duration::from_secs(600),
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, lab_domain("valid-enforce", 1)).unwrap();
    let cases = [
        (
            "wrong secret",
            "s3://lake/out.parquet",
            "not-the-secret",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            "missing bucket",
            "s3://no-such-bucket/out.parquet",
            SECRET_KEY,
            "bucket",
        ),
    ];
    for (case, url, secret, hint) in cases {
        let mut command = common::binary();
        command
            .arg("scan")
            .arg(&list)
            .args(["-o", url, "-q"])
            .args(["--resolver", &slow.dns_address.to_string()])
            .args(["--dns-timeout", "600s", "--domain-timeout", "20m"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ENDPOINT_URL", &s3.endpoint)
            .env("AWS_REGION", "us-east-1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = command.spawn().unwrap();
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await
        .unwrap_or_else(|_| panic!("{case}: the scan started instead of failing"))
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{case}: {stderr}");
        assert_eq!(output.status.code(), Some(2), "{case}: {stderr}");
        assert!(stderr.contains(url), "{case}: names the URL: {stderr}");
        assert!(
            stderr.contains(hint),
            "{case}: says what to check: {stderr}"
        );
    }
    assert!(keys(&s3.store()).await.is_empty(), "nothing written");
}
