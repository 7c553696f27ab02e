//! Dirty lists: 100,000 hostile lines give exactly one row per data line (blank lines and
//! `#` comments are not data), `input_error` with a clear message where the line is not a
//! domain; and normalisation is total and idempotent on any string (property test).

use std::collections::HashMap;
use std::time::Duration;

use mta_sts_scan::domain::normalize_domain;
use mta_sts_scan::lab::{LabOptions, TestInternet};
use mta_sts_scan::output::{Format, OutputTarget, read_results};
use mta_sts_scan::report::Outcome;
use mta_sts_scan::scan::job::{InputSource, ScanJob, run_job};
use mta_sts_scan::scan::pipeline::ScanSettings;
use proptest::prelude::*;

/// A hostile line for index `n`, and what its row must say: `None` = not a data line,
/// `Some(None)` = a domain (any verdict), `Some(Some(fragment))` = input error mentioning it.
fn hostile(n: usize) -> (Vec<u8>, Option<Option<&'static str>>) {
    match n % 16 {
        0 => (Vec::new(), None),
        1 => (b"   \t ".to_vec(), None),
        2 => (format!("ok-{}.test", n % 97).into_bytes(), Some(None)), // duplicates, NXDOMAIN
        3 => (b"nul\0byte.test".to_vec(), Some(Some("character"))),
        4 => (b"caf\xe9.test".to_vec(), Some(Some("UTF-8"))),
        5 if n % 32 == 5 => (vec![b'a'; 10 * 1024], Some(Some("octets"))),
        5 => (vec![b'b'; 40 * 1024], Some(Some("longer than"))), // cut at 16 KiB
        6 => (b"https://www.example.com/login".to_vec(), Some(Some("URL"))),
        7 => (b"ceo@example.com".to_vec(), Some(Some("e-mail"))),
        8 => (b"198.51.100.7".to_vec(), Some(Some("IP"))),
        9 => (b"[2001:db8::1]".to_vec(), Some(Some("IP"))),
        10 => (b"*.example.com".to_vec(), Some(Some("wildcard"))),
        11 => (b"\"unbalanced.test".to_vec(), Some(Some("quote"))),
        12 => (b"# a comment".to_vec(), None),
        13 => (b"exa mple.com".to_vec(), Some(Some("character"))),
        14 => (b"\xEF\xBB\xBFno-sts-1.test\r".to_vec(), Some(None)), // BOM mid-file, CRLF
        _ => (b"-.-".to_vec(), Some(Some(""))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_hostile_lines_give_one_row_each() {
    let lab = TestInternet::start(LabOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("hostile.txt");
    let mut bytes = Vec::new();
    let mut expected: HashMap<u64, Option<&'static str>> = HashMap::new();
    for n in 0..100_000 {
        let (line, verdict) = hostile(n);
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
        if let Some(verdict) = verdict {
            expected.insert(n as u64, verdict);
        }
    }
    std::fs::write(&list, bytes).unwrap();
    let output = dir.path().join("rows.jsonl");
    let job = ScanJob {
        input: InputSource::File(list),
        column: None,
        output: OutputTarget::File(output.clone()),
        format: Format::Jsonl,
        summary: None,
        show_progress: false,
        shard: None,
        resume: false,
        mx_output: None,
        settings: ScanSettings {
            concurrency: 256,
            domain_timeout: Duration::from_secs(20),
            ..ScanSettings::default()
        },
    };
    let mut config = lab.scanner_config();
    config.dns.max_in_flight = 2048;
    let result = run_job(&job, &config, std::future::pending())
        .await
        .unwrap();
    let rows: Vec<_> = read_results(&output, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), expected.len());
    assert_eq!(result.statistics.rows as usize, expected.len());
    let errors = rows
        .iter()
        .filter(|r| r.outcome == Outcome::InputError)
        .count();
    let wanted_errors = expected.values().filter(|v| v.is_some()).count();
    assert_eq!(errors, wanted_errors);
    for row in rows.iter().filter(|r| r.outcome == Outcome::InputError) {
        let message = row.error.as_deref().unwrap_or("");
        assert!(!message.is_empty(), "{:?}", row.input);
        assert!(row.input.len() <= 16 * 1024);
    }
    // Each kind of bad line carries its own explanation.
    for (fragment, sample) in [
        ("URL", "https://www.example.com/login"),
        ("e-mail", "ceo@example.com"),
        ("IP", "198.51.100.7"),
        ("wildcard", "*.example.com"),
    ] {
        let row = rows.iter().find(|r| r.input == sample).unwrap();
        assert!(
            row.error.as_deref().unwrap().contains(fragment),
            "{sample}: {:?}",
            row.error
        );
    }
    let unbalanced = rows
        .iter()
        .find(|r| r.input.contains("unbalanced"))
        .unwrap();
    assert!(unbalanced.error.as_deref().unwrap().contains("quote"));
    let not_utf8 = rows.iter().find(|r| r.input.starts_with("caf")).unwrap();
    assert!(not_utf8.error.as_deref().unwrap().contains("UTF-8"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_never_panics_and_is_idempotent(input in any::<String>()) {
        if let Ok(domain) = normalize_domain(&input) {
            prop_assert_eq!(normalize_domain(&domain), Ok(domain.clone()));
            prop_assert!(domain.len() <= 253);
            prop_assert!(domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
        }
    }

    #[test]
    fn domain_like_inputs_normalise_idempotently(input in "[ a-zA-Z0-9.\\-_*@:/äöüß]{0,80}") {
        if let Ok(domain) = normalize_domain(&input) {
            prop_assert_eq!(normalize_domain(&domain), Ok(domain.clone()));
        }
    }
}
