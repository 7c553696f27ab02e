//! The two DNS engines agree: every scenario of the test internet, checked once through the
//! scanning path (`--dns-engine scan`) and once through hickory-resolver, gives the same outcome,
//! the same issue codes and the same DNS facts. The scanning path is the default only because it
//! passes everything the hickory path passes; this keeps the hickory path honest too.

use mta_sts_scan::lab::scenarios::{SCENARIOS, lab_domain};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::net::dns::DnsEngineKind;
use mta_sts_scan::report::DomainReport;

/// What must not depend on the engine.
fn facts(report: &DomainReport) -> String {
    let mut codes: Vec<&str> = report.issues.iter().map(|i| i.code.as_str()).collect();
    codes.sort_unstable();
    format!(
        "outcome={} codes={codes:?} sts_id={:?} sts_cname={:?} host_cname={:?} mx={:?}",
        report.outcome,
        report.sts_id,
        report.sts_record_cname,
        report.policy_host_cname,
        report.mx_hosts,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_give_the_same_report_for_every_scenario() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let mut reports = Vec::new();
    for engine in [DnsEngineKind::Scan, DnsEngineKind::Hickory] {
        let mut config = lab.scanner_config();
        config.dns.engine = engine;
        let validator = config.build_validator().unwrap();
        let checks = SCENARIOS.iter().map(|scenario| {
            let validator = &validator;
            async move {
                let report = validator
                    .check_input(&lab_domain(scenario.slug, 3), None)
                    .await;
                (scenario.slug, facts(&report))
            }
        });
        reports.push(futures::future::join_all(checks).await);
    }
    let differences: Vec<String> = reports[0]
        .iter()
        .zip(&reports[1])
        .filter(|(scan, hickory)| scan.1 != hickory.1)
        .map(|(scan, hickory)| {
            format!("{}:\n  scan    {}\n  hickory {}", scan.0, scan.1, hickory.1)
        })
        .collect();
    assert_eq!(reports[0].len(), SCENARIOS.len());
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
