//! Spec §7 end to end: `--probe-mx` through the real resolver and the lab's SMTP servers. Every
//! MX scenario gives its outcome and codes, the columns and the delivery verdicts follow, and a
//! scan probes each MX host once, however many domains share it.

use std::sync::Arc;

use mta_sts_scan::config::ScannerConfig;
use mta_sts_scan::issues::{IssueCode, Severity};
use mta_sts_scan::lab::scenarios::{SCENARIOS, lab_domain};
use mta_sts_scan::lab::smtp::MxBehaviour;
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::mta_sts::mx_class::MxMismatchClass;
use mta_sts_scan::report::Outcome;

async fn lab() -> TestInternet {
    TestInternet::start(LabOptions::default())
        .await
        .expect("test internet starts")
}

fn probing(lab: &TestInternet) -> ScannerConfig {
    let mut config = lab.scanner_config();
    config.mx_probe = Some(lab.mx_probe_settings());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mx_scenario_gives_its_outcome_and_codes() {
    let lab = lab().await;
    let validator = probing(&lab).build_validator().unwrap();
    let mut failures = Vec::new();
    let scenarios: Vec<_> = SCENARIOS.iter().filter(|s| s.needs_mx_probe()).collect();
    assert!(scenarios.len() >= 6);
    for scenario in scenarios {
        let report = validator
            .check_input(&lab_domain(scenario.slug, 1), None)
            .await;
        let missing: Vec<_> = scenario
            .codes
            .iter()
            .filter(|code| !report.has_issue(**code))
            .collect();
        if report.outcome != scenario.outcome || !missing.is_empty() || !report.mx_probed {
            failures.push(format!(
                "{}: expected {} with {:?}, got {} with {:?}",
                scenario.slug, scenario.outcome, scenario.codes, report.outcome, report.issues
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_and_delivery_verdicts_follow_the_probes() {
    let lab = lab().await;
    let validator = probing(&lab).build_validator().unwrap();
    let check = |slug: &'static str| {
        let validator = &validator;
        async move { validator.check_input(&lab_domain(slug, 2), None).await }
    };

    let all_valid = check("mx-tls-valid").await;
    assert_eq!(all_valid.outcome, Outcome::Valid);
    assert_eq!(
        all_valid.mx_tls_valid,
        ["valid.mx.test", "wildcard.mx.test", "split-replies.mx.test"]
    );
    assert!(all_valid.mx_tls_failed.is_empty() && all_valid.mx_tls_unknown.is_empty());
    assert!(!all_valid.delivery_at_risk && !all_valid.delivery_blocked);
    assert_eq!(
        all_valid.severity(),
        Severity::None,
        "{:?}",
        all_valid.issues
    );

    let one_bad = check("mx-starttls-missing").await;
    assert_eq!(
        one_bad.mx_tls_failed,
        ["no-starttls.mx.test starttls_missing"]
    );
    assert!(one_bad.delivery_at_risk && !one_bad.delivery_blocked);
    let issue = one_bad
        .issues
        .iter()
        .find(|i| i.code == IssueCode::MxStarttlsMissing)
        .unwrap();
    assert_eq!(issue.severity, Severity::Error, "error in enforce mode");

    let blocked = check("mx-tls-invalid").await;
    assert_eq!(blocked.mx_tls_failed, ["expired.mx.test cert_expired"]);
    assert!(blocked.delivery_at_risk && blocked.delivery_blocked);

    let testing = check("mx-tls-invalid-testing").await;
    assert_eq!(
        testing.mx_tls_failed,
        [
            "wrong-name.mx.test cert_name_mismatch",
            "untrusted-ca.mx.test cert_untrusted"
        ]
    );
    assert!(
        testing
            .issues
            .iter()
            .all(|i| i.severity <= Severity::Warning)
    );
    assert!(!testing.delivery_at_risk, "testing mode never blocks");

    let unknown = check("mx-unreachable").await;
    assert_eq!(unknown.mx_tls_unknown, ["greeting-421.mx.test"]);
    assert!(!unknown.delivery_at_risk, "unreachable counts neither way");

    let mixed = check("mx-uncovered-and-broken").await;
    assert_eq!(mixed.mx_uncovered, ["valid.mx.example"]);
    assert_eq!(mixed.mx_uncovered_class, [MxMismatchClass::Tld]);
    assert_eq!(mixed.mx_tls_failed, ["self-signed.mx.test cert_untrusted"]);
    assert!(
        mixed.delivery_blocked,
        "uncovered plus TLS failure: every MX refused"
    );

    let expiring = check("mx-cert-expiring").await;
    assert_eq!(expiring.mx_tls_valid, ["expiring.mx.test"]);
    assert!(expiring.has_issue(IssueCode::MxCertExpiring));
    assert!(!expiring.delivery_at_risk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_probe_mx_the_columns_stay_empty_and_the_codes_never_appear() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator
        .check_input(&lab_domain("mx-tls-invalid", 3), None)
        .await;
    assert!(!report.mx_probed);
    assert!(report.mx_tls_failed.is_empty() && report.mx_tls_valid.is_empty());
    assert!(!report.delivery_at_risk && !report.delivery_blocked);
    assert!(!report.issues.iter().any(|i| matches!(
        i.code,
        IssueCode::MxStarttlsMissing
            | IssueCode::MxTlsInvalid
            | IssueCode::MxCertExpiring
            | IssueCode::MxUnreachable
    )));
    assert_eq!(
        lab.smtp.counts(MxBehaviour::Expired).total,
        0,
        "no probe without the flag"
    );
}

/// One probe per MX host per scan: 40 domains checked at once, all using `valid.mx.test`,
/// make exactly one connection, counted by the SMTP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_domains_sharing_an_mx_host_cost_one_connection() {
    let lab = lab().await;
    let validator = Arc::new(probing(&lab).build_validator().unwrap());
    let checks = (0..40).map(|n| {
        let validator = validator.clone();
        async move {
            validator
                .check_input(&lab_domain("mx-tls-valid", 100 + n), None)
                .await
        }
    });
    let reports = futures::future::join_all(checks).await;
    assert!(reports.iter().all(|r| r.mx_tls_valid.len() == 3));
    for behaviour in [
        MxBehaviour::Valid,
        MxBehaviour::Wildcard,
        MxBehaviour::SplitReplies,
    ] {
        let counts = lab.smtp.counts(behaviour);
        assert_eq!(counts.total, 1, "{behaviour:?}: {counts:?}");
        assert_eq!(counts.mail_commands, 0, "no mail is ever sent");
    }
    let results = validator.mx_results().unwrap();
    let valid = results
        .iter()
        .find(|(probe, _)| probe.host == "valid.mx.test")
        .unwrap();
    assert_eq!(
        valid.1, 40,
        "the MX table counts the domains using the host"
    );
}
