//! The checks behind every fuzz target: each runs one parser on an input and panics on a
//! crash or a broken invariant. Shared by `fuzz_targets/*.rs` and, through `#[path]`, by the main
//! crate's `tests/fuzz_regressions.rs`, so a finding replays in the normal `cargo test`.

use mta_sts_scan::domain::normalize_domain;
use mta_sts_scan::issues::{Issue, IssueCode};
use mta_sts_scan::mta_sts::mx::mx_pattern_matches;
use mta_sts_scan::mta_sts::policy::{
    MAX_AGE_MAX, Mode, PolicyParse, parse_policy, parse_policy_bytes, validate_mx_pattern,
};
use mta_sts_scan::mta_sts::record::{StsRecordVerdict, evaluate_sts_records, parse_sts_record};
use mta_sts_scan::mta_sts::tlsrpt::{TlsRptVerdict, evaluate_tlsrpt_records, parse_tlsrpt_record};

/// The fuzz targets, named as their directories under `fuzz/seeds/` and `fuzz/regressions/`.
pub const TARGETS: [&str; 4] = ["sts_record", "policy", "tlsrpt", "domain"];

/// Runs the check of `target` on `data`; `false` for an unknown target name.
pub fn check(target: &str, data: &[u8]) -> bool {
    match target {
        "sts_record" => check_sts_record(data),
        "policy" => check_policy(data),
        "tlsrpt" => check_tlsrpt(data),
        "domain" => check_domain(data),
        _ => return false,
    }
    true
}

/// Every issue message is a non-empty single line: values from the internet are quoted with
/// control characters escaped (`mta_sts::quote`).
fn check_message(issue: &Issue, input: &str) {
    assert!(!issue.message.is_empty(), "empty message for {input:?}");
    assert!(
        !issue.message.chars().any(char::is_control),
        "control character in message {:?} for {input:?}",
        issue.message
    );
}

/// The `_mta-sts` TXT record: the input split on '\n' is the list of TXT records; the whole input
/// is also parsed as one record.
pub fn check_sts_record(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let verdict = evaluate_sts_records(text.split('\n'));
    check_sts_verdict(&verdict, &text);

    let parsed = parse_sts_record(&text);
    match &parsed {
        Ok(record) => {
            check_sts_id(record.id, &text);
            // One record that parses is the one candidate: the verdict must agree.
            let single = evaluate_sts_records([text.as_ref()]);
            let expected = StsRecordVerdict::Valid {
                id: record.id.to_owned(),
                extensions: record
                    .extensions
                    .iter()
                    .map(|&(name, value)| (name.to_owned(), value.to_owned()))
                    .collect(),
                duplicates: record.duplicates.iter().map(|&f| f.to_owned()).collect(),
            };
            assert_eq!(single, expected, "parse and evaluate disagree on {text:?}");
        }
        Err(issue) => {
            check_message(issue, &text);
            assert!(
                matches!(
                    issue.code,
                    IssueCode::StsRecordSyntax | IssueCode::StsRecordIdInvalid
                ),
                "unexpected code {:?} for {text:?}",
                issue.code
            );
        }
    }
}

fn check_sts_id(id: &str, input: &str) {
    assert!(
        (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "invalid id {id:?} accepted from {input:?}"
    );
}

fn check_sts_verdict(verdict: &StsRecordVerdict, input: &str) {
    match verdict {
        StsRecordVerdict::Missing => {}
        StsRecordVerdict::Valid {
            id,
            extensions,
            duplicates,
        } => {
            check_sts_id(id, input);
            // §3.1 exact grammar: no accepted record ends in whitespace or has an empty field.
            assert!(
                !input.ends_with([' ', '\t'])
                    || input.trim_end_matches([' ', '\t']).ends_with(';')
                    || input.contains('\n'),
                "trailing whitespace after the last field accepted in {input:?}"
            );
            assert!(
                input.contains('\n') || !input.contains(";;"),
                "repeated delimiter accepted in {input:?}"
            );
            for field in duplicates {
                assert!(field.contains('='), "duplicate {field:?} is not a field");
            }
            for (name, value) in extensions {
                assert!(
                    !name.is_empty() && !value.is_empty(),
                    "empty extension {name:?}={value:?} accepted from {input:?}"
                );
            }
        }
        StsRecordVerdict::Multiple { count } => {
            assert!(*count >= 2, "Multiple with count {count} for {input:?}");
        }
        StsRecordVerdict::Invalid { issue } => {
            check_message(issue, input);
            assert!(
                matches!(
                    issue.code,
                    IssueCode::StsRecordSyntax | IssueCode::StsRecordIdInvalid
                ),
                "unexpected code {:?} for {input:?}",
                issue.code
            );
        }
    }
}

/// The policy file, from raw bytes (BOM, UTF-16 and invalid UTF-8 included).
pub fn check_policy(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let parse = parse_policy_bytes(data);
    check_policy_parse(&parse, &input);
    // The same body as text: the str entry point must hold the same invariants.
    if let Ok(text) = std::str::from_utf8(data) {
        let parse = parse_policy(text);
        check_policy_parse(&parse, text);
    }
}

fn check_policy_parse(parse: &PolicyParse, input: &str) {
    let policy = &parse.policy;
    for issue in &parse.issues {
        check_message(issue, input);
    }
    // At most 3 issues of one code are listed, plus one summary issue.
    for issue in &parse.issues {
        let same = parse.issues.iter().filter(|i| i.code == issue.code).count();
        assert!(same <= 4, "{same} issues of {} for {input:?}", issue.code);
    }
    for (index, pattern) in policy.mx.iter().enumerate() {
        assert_eq!(
            validate_mx_pattern(pattern),
            Ok(()),
            "kept mx {pattern:?} fails validate_mx_pattern, from {input:?}"
        );
        assert!(
            !pattern.ends_with('.') && !pattern.bytes().any(|b| b.is_ascii_uppercase()),
            "mx {pattern:?} kept not normalised, from {input:?}"
        );
        assert!(
            !policy.mx[..index]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pattern)),
            "duplicate mx {pattern:?} kept, from {input:?}"
        );
        check_pattern_matches_itself(pattern);
    }
    if let Some(max_age) = policy.max_age {
        assert!(
            max_age <= MAX_AGE_MAX,
            "max_age {max_age} kept from {input:?}"
        );
    }
    if let Some(version) = &policy.version {
        assert_eq!(version, "STSv1", "from {input:?}");
    }
    if parse.is_usable() {
        // Every required field is present and valid, or an error issue says why not.
        assert!(policy.mode.is_some(), "usable without mode: {input:?}");
        if policy.mode.is_some() {
            assert_eq!(
                policy.version.as_deref(),
                Some("STSv1"),
                "usable without version: {input:?}"
            );
            assert!(
                policy.max_age.is_some(),
                "usable without max_age: {input:?}"
            );
        }
        if matches!(policy.mode, Some(Mode::Enforce | Mode::Testing)) {
            assert!(!policy.mx.is_empty(), "usable without mx: {input:?}");
        }
    }
}

