//! End to end through real servers on loopback: every scenario of the test internet, checked
//! with the real resolver and HTTP client, gives the outcome and the codes it promises.

use mta_sts_scan::issues::IssueCode;
use mta_sts_scan::lab::scenarios::{SCENARIOS, lab_domain};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::report::{DomainReport, Outcome};

async fn lab() -> TestInternet {
    TestInternet::start(LabOptions::default())
        .await
        .expect("test internet starts")
}

fn codes(report: &DomainReport) -> Vec<&'static str> {
    report.issues.iter().map(|i| i.code.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gives_its_outcome_and_codes() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    // The MX-probe scenarios need --probe-mx: tests/mx_probe.rs checks them.
    let checks = SCENARIOS
        .iter()
        .filter(|s| !s.needs_mx_probe())
        .map(|scenario| {
            let validator = &validator;
            async move {
                let report = validator
                    .check_input(&lab_domain(scenario.slug, 7), None)
                    .await;
                (scenario, report)
            }
        });
    let mut failures = Vec::new();
    for (scenario, report) in futures::future::join_all(checks).await {
        let missing: Vec<_> = scenario
            .codes
            .iter()
            .filter(|code| !report.has_issue(**code))
            .collect();
        if report.outcome != scenario.outcome || !missing.is_empty() {
            failures.push(format!(
                "{}: expected {} with {:?}, got {} with {:?}",
                scenario.slug, scenario.outcome, scenario.codes, report.outcome, report.issues
            ));
        }
        // A valid scenario without expected codes must be clean of errors and warnings.
        if scenario.outcome == Outcome::Valid && scenario.codes.is_empty() {
            let noisy: Vec<_> = report
                .issues
                .iter()
                .filter(|i| i.severity >= mta_sts_scan::issues::Severity::Warning)
                .collect();
            if !noisy.is_empty() {
                failures.push(format!("{}: unexpected issues {noisy:?}", scenario.slug));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_lookup_code_is_produced_by_some_scenario() {
    // input_invalid_domain comes from the input and policy_without_record needs probing (tests
    // below); domain_timeout comes from the scan's deadline (tests/scan.rs).
    for code in IssueCode::ALL {
        if matches!(
            code,
            IssueCode::InputInvalidDomain
                | IssueCode::PolicyWithoutRecord
                | IssueCode::DomainTimeout
        ) {
            continue;
        }
        assert!(
            SCENARIOS.iter().any(|s| s.codes.contains(code)),
            "no scenario produces {code}"
        );
    }
}

#[tokio::test]
async fn valid_policy_fills_every_column() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator
        .check_input("Valid-Enforce-1.TEST.", Some(12))
        .await;
    assert_eq!(report.outcome, Outcome::Valid, "{:?}", report.issues);
    assert_eq!(report.domain, "valid-enforce-1.test");
    assert_eq!(report.input, "Valid-Enforce-1.TEST.");
    assert_eq!(report.rank, Some(12));
    assert!(report.has_mta_sts);
    assert_eq!(report.sts_id.as_deref(), Some("20260101T000000"));
    assert_eq!(
        report.policy_url.as_deref(),
        Some("https://mta-sts.valid-enforce-1.test/.well-known/mta-sts.txt")
    );
    assert_eq!(report.policy_http_status, Some(200));
    assert_eq!(report.policy_content_type.as_deref(), Some("text/plain"));
    assert_eq!(report.policy_sha256.as_ref().map(String::len), Some(64));
    assert_eq!(report.max_age, Some(604800));
    assert_eq!(
        report.mx_patterns,
        ["mx1.valid-enforce-1.test", "*.valid-enforce-1.test"]
    );
    assert_eq!(
        report.mx_hosts,
        ["mx1.valid-enforce-1.test", "mx2.valid-enforce-1.test"]
    );
    assert!(report.mx_uncovered.is_empty());
    assert!(!report.delivery_at_risk);
    assert!(report.tls_rpt);
    assert_eq!(report.tls_rpt_rua, ["mailto:tlsrpt@example.net"]);
    assert_eq!(report.sts_record_cname, None);
    assert_eq!(report.policy_host_cname, None);
    assert!(report.scanned_at > 1_700_000_000_000);
}

#[tokio::test]
async fn hosted_provider_cnames_are_reported_and_sni_picks_the_certificate() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator.check_input("hosted-3.test", None).await;
    assert_eq!(report.outcome, Outcome::Valid, "{:?}", report.issues);
    assert_eq!(
        report.sts_record_cname.as_deref(),
        Some("_mta-sts.provider.test")
    );
    assert_eq!(
        report.policy_host_cname.as_deref(),
        Some("mta-sts.provider.test")
    );
    assert_eq!(report.sts_id.as_deref(), Some("provider2026"));
}

#[tokio::test]
async fn split_and_oversized_txt_answers_are_read_whole() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let split = validator.check_input("record-split-1.test", None).await;
    assert_eq!(
        split.sts_id.as_deref(),
        Some("20260101"),
        "{:?}",
        split.issues
    );
    // Seven records of ~230 bytes cannot fit a UDP answer: the resolver must retry over TCP.
    let big = validator.check_input("record-big-1.test", None).await;
    assert_eq!(big.outcome, Outcome::Valid, "{:?}", big.issues);
    assert_eq!(big.sts_id.as_deref(), Some("big1"));
}

#[tokio::test]
async fn mx_outside_the_enforced_policy_puts_delivery_at_risk() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator.check_input("mx-uncovered-1.test", None).await;
    assert_eq!(report.mx_uncovered, ["backup.example.net"]);
    assert!(report.delivery_at_risk);
    let issue = report
        .issues
        .iter()
        .find(|i| i.code == IssueCode::MxNotCovered)
        .unwrap();
    assert_eq!(issue.severity, mta_sts_scan::issues::Severity::Error);
}

