//! Micro-benchmarks of the per-domain hot path: the TXT, policy and TLS-RPT parsers, mx
//! matching, domain normalisation, and the writers (rows per second for each format).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mta_sts_scan::domain::normalize_domain;
use mta_sts_scan::issues::{Issue, IssueCode};
use mta_sts_scan::mta_sts::mx::mx_pattern_matches;
use mta_sts_scan::mta_sts::policy::{Mode, parse_policy};
use mta_sts_scan::mta_sts::record::evaluate_sts_records;
use mta_sts_scan::mta_sts::tlsrpt::evaluate_tlsrpt_records;
use mta_sts_scan::output::{Format, OutputTarget, RunMetadata, create_writer};
use mta_sts_scan::report::{DomainReport, Outcome};

const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mail.example.net\r\nmax_age: 604800\r\n";

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sts_record", |b| {
        let records = [
            "v=spf1 include:_spf.example.com -all",
            "v=STSv1; id=20260101T000000;",
        ];
        b.iter(|| evaluate_sts_records(black_box(records)))
    });
    group.bench_function("policy", |b| b.iter(|| parse_policy(black_box(POLICY))));
    group.bench_function("tlsrpt", |b| {
        let records = ["v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.net/v1"];
        b.iter(|| evaluate_tlsrpt_records(black_box(records)))
    });
    group.bench_function("mx_match", |b| {
        b.iter(|| {
            mx_pattern_matches(
                black_box("*.mail.example.net"),
                black_box("MX3.Mail.Example.NET."),
            )
        })
    });
    for input in ["example.com", "  Mail.Example.COM. ", "bücher.example"] {
        group.bench_with_input(
            BenchmarkId::new("normalize", input.trim()),
            input,
            |b, input| b.iter(|| normalize_domain(black_box(input))),
        );
    }
    group.finish();
}

fn sample_rows() -> Vec<DomainReport> {
    (0..1000)
        .map(|n| {
            let domain = format!("domain-{n}.example.com");
            let mut report = DomainReport::new(domain.clone(), domain.clone(), Some(n));
            report.mx_hosts = vec![format!("mx1.{domain}"), format!("mx2.{domain}")];
            report.scanned_at = 1_790_000_000_000 + n;
            report.duration_ms = 12;
            if n % 50 == 0 {
                report.outcome = Outcome::Valid;
                report.has_mta_sts = true;
                report.sts_id = Some("20260101T000000".into());
                report.sts_record = Some("v=STSv1; id=20260101T000000;".into());
                report.policy_url =
                    Some(format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"));
                report.policy_http_status = Some(200);
                report.policy_content_type = Some("text/plain".into());
                report.policy_sha256 = Some("ab".repeat(32));
                report.mode = Some(Mode::Enforce);
                report.max_age = Some(604_800);
                report.mx_patterns = vec![format!("*.{domain}")];
                report.tls_rpt = true;
                report.tls_rpt_rua = vec![format!("mailto:tlsrpt@{domain}")];
            } else {
                report.issues = vec![
                    Issue::new(IssueCode::StsRecordMissing, "no v=STSv1 TXT record"),
                    Issue::new(IssueCode::TlsrptMissing, "no TLS-RPT record"),
                ];
            }
            report
        })
        .collect()
}

fn writers(c: &mut Criterion) {
    let rows = sample_rows();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.sample_size(20);
    for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
        let path = dir.path().join(format!("bench.{}", format.extension()));
        group.bench_function(format.as_str(), |b| {
            b.iter(|| {
                let target = OutputTarget::File(path.clone());
                let mut writer = create_writer(&target, format, &RunMetadata::default()).unwrap();
                for row in &rows {
                    writer.write(row).unwrap();
                }
                writer.finish().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parsers, writers);
criterion_main!(benches);
