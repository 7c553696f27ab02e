//! Round trips through every result format: what is written is read back field by field, the
//! Parquet file carries the contract schema, metadata and compression, CSV cells that
//! spreadsheets would evaluate are neutralised, and large Parquet files are split into row groups.

use std::fs::File;
use std::path::{Path, PathBuf};

use mta_sts_scan::issues::{Issue, IssueCode, Severity};
use mta_sts_scan::mta_sts::policy::Mode;
use mta_sts_scan::output::{self, Format, OutputTarget, RunMetadata, schema};
use mta_sts_scan::report::{DomainReport, Outcome};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

const SCANNED_AT: i64 = 1_795_000_000_123; // 2026-11-18T…Z, with milliseconds

fn valid_report() -> DomainReport {
    let mut report = DomainReport::new("example.com".into(), "Example.COM".into(), Some(17));
    report.outcome = Outcome::Valid;
    report.has_mta_sts = true;
    report.sts_id = Some("20260101T000000".into());
    report.sts_record = Some("v=STSv1; id=20260101T000000".into());
    report.policy_url = Some("https://mta-sts.example.com/.well-known/mta-sts.txt".into());
    report.sts_record_cname = Some("_mta-sts.hosted.example.net".into());
    report.policy_host_cname = Some("policy.hosted.example.net".into());
    report.policy_http_status = Some(200);
    report.policy_content_type = Some("text/plain; charset=utf-8".into());
    report.policy_sha256 =
        Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into());
    report.policy_version = Some("STSv1".into());
    report.mode = Some(Mode::Testing);
    report.max_age = Some(86_400);
    report.mx_patterns = vec!["*.example.com".into(), "mx.backup.example".into()];
    report.mx_hosts = vec![
        "mx1.example.com".into(),
        "mx2.example.com".into(),
        "mx.other.example".into(),
    ];
    report.mx_uncovered = vec!["mx.other.example".into()];
    report.delivery_at_risk = false;
    report.tls_rpt = true;
    report.tls_rpt_rua = vec![
        "mailto:tlsrpt@example.com".into(),
        "https://reports.example.com/tlsrpt".into(),
    ];
    report.tls_rpt_record = Some("v=TLSRPTv1; rua=mailto:tlsrpt@example.com".into());
    report.issues = vec![
        // Lowered from its default (error) because the policy is in testing mode.
        Issue::with_severity(
            IssueCode::MxNotCovered,
            Severity::Warning,
            "MX host mx.other.example matches no mx pattern of the policy",
        ),
        Issue::new(
            IssueCode::MxPatternUnused,
            "mx pattern mx.backup.example matches no MX host",
        ),
        Issue::new(IssueCode::ModeTesting, "policy is in testing mode"),
        Issue::new(IssueCode::MaxAgeShort, "max_age 86400 is short"),
    ];
    report.scanned_at = SCANNED_AT;
    report.duration_ms = 1234;
    report
}

fn input_error_report(input: &str, rank: i64) -> DomainReport {
    let mut report = DomainReport::input_error(
        input.into(),
        Some(rank),
        format!("`{input}` is not a domain"),
    );
    report.scanned_at = SCANNED_AT + rank;
    report.duration_ms = 0;
    report
}

fn bare_report() -> DomainReport {
    // Empty lists, every optional null, no issues.
    let mut report = DomainReport::new("bare.example".into(), "bare.example".into(), None);
    report.outcome = Outcome::Absent;
    report.scanned_at = 0;
    report
}

fn unicode_report() -> DomainReport {
    let mut report = DomainReport::new(
        "xn--bcher-kva.example".into(),
        "Bücher.example ✉ 例え".into(),
        Some(3),
    );
    report.outcome = Outcome::Absent;
    report.mx_hosts = vec!["mx.xn--bcher-kva.example".into()];
    report.issues = vec![
        Issue::new(IssueCode::StsRecordMissing, "no v=STSv1 record"),
        // Lowered because the domain has no MTA-STS.
        Issue::with_severity(IssueCode::TlsrptMissing, Severity::Info, "no TLS-RPT"),
    ];
    report.scanned_at = SCANNED_AT - 86_400_000;
    report.duration_ms = 77;
    report
}