/// A valid mx pattern covers the hosts it names (RFC 8461 §4.1).
fn check_pattern_matches_itself(pattern: &str) {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            assert!(
                mx_pattern_matches(pattern, &format!("mx1.{suffix}")),
                "{pattern:?} does not match mx1.{suffix}"
            );
            assert!(
                !mx_pattern_matches(pattern, suffix),
                "{pattern:?} matches its own suffix {suffix:?}"
            );
        }
        None => {
            assert!(
                mx_pattern_matches(pattern, pattern),
                "{pattern:?} vs itself"
            );
            let absolute = format!("{}.", pattern.to_ascii_uppercase());
            assert!(
                mx_pattern_matches(pattern, &absolute),
                "{pattern:?} vs {absolute:?}"
            );
        }
    }
}

/// The `_smtp._tls` TXT record: the input split on '\n' is the list of TXT records; the whole
/// input is also parsed as one record.
pub fn check_tlsrpt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match evaluate_tlsrpt_records(text.split('\n')) {
        TlsRptVerdict::Missing => {}
        TlsRptVerdict::Valid { rua, record } => {
            check_rua(&rua, &text);
            assert!(record.starts_with("v=TLSRPTv1"), "{record:?} from {text:?}");
        }
        TlsRptVerdict::Multiple { count } => {
            assert!(count >= 2, "Multiple with count {count} for {text:?}");
        }
        TlsRptVerdict::Invalid { issue } => {
            check_message(&issue, &text);
            assert_eq!(issue.code, IssueCode::TlsrptInvalid, "for {text:?}");
        }
    }
    match parse_tlsrpt_record(&text) {
        Ok(rua) => {
            check_rua(&rua, &text);
            let single = evaluate_tlsrpt_records([text.as_ref()]);
            let expected = TlsRptVerdict::Valid {
                rua: rua.iter().map(|&u| u.to_owned()).collect(),
                record: text.to_string(),
            };
            assert_eq!(single, expected, "parse and evaluate disagree on {text:?}");
        }
        Err(issue) => {
            check_message(&issue, &text);
            assert_eq!(issue.code, IssueCode::TlsrptInvalid, "for {text:?}");
        }
    }
}

fn check_rua<S: AsRef<str>>(rua: &[S], input: &str) {
    assert!(!rua.is_empty(), "valid record without rua: {input:?}");
    for uri in rua {
        let uri = uri.as_ref();
        assert!(
            !uri.is_empty() && uri.bytes().all(|b| b.is_ascii_graphic()),
            "rua URI {uri:?} accepted from {input:?}"
        );
        let scheme = uri.split(':').next().unwrap_or_default();
        assert!(
            scheme.eq_ignore_ascii_case("mailto") || scheme.eq_ignore_ascii_case("https"),
            "rua URI {uri:?} with scheme {scheme:?} accepted from {input:?}"
        );
    }
}

/// Domain normalisation: output shape, idempotence, and agreement with the mx code. Also runs
/// `mx_pattern_matches` on the input split at its first space into (pattern, host).
pub fn check_domain(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(domain) = normalize_domain(&text) {
        assert!(
            !domain.is_empty() && domain.len() <= 253,
            "{} octets from {text:?}",
            domain.len()
        );
        assert!(
            domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
            "{domain:?} from {text:?} has a character outside [a-z0-9.-]"
        );
        assert!(
            domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'),
            "{domain:?} from {text:?}"
        );
        assert_eq!(
            normalize_domain(&domain).as_deref(),
            Ok(domain.as_str()),
            "not idempotent: {text:?} -> {domain:?}"
        );
        // A normalised domain is a valid mx pattern that covers itself.
        assert_eq!(
            validate_mx_pattern(&domain),
            Ok(()),
            "{domain:?} from {text:?}"
        );
        check_pattern_matches_itself(&domain);
    }

    let (pattern, host) = text.split_once(' ').unwrap_or((&text, ""));
    let matched = mx_pattern_matches(pattern, host);
    // Case and one trailing dot on the host never change the answer.
    let flipped: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    assert_eq!(
        mx_pattern_matches(pattern, &flipped),
        matched,
        "case changes {pattern:?} vs {host:?}"
    );
    if !host.ends_with('.') {
        assert_eq!(
            mx_pattern_matches(pattern, &format!("{host}.")),
            matched,
            "a trailing dot changes {pattern:?} vs {host:?}"
        );
    }
}
