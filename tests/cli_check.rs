//! `mta-sts-scan check` as a user runs it: the real binary against the test internet, its JSON
//! shape (the hosted endpoint's field names), its text report and its exit status.

mod common;

use common::{Lab, lab};

trait Check {
    fn check(&self, args: &[&str]) -> (i32, String, String);
}

impl Check for Lab {
    fn check(&self, args: &[&str]) -> (i32, String, String) {
        let output = self
            .command("check")
            .args(args)
            .args(["--dns-attempts", "1"])
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_has_the_seed_fields_and_our_columns() {
    let lab = lab().await;
    let (code, stdout, stderr) = lab.check(&["valid-testing-1.test", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // The hosted endpoint's fields, in its shapes.
    assert_eq!(json["domain"], "valid-testing-1.test");
    assert_eq!(json["has_mta_sts"], true);
    assert_eq!(json["dns_record"]["version"], "STSv1");
    assert_eq!(json["dns_record"]["id"], "20260101T000000");
    assert_eq!(json["policy"]["version"], "STSv1");
    assert_eq!(json["policy"]["mode"], "testing");
    assert_eq!(json["policy"]["mx"][0], "*.valid-testing-1.test");
    assert_eq!(json["policy"]["max_age"], 86400);
    assert_eq!(json["mode"], "testing");
    assert_eq!(
        json["policy_url"],
        "https://mta-sts.valid-testing-1.test/.well-known/mta-sts.txt"
    );
    assert_eq!(json["tls_rpt"]["rua"][0], "mailto:tlsrpt@example.net");
    assert_eq!(json["issues"][0]["code"], "mode_testing");
    assert_eq!(json["issues"][0]["severity"], "info");
    assert!(
        json["recommendations"][0]
            .as_str()
            .unwrap()
            .contains("enforce")
    );
    // Ours.
    assert_eq!(json["outcome"], "valid");
    assert_eq!(json["mx_hosts"].as_array().unwrap().len(), 2);
    assert_eq!(json["delivery_at_risk"], false);
    for column in [
        "input",
        "rank",
        "sts_id",
        "sts_record",
        "sts_record_cname",
        "policy_host_cname",
        "policy_http_status",
        "policy_content_type",
        "policy_sha256",
        "max_age",
        "mx_patterns",
        "mx_uncovered",
        "tls_rpt_rua",
        "severity",
        "error",
        "scanned_at",
        "duration_ms",
    ] {
        assert!(json.get(column).is_some(), "missing {column}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_status_follows_the_outcome() {
    let lab = lab().await;
    for (domain, expected) in [
        ("valid-enforce-1.test", 0),
        ("record-multiple-1.test", 1),
        ("no-sts-1.test", 1),
        ("servfail-1.test", 2),
        ("not a domain", 2),
    ] {
        let (code, stdout, stderr) = lab.check(&[domain]);
        assert_eq!(code, expected, "{domain}: {stdout} {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_report_names_the_problem_and_the_fix() {
    let lab = lab().await;
    let (code, stdout, _) = lab.check(&["mx-uncovered-1.test"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("mx-uncovered-1.test: valid (enforce mode)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("backup.example.net (not covered)"),
        "{stdout}"
    );
    assert!(stdout.contains("mx_not_covered"), "{stdout}");
    assert!(stdout.contains("Delivery at risk"), "{stdout}");
    assert!(!stdout.contains("\x1b["), "no colour when not a terminal");
}

/// The DNS time budget as users get it: no --dns-timeout, --dns-attempts or --retries, so the
/// defaults (3 s, 2 attempts, 1 retry) are what runs. A silent name server must end in a clear
/// `error` row well within the default domain deadline, and answers that fail fast (SERVFAIL on
/// the policy host) must not be slowed by the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_dns_budget_ends_in_clear_verdicts() {
    let lab = lab().await;
    let check = |domain: &str| {
        let output = common::binary()
            .arg("check")
            .arg(domain)
            .arg("--json")
            .args(["--resolver", &lab.internet.dns_address.to_string()])
            .args(["--policy-port", &lab.internet.https_port.to_string()])
            .arg("--ca-file")
            .arg(lab.ca_file.path())
            .arg("--allow-private-addresses")
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        (output.status.code(), json)
    };
    let (code, json) = check("valid-enforce-3.test");
    assert_eq!((code, json["outcome"].as_str()), (Some(0), Some("valid")));
    let (code, json) = check("policy-host-servfail-3.test");
    assert_eq!((code, json["outcome"].as_str()), (Some(2), Some("error")));
    assert_eq!(json["lookup_failures"][0], "policy_host:servfail");
    assert_eq!(json["policy_fetch"], "dns_failed");
    let (code, json) = check("dns-silent-3.test");
    assert_eq!((code, json["outcome"].as_str()), (Some(2), Some("error")));
    assert_eq!(json["lookup_failures"][0], "mta_sts_txt:timeout");
}