fn error_report() -> DomainReport {
    let mut report = DomainReport::new("broken.example".into(), "broken.example".into(), Some(99));
    report.outcome = Outcome::Error;
    report.has_mta_sts = true;
    report.sts_id = Some("abc".into());
    report.sts_record = Some("v=STSv1; id=abc".into());
    report.policy_url = Some("https://mta-sts.broken.example/.well-known/mta-sts.txt".into());
    report.policy_http_status = Some(503);
    report.mode = None;
    report.max_age = None;
    report.issues = vec![
        Issue::new(IssueCode::PolicyHttpStatus, "status 503"),
        Issue::new(IssueCode::DnsLookupFailed, "SERVFAIL"),
    ];
    let long = "x".repeat(2000);
    report.error = Some(format!(
        "policy fetch failed: \"503, Service Unavailable\", retry later,\nsecond line; {long}"
    ));
    report.scanned_at = SCANNED_AT + 999;
    report.duration_ms = 30_000;
    report
}

fn sample_reports() -> Vec<DomainReport> {
    vec![
        valid_report(),
        input_error_report("=cmd|' /C calc'!A0", 1),
        input_error_report("+1", 2),
        input_error_report("-x", 3),
        input_error_report("@SUM(1)", 4),
        input_error_report("'=already quoted", 5),
        input_error_report("\tTAB", 6),
        bare_report(),
        unicode_report(),
        error_report(),
    ]
}

/// What a format is expected to give back for `written`.
fn expected_after(format: Format, written: &DomainReport) -> DomainReport {
    let mut expected = written.clone();
    match format {
        Format::Jsonl => {
            // The JSON-only fields travel inside objects that exist only in some states.
            if expected.policy_sha256.is_none() {
                expected.policy_version = None;
            }
            if !expected.tls_rpt {
                expected.tls_rpt_record = None;
            }
        }
        Format::Csv | Format::Parquet => {
            expected.policy_version = None;
            expected.tls_rpt_record = None;
            let worst = written.severity();
            for issue in &mut expected.issues {
                issue.message.clear();
                issue.severity = issue.code.default_severity().min(worst);
            }
        }
    }
    expected
}

/// Compares column by column, so a failure names the field.
fn assert_same(format: Format, written: &DomainReport, read: &DomainReport) {
    let expected = expected_after(format, written);
    let context = format!("{format} row {:?}", written.input);
    assert_eq!(read.domain, expected.domain, "domain, {context}");
    assert_eq!(read.input, expected.input, "input, {context}");
    assert_eq!(read.rank, expected.rank, "rank, {context}");
    assert_eq!(read.outcome, expected.outcome, "outcome, {context}");
    assert_eq!(
        read.has_mta_sts, expected.has_mta_sts,
        "has_mta_sts, {context}"
    );
    assert_eq!(read.sts_id, expected.sts_id, "sts_id, {context}");
    assert_eq!(
        read.sts_record, expected.sts_record,
        "sts_record, {context}"
    );
    assert_eq!(
        read.policy_url, expected.policy_url,
        "policy_url, {context}"
    );
    assert_eq!(
        read.sts_record_cname, expected.sts_record_cname,
        "sts_record_cname, {context}"
    );
    assert_eq!(
        read.policy_host_cname, expected.policy_host_cname,
        "policy_host_cname, {context}"
    );
    assert_eq!(
        read.policy_http_status, expected.policy_http_status,
        "policy_http_status, {context}"
    );
    assert_eq!(
        read.policy_content_type, expected.policy_content_type,
        "policy_content_type, {context}"
    );
    assert_eq!(
        read.policy_sha256, expected.policy_sha256,
        "policy_sha256, {context}"
    );
    assert_eq!(
        read.policy_version, expected.policy_version,
        "policy_version, {context}"
    );
    assert_eq!(read.mode, expected.mode, "mode, {context}");
    assert_eq!(read.max_age, expected.max_age, "max_age, {context}");
    assert_eq!(
        read.mx_patterns, expected.mx_patterns,
        "mx_patterns, {context}"
    );
    assert_eq!(read.mx_hosts, expected.mx_hosts, "mx_hosts, {context}");
    assert_eq!(
        read.mx_uncovered, expected.mx_uncovered,
        "mx_uncovered, {context}"
    );
    assert_eq!(
        read.delivery_at_risk, expected.delivery_at_risk,
        "delivery_at_risk, {context}"
    );
    assert_eq!(read.tls_rpt, expected.tls_rpt, "tls_rpt, {context}");
    assert_eq!(
        read.tls_rpt_rua, expected.tls_rpt_rua,
        "tls_rpt_rua, {context}"
    );
    assert_eq!(
        read.tls_rpt_record, expected.tls_rpt_record,
        "tls_rpt_record, {context}"
    );
    assert_eq!(read.issues, expected.issues, "issues, {context}");
    assert_eq!(read.severity(), written.severity(), "severity, {context}");
    assert_eq!(read.error, expected.error, "error, {context}");
    assert_eq!(
        read.scanned_at, expected.scanned_at,
        "scanned_at, {context}"
    );
    assert_eq!(
        read.duration_ms, expected.duration_ms,
        "duration_ms, {context}"
    );
    // Nothing else differs (catches a field added to DomainReport but not compared above).
    assert_eq!(read, &expected, "{context}");
}

