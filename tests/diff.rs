//! `diff OLD NEW` on crafted result files: every change kind from two files that differ in
//! exactly that fact, in each result format, plus the summary and `--fail-on-change`.

mod common;

use std::path::{Path, PathBuf};

use mta_sts_scan::diff::{ChangeKind, DiffJob, run_diff};
use mta_sts_scan::mta_sts::policy::Mode;
use mta_sts_scan::output::{Format, OutputTarget, RunMetadata, create_writer};
use mta_sts_scan::report::{DomainReport, Outcome};

/// A valid domain in enforce mode, with two covered MX hosts and TLS-RPT.
fn valid(domain: &str) -> DomainReport {
    let mut report = DomainReport::new(domain.to_owned(), domain.to_owned(), Some(1));
    report.outcome = Outcome::Valid;
    report.has_mta_sts = true;
    report.sts_id = Some("20261101".into());
    report.sts_record = Some("v=STSv1; id=20261101".into());
    report.policy_url = Some(format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"));
    report.policy_http_status = Some(200);
    report.policy_sha256 = Some("aa".repeat(32));
    report.mode = Some(Mode::Enforce);
    report.max_age = Some(604_800);
    report.mx_patterns = vec![format!("*.{domain}")];
    report.mx_hosts = vec![format!("mx1.{domain}"), format!("mx2.{domain}")];
    report.tls_rpt = true;
    report.tls_rpt_rua = vec![format!("mailto:tlsrpt@{domain}")];
    report.scanned_at = 1_796_000_000_000;
    report
}

fn write(path: &Path, reports: &[DomainReport]) {
    let format = Format::from_path(path).unwrap();
    let mut writer = create_writer(
        &OutputTarget::File(path.to_owned()),
        format,
        &RunMetadata::default(),
    )
    .unwrap();
    for report in reports {
        writer.write(report).unwrap();
    }
    writer.finish().unwrap();
}

struct Diffed {
    summary: mta_sts_scan::diff::DiffSummary,
    rows: Vec<serde_json::Value>,
}

/// Writes the two runs as `old.EXT` and `new.EXT`, diffs them to JSON Lines.
fn diff(extension: &str, old: &[DomainReport], new: &[DomainReport]) -> Diffed {
    let dir = tempfile::tempdir().unwrap();
    let old_path = dir.path().join(format!("old.{extension}"));
    let new_path = dir.path().join(format!("new.{extension}"));
    write(&old_path, old);
    write(&new_path, new);
    let output = dir.path().join("changes.jsonl");
    let name = |path: &PathBuf| path.to_string_lossy().into_owned();
    let summary = run_diff(&DiffJob {
        old: name(&old_path),
        new: name(&new_path),
        output: name(&output),
        format: Format::Jsonl,
        summary: None,
    })
    .unwrap();
    let rows = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    Diffed { summary, rows }
}

/// Diffs one domain changed by `change` (and an unchanged neighbour), and checks the one row.
fn single_change(
    extension: &str,
    change: impl Fn(&mut DomainReport, &mut DomainReport),
    expected: &[ChangeKind],
) -> serde_json::Value {
    let (mut old, mut new) = (valid("a.test"), valid("a.test"));
    change(&mut old, &mut new);
    let unchanged = valid("same.test");
    let diffed = diff(extension, &[unchanged.clone(), old], &[unchanged, new]);
    assert_eq!(diffed.rows.len(), 1, "{:?}", diffed.rows);
    let row = diffed.rows[0].clone();
    assert_eq!(row["domain"], "a.test");
    let names: Vec<&str> = expected.iter().map(|k| k.as_str()).collect();
    assert_eq!(row["changes"], serde_json::json!(names), "{row}");
    for kind in ChangeKind::ALL {
        let count = u64::from(expected.contains(kind));
        assert_eq!(diffed.summary.count(*kind), count, "{}", kind.as_str());
    }
    assert_eq!(diffed.summary.changed_domains, 1);
    row
}

#[test]
fn outcome_change_with_old_and_new_values() {
    let row = single_change(
        "csv",
        |_, new| {
            new.outcome = Outcome::Invalid;
        },
        &[ChangeKind::Outcome],
    );
    assert_eq!(row["old_outcome"], "valid");
    assert_eq!(row["new_outcome"], "invalid");
}

#[test]
fn mode_change() {
    let row = single_change(
        "parquet",
        |old, _| old.mode = Some(Mode::Testing),
        &[ChangeKind::Mode],
    );
    assert_eq!(row["old_mode"], "testing");
    assert_eq!(row["new_mode"], "enforce");
}

#[test]
fn policy_changed_but_id_kept() {
    let row = single_change(
        "jsonl",
        |_, new| new.policy_sha256 = Some("bb".repeat(32)),
        &[ChangeKind::PolicyChangedIdKept],
    );
    assert_eq!(row["old_sts_id"], row["new_sts_id"]);
    assert_ne!(row["old_policy_sha256"], row["new_policy_sha256"]);
}

#[test]
fn id_changed_but_policy_kept() {
    let row = single_change(
        "csv",
        |_, new| new.sts_id = Some("20261108".into()),
        &[ChangeKind::IdChangedPolicyKept],
    );
    assert_eq!(row["new_sts_id"], "20261108");
}

#[test]
fn mx_set_change_ignores_order_and_case() {
    single_change(
        "parquet",
        |_, new| new.mx_hosts = vec!["MX2.a.test.".into(), "mx3.a.test".into()],
        &[ChangeKind::MxChanged],
    );
    let diffed = diff(
        "csv",
        &[valid("a.test")],
        &[{
            let mut new = valid("a.test");
            new.mx_hosts = vec!["MX2.a.test".into(), "mx1.a.test".into()];
            new
        }],
    );
    assert!(diffed.rows.is_empty(), "{:?}", diffed.rows);
}

/// The classic defect: a new MX outside the policy (the old one left in it).
#[test]
fn newly_uncovered_mx() {
    let row = single_change(
        "jsonl",
        |_, new| {
            new.mx_hosts = vec!["mx1.a.test".into(), "mx.new-provider.test".into()];
            new.mx_uncovered = vec!["mx.new-provider.test".into()];
        },
        &[ChangeKind::MxChanged, ChangeKind::NewlyUncovered],
    );
    assert_eq!(
        row["newly_uncovered"],
        serde_json::json!(["mx.new-provider.test"])
    );
    assert_eq!(row["old_mx_uncovered"], serde_json::json!([]));
}

#[test]
fn provider_change_by_cname_target() {
    let row = single_change(
        "csv",
        |old, new| {
            old.policy_host_cname = Some("mta-sts.old-host.test".into());
            new.policy_host_cname = Some("mta-sts.new-host.test".into());
        },
        &[ChangeKind::ProviderChanged],
    );
    assert_eq!(row["old_policy_host_cname"], "mta-sts.old-host.test");
    single_change(
        "parquet",
        |_, new| new.sts_record_cname = Some("_mta-sts.provider.test".into()),
        &[ChangeKind::ProviderChanged],
    );
}

#[test]
fn tls_rpt_added_and_removed() {
    let row = single_change(
        "parquet",
        |old, _| old.tls_rpt = false,
        &[ChangeKind::TlsRptAdded],
    );
    assert_eq!(row["old_tls_rpt"], false);
    assert_eq!(row["new_tls_rpt"], true);
    single_change(
        "jsonl",
        |_, new| new.tls_rpt = false,
        &[ChangeKind::TlsRptRemoved],
    );
}

#[test]
fn appeared_and_disappeared_domains() {
    let diffed = diff(
        "csv",
        &[valid("same.test"), valid("gone.test")],
        &[valid("new.test"), valid("same.test")],
    );
    let rows: Vec<(String, String)> = diffed
        .rows
        .iter()
        .map(|row| {
            (
                row["domain"].as_str().unwrap().to_owned(),
                row["changes"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("new.test".to_owned(), "appeared".to_owned()),
            ("gone.test".to_owned(), "disappeared".to_owned()),
        ]
    );
    assert_eq!(diffed.rows[0]["old_outcome"], serde_json::Value::Null);
    assert_eq!(diffed.rows[1]["new_outcome"], serde_json::Value::Null);
    assert_eq!(diffed.summary.count(ChangeKind::Appeared), 1);
    assert_eq!(diffed.summary.count(ChangeKind::Disappeared), 1);
    assert_eq!(
        diffed.summary.transitions[0][0], 1,
        "same.test: valid → valid"
    );
}

#[test]
fn summary_counts_the_outcome_matrix() {
    let mut absent = valid("x.test");
    absent.outcome = Outcome::Absent;
    let diffed = diff(
        "parquet",
        &[valid("a.test"), valid("b.test"), absent.clone()],
        &[
            {
                let mut a = valid("a.test");
                a.outcome = Outcome::Invalid;
                a
            },
            valid("b.test"),
            valid("x.test"),
        ],
    );
    let json = diffed.summary.to_json("old", "new");
    assert_eq!(json["outcome_transitions"]["valid"]["invalid"], 1);
    assert_eq!(json["outcome_transitions"]["valid"]["valid"], 1);
    assert_eq!(json["outcome_transitions"]["absent"]["valid"], 1);
    assert_eq!(json["changes"]["outcome"], 2);
    assert_eq!(json["changed_domains"], 2);
    let table = diffed.summary.render_table("old", "new");
    assert!(table.contains("policy_changed_id_kept"), "{table}");
}

/// The binary: rows on stdout as CSV, `--fail-on-change` sets exit status 1, unknown kinds 2.
#[test]
fn cli_fail_on_change_and_csv_rows() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.csv");
    let new = dir.path().join("new.parquet");
    let mut testing = valid("a.test");
    testing.mode = Some(Mode::Testing);
    write(&old, &[testing]);
    write(&new, &[valid("a.test")]);
    let output = common::binary()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .args(["--fail-on-change", "outcome,mode"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("domain,changes,old_outcome,new_outcome,old_mode,new_mode")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("a.test,mode,valid,valid,testing,enforce"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mode"), "{stderr}");

    let status = common::binary()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .args(["-q", "-o", "-", "--fail-on-change", "appeared"])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(0));
    let output = common::binary()
        .arg("diff")
        .arg(&old)
        .arg(&new)
        .args(["--fail-on-change", "weather"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("weather"));
}

/// Shards of each run, named by a quoted glob.
#[test]
fn globs_of_shards_on_each_side() {
    let dir = tempfile::tempdir().unwrap();
    // A shard-like file one directory deeper is not matched by a one-level glob.
    std::fs::create_dir(dir.path().join("older")).unwrap();
    write(
        &dir.path().join("older/old.shard-0-of-2.csv"),
        &[valid("c.test")],
    );
    write(&dir.path().join("old.shard-0-of-2.csv"), &[valid("a.test")]);
    write(&dir.path().join("old.shard-1-of-2.csv"), &[valid("b.test")]);
    write(
        &dir.path().join("new.shard-0-of-2.jsonl"),
        &[valid("a.test")],
    );
    write(
        &dir.path().join("new.shard-1-of-2.jsonl"),
        &[{
            let mut b = valid("b.test");
            b.tls_rpt = false;
            b
        }],
    );
    let output = dir.path().join("changes.parquet");
    let base = dir.path().to_string_lossy();
    let summary = run_diff(&DiffJob {
        old: format!("{base}/old.shard-*-of-2.csv"),
        new: format!("{base}/new.shard-*.jsonl"),
        output: output.to_string_lossy().into_owned(),
        format: Format::Parquet,
        summary: Some(
            dir.path()
                .join("summary.json")
                .to_string_lossy()
                .into_owned(),
        ),
    })
    .unwrap();
    assert_eq!(summary.old_rows, 2);
    assert_eq!(summary.new_rows, 2);
    assert_eq!(summary.count(ChangeKind::TlsRptRemoved), 1);
    let file = std::fs::File::open(&output).unwrap();
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|batch| batch.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 1);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["changes"]["tls_rpt_removed"], 1);
}