#[tokio::test]
async fn private_addresses_are_refused_without_a_connection_and_allowed_on_request() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator.check_input("private-address-1.test", None).await;
    assert!(report.has_issue(IssueCode::PolicyAddressForbidden));
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("10.255.255.1")
    );

    // With the default policy even the lab's loopback host is refused.
    let mut strict = lab.scanner_config();
    strict.validation.address_policy = Default::default();
    let report = strict
        .build_validator()
        .unwrap()
        .check_input("valid-enforce-1.test", None)
        .await;
    assert_eq!(report.outcome, Outcome::Invalid);
    assert!(report.has_issue(IssueCode::PolicyAddressForbidden));
}

#[tokio::test]
async fn probing_finds_a_policy_without_a_record() {
    let lab = lab().await;
    let mut config = lab.scanner_config();
    let plain = config.build_validator().unwrap();
    let report = plain.check_input("policy-only-1.test", None).await;
    assert!(!report.has_issue(IssueCode::PolicyWithoutRecord));
    config.validation.probe_policy = true;
    let probing = config.build_validator().unwrap();
    let report = probing.check_input("policy-only-1.test", None).await;
    assert_eq!(report.outcome, Outcome::Absent);
    assert!(
        report.has_issue(IssueCode::PolicyWithoutRecord),
        "{:?}",
        codes(&report)
    );
    // Probing a domain without any policy host stays quiet.
    let report = probing.check_input("no-sts-1.test", None).await;
    assert!(!report.has_issue(IssueCode::PolicyWithoutRecord));
}

#[tokio::test]
async fn input_that_is_not_a_domain_is_one_input_error_row() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    for input in [
        "",
        "https://example.com/",
        "user@example.com",
        "10.0.0.1",
        "*.example.com",
    ] {
        let report = validator.check_input(input, Some(1)).await;
        assert_eq!(report.outcome, Outcome::InputError, "{input:?}");
        assert_eq!(codes(&report), ["input_invalid_domain"], "{input:?}");
        assert!(report.error.is_some());
        assert_eq!(report.input, input);
    }
}

#[tokio::test]
async fn unknown_lab_domain_is_nxdomain() {
    let lab = lab().await;
    let validator = lab.scanner_config().build_validator().unwrap();
    let report = validator.check_input("no-such-scenario.test", None).await;
    assert_eq!(report.outcome, Outcome::Absent);
    assert_eq!(codes(&report), ["domain_nxdomain"]);
}

#[test]
fn the_demo_list_covers_every_scenario() {
    let list = mta_sts_scan::lab::demo::DEMO_LIST;
    for scenario in SCENARIOS {
        assert!(
            list.contains(&format!(",{}-1.test\n", scenario.slug)),
            "sample-data/demo-domains.csv has no {} domain: regenerate it",
            scenario.slug
        );
    }
}