fn metadata() -> RunMetadata {
    RunMetadata {
        tool_version: "0.1.0-test".into(),
        scan_started: "2026-11-18T10:00:00.000Z".into(),
        resolver: "127.0.0.1:53".into(),
        settings: r#"{"concurrency":64}"#.into(),
        input: "top-1m.csv".into(),
        trust_store: "mozilla (webpki-root-certs 1.0.11, 118 anchors, sha256:0011223344556677)"
            .into(),
    }
}

fn write_file(dir: &Path, format: Format, reports: &[DomainReport]) -> PathBuf {
    let path = dir.join(format!("results.{}", format.extension()));
    let mut writer = output::create_writer(&OutputTarget::File(path.clone()), format, &metadata())
        .expect("writer");
    for report in reports {
        writer.write(report).expect("write");
    }
    writer.finish().expect("finish");
    path
}

fn read_all(path: &Path, format: Option<Format>) -> Vec<DomainReport> {
    output::read_results(path, format)
        .expect("open")
        .collect::<Result<Vec<_>, _>>()
        .expect("every row reads")
}

fn round_trip(format: Format) {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = sample_reports();
    let path = write_file(dir.path(), format, &reports);
    let read = read_all(&path, None);
    assert_eq!(read.len(), reports.len(), "{format}");
    for (written, read) in reports.iter().zip(&read) {
        assert_same(format, written, read);
    }
    // Explicit format, file name that does not say it.
    let renamed = dir.path().join("results.data");
    std::fs::rename(&path, &renamed).expect("rename");
    assert_eq!(read_all(&renamed, Some(format)), read);
}

#[test]
fn csv_round_trip() {
    round_trip(Format::Csv);
}

#[test]
fn jsonl_round_trip() {
    round_trip(Format::Jsonl);
}

#[test]
fn parquet_round_trip() {
    round_trip(Format::Parquet);
}

#[test]
fn empty_files_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    for format in Format::ALL {
        let path = write_file(dir.path(), format, &[]);
        assert!(read_all(&path, None).is_empty(), "{format}");
    }
}

