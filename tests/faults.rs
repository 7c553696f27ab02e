//! Hostile servers and broken DNS, end to end: every fault ends within its deadline with the
//! right code, a scan goes on past it, and several resolvers fail over. Prints the fault matrix
//! (fault → code → time to verdict) with `--nocapture`.

use std::time::{Duration, Instant};

use mta_sts_scan::issues::IssueCode;
use mta_sts_scan::lab::scenarios::{lab_domain, scenario_of};
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::report::Outcome;

/// (scenario, the code it must produce).
const FAULTS: &[(&str, IssueCode)] = &[
    ("servfail", IssueCode::DnsLookupFailed),
    ("refused", IssueCode::DnsLookupFailed),
    ("dns-silent", IssueCode::DnsLookupFailed),
    ("record-big", IssueCode::DnsLookupFailed), // truncated UDP: must NOT fail (TCP fallback)
    ("connect-refused", IssueCode::PolicyConnectFailed),
    ("tarpit", IssueCode::PolicyTimeout),
    ("slow-drip", IssueCode::PolicyTimeout),
    ("endless", IssueCode::PolicyTooLarge),
    ("huge-body", IssueCode::PolicyTooLarge),
    ("redirect-loop", IssueCode::PolicyRedirect),
    ("policy-bad-utf8", IssueCode::PolicySyntax),
    ("tls10", IssueCode::PolicyTlsInvalid),
    ("garbage-tls", IssueCode::PolicyTlsInvalid),
    ("cert-expired", IssueCode::PolicyTlsInvalid),
    ("private-address", IssueCode::PolicyAddressForbidden),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_within_its_deadline_with_the_right_code() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let config = lab.scanner_config();
    let validator = config.build_validator().unwrap();
    // The longest any domain may take: DNS (timeout × (1 + retries) + backoff) then the fetch.
    let dns_budget = config.dns.timeout * (1 + config.dns.retries) + Duration::from_millis(200);
    let deadline = dns_budget * 2 + config.http.total_timeout + Duration::from_secs(1);
    let checks = FAULTS.iter().map(|(slug, code)| {
        let validator = &validator;
        async move {
            let started = Instant::now();
            let report = validator.check_input(&lab_domain(slug, 1), None).await;
            (*slug, *code, report, started.elapsed())
        }
    });
    let mut matrix = vec![format!("{:<18} {:<26} {:>8}", "fault", "code", "ms")];
    let mut failures = Vec::new();
    for (slug, code, report, elapsed) in futures::future::join_all(checks).await {
        let expected = scenario_of(&lab_domain(slug, 1)).unwrap().outcome;
        let code_ok = if slug == "record-big" {
            !report.has_issue(code)
        } else {
            report.has_issue(code)
        };
        let shown = if slug == "record-big" {
            "(valid via TCP)".to_owned()
        } else {
            code.to_string()
        };
        matrix.push(format!("{slug:<18} {shown:<26} {:>8}", elapsed.as_millis()));
        if report.outcome != expected || !code_ok || elapsed > deadline {
            failures.push(format!(
                "{slug}: {} in {elapsed:?} (deadline {deadline:?}): {:?}",
                report.outcome, report.issues
            ));
        }
    }
    eprintln!("{}", matrix.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_name_server_is_waited_for_not_reported_as_failed() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let validator = lab.scanner_config().build_validator().unwrap();
    let started = Instant::now();
    let report = validator.check_input("slow-dns-1.test", None).await;
    assert_eq!(report.outcome, Outcome::Valid, "{:?}", report.issues);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_resolver_is_failed_over() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    // A name server that never answers (bound, silent) and one where nothing listens.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    for dead in [silent.local_addr().unwrap(), closed] {
        let mut config = lab.scanner_config();
        config.dns.nameservers = vec![dead, lab.dns_address];
        config.dns.timeout = Duration::from_millis(400);
        let validator = config.build_validator().unwrap();
        let report = validator.check_input("valid-enforce-1.test", None).await;
        assert_eq!(
            report.outcome,
            Outcome::Valid,
            "dead {dead}: {:?}",
            report.issues
        );
    }
    // With only dead servers the lookup fails loudly: error, never a silent absent.
    let mut config = lab.scanner_config();
    config.dns.nameservers = vec![silent.local_addr().unwrap()];
    config.dns.timeout = Duration::from_millis(200);
    let report = config
        .build_validator()
        .unwrap()
        .check_input("valid-enforce-1.test", None)
        .await;
    assert_eq!(report.outcome, Outcome::Error);
    assert!(report.has_issue(IssueCode::DnsLookupFailed));
    assert!(
        report.error.as_deref().unwrap_or("").contains("timeout"),
        "{:?}",
        report.error
    );
}