#[test]
fn csv_header_is_the_column_list_and_formula_cells_are_neutralised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), Format::Csv, &sample_reports());
    let mut reader = csv::Reader::from_path(&path).expect("csv");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let names: Vec<&str> = schema::COLUMNS.iter().map(|column| column.name).collect();
    assert_eq!(header, names);

    let input = header
        .iter()
        .position(|name| name == "input")
        .expect("input column");
    let inputs: Vec<String> = reader
        .records()
        .map(|record| record.expect("record")[input].to_owned())
        .collect();
    assert_eq!(inputs[1], "'=cmd|' /C calc'!A0");
    assert_eq!(inputs[2], "'+1");
    assert_eq!(inputs[3], "'-x");
    assert_eq!(inputs[4], "'@SUM(1)");
    assert_eq!(inputs[5], "''=already quoted");
    assert_eq!(inputs[6], "'\tTAB");
    assert_eq!(inputs[0], "Example.COM", "ordinary cells are untouched");

    let raw = std::fs::read_to_string(&path).expect("text");
    assert!(
        raw.contains("\n,'=cmd|' /C calc'!A0,1,input_error,"),
        "{raw}"
    );
    assert!(raw.contains(",2026-11-"), "RFC 3339 times: {raw}");
    assert!(raw.contains(",mx1.example.com mx2.example.com mx.other.example,"));
    assert!(raw.contains(",mx_not_covered mx_pattern_unused mode_testing max_age_short,warning,"));
}

#[test]
fn parquet_schema_metadata_and_compression() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), Format::Parquet, &sample_reports());
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
        .expect("parquet");
    assert_eq!(builder.schema().fields(), schema::arrow_schema().fields());

    let file_metadata = builder.metadata().file_metadata();
    let pairs = file_metadata
        .key_value_metadata()
        .expect("key-value metadata");
    let value = |key: &str| {
        pairs
            .iter()
            .find(|pair| pair.key == key)
            .and_then(|pair| pair.value.clone())
    };
    let run = metadata();
    assert_eq!(value("mta_sts_scan.tool_version"), Some(run.tool_version));
    assert_eq!(
        value("mta_sts_scan.schema_version"),
        Some(schema::SCHEMA_VERSION.to_owned())
    );
    assert_eq!(value("mta_sts_scan.scan_started"), Some(run.scan_started));
    assert_eq!(value("mta_sts_scan.resolver"), Some(run.resolver));
    assert_eq!(value("mta_sts_scan.settings"), Some(run.settings));
    assert_eq!(value("mta_sts_scan.input"), Some(run.input));
    assert_eq!(value("mta_sts_scan.trust_store"), Some(run.trust_store));

    let row_groups = builder.metadata().row_groups();
    assert_eq!(row_groups.len(), 1);
    // Dictionary encoding is off for near-unique columns and on (the default) for the rest.
    let has_dictionary = |name: &str| {
        row_groups[0]
            .columns()
            .iter()
            .find(|column| column.column_path().string() == name)
            .map(|column| column.dictionary_page_offset().is_some())
    };
    for name in [
        "domain",
        "input",
        "sts_id",
        "sts_record",
        "policy_url",
        "policy_sha256",
        "error",
    ] {
        assert_eq!(has_dictionary(name), Some(false), "{name}");
    }
    assert_eq!(has_dictionary("outcome"), Some(true));
    for column in row_groups[0].columns() {
        assert!(
            matches!(column.compression(), Compression::ZSTD(_)),
            "{} is {:?}",
            column.column_path(),
            column.compression()
        );
    }
}

#[test]
fn parquet_flush_closes_a_part_readable_before_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flushed.parquet");
    let mut writer = output::create_writer(
        &OutputTarget::File(path.clone()),
        Format::Parquet,
        &metadata(),
    )
    .expect("writer");
    writer.write(&valid_report()).expect("write");
    writer.flush().expect("flush");
    writer
        .flush()
        .expect("a flush with nothing buffered is fine");
    // A crash now would leave the flushed part: readable through the output's name.
    assert!(!path.exists());
    assert_eq!(read_all(&path, None).len(), 1);
    writer.write(&bare_report()).expect("write");
    writer.finish().expect("finish");
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
        .expect("parquet");
    assert_eq!(
        builder.metadata().num_row_groups(),
        1,
        "parts merge into full row groups"
    );
    assert_eq!(read_all(&path, None).len(), 2);
    assert!(!dir.path().join("flushed.parquet.parts").exists());
}

#[test]
fn large_parquet_files_have_several_row_groups() {
    const ROWS: i64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large.parquet");
    let mut writer = output::create_writer(
        &OutputTarget::File(path.clone()),
        Format::Parquet,
        &metadata(),
    )
    .expect("writer");
    let mut report = valid_report();
    for rank in 1..=ROWS {
        report.rank = Some(rank);
        report.domain = format!("d{rank}.example");
        report.scanned_at = SCANNED_AT + rank;
        writer.write(&report).expect("write");
    }
    writer.finish().expect("finish");

    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).expect("open"))
        .expect("parquet");
    // 65,536 rows per row group.
    assert_eq!(builder.metadata().num_row_groups(), 4);

    let mut count = 0;
    for (index, row) in output::read_results(&path, None).expect("open").enumerate() {
        let row = row.expect("row");
        let rank = index as i64 + 1;
        assert_eq!(row.rank, Some(rank));
        assert_eq!(row.scanned_at, SCANNED_AT + rank);
        count += 1;
    }
    assert_eq!(count, ROWS);
}

#[test]
fn csv_and_jsonl_flush_leaves_whole_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    for format in [Format::Csv, Format::Jsonl] {
        let path = dir.path().join(format!("partial.{}", format.extension()));
        let mut writer =
            output::create_writer(&OutputTarget::File(path.clone()), format, &metadata())
                .expect("writer");
        for report in sample_reports() {
            writer.write(&report).expect("write");
        }
        writer.flush().expect("flush");
        // Read while the writer is still open, as `--resume` after a crash would.
        let text = std::fs::read(&path).expect("read");
        assert_eq!(text.last(), Some(&b'\n'), "{format}");
        assert_eq!(
            read_all(&path, None).len(),
            sample_reports().len(),
            "{format}"
        );
        writer.finish().expect("finish");
    }
}

#[test]
fn unknown_issue_codes_in_csv_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), Format::Csv, &[unicode_report()]);
    let text = std::fs::read_to_string(&path).expect("read");
    let text = text.replace(
        "sts_record_missing tlsrpt_missing",
        "sts_record_missing from_the_future tlsrpt_missing",
    );
    std::fs::write(&path, text).expect("write");
    let read = read_all(&path, None);
    assert_same(Format::Csv, &unicode_report(), &read[0]);
}

#[test]
fn malformed_rows_are_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), Format::Csv, &[bare_report(), valid_report()]);
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "only,three,fields");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let rows: Vec<_> = output::read_results(&path, None).expect("open").collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].is_ok());
    let error = rows[1].as_ref().expect_err("malformed");
    assert!(error.contains("results.csv"), "{error}");
    assert!(rows[2].is_ok());
}

#[test]
fn missing_required_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.csv");
    std::fs::write(&path, "domain,input\nexample.com,example.com\n").expect("write");
    let error = output::read_results(&path, None).err().expect("refused");
    assert!(
        error.contains("short.csv") && error.contains("`outcome`"),
        "{error}"
    );
}

#[test]
fn resuming_after_a_merge_that_died_before_cleanup_does_not_duplicate_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("done.parquet");
    let mut writer = output::create_writer(
        &OutputTarget::File(path.clone()),
        Format::Parquet,
        &metadata(),
    )
    .expect("writer");
    writer.write(&valid_report()).expect("write");
    writer.finish().expect("finish");
    // The state a kill between the merge's rename and the parts' removal leaves behind.
    let parts = dir.path().join("done.parquet.parts");
    std::fs::create_dir(&parts).expect("parts");
    std::fs::copy(&path, parts.join("part-00000.parquet")).expect("copy");
    let mut writer = output::append_writer(&path, Format::Parquet, &metadata()).expect("append");
    writer.write(&bare_report()).expect("write");
    writer.finish().expect("finish");
    assert_eq!(read_all(&path, None).len(), 2);
}
