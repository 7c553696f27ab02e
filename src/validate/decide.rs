//! The decision: a pure function from one domain's [`DomainFacts`] to its [`DomainReport`]
//! (outcome, issues, columns), applying spec §2–§4. No I/O, no clock: table tests feed it facts
//! built by hand.

use std::collections::HashSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::facts::{DomainFacts, FetchAttempt, PolicyFacts};
use crate::issues::{Issue, IssueCode, Severity};
use crate::mta_sts::mx::mx_pattern_matches;
use crate::mta_sts::mx_class::classify_uncovered_mx;
use crate::mta_sts::policy::{MAX_ISSUES_PER_CODE, Mode, PolicyParse, parse_policy_bytes};
use crate::mta_sts::record::{StsRecordVerdict, evaluate_sts_records};
use crate::mta_sts::tlsrpt::{TlsRptVerdict, evaluate_tlsrpt_records};
use crate::net::smtp::{MxProbe, MxStatus};
use crate::net::{
    DnsFailure, FetchFailure, FetchOutcome, FetchedPolicy, Lookup, LookupFailure, MxAnswer,
    NameStatus, TxtAnswer,
};
use crate::report::{DomainReport, Outcome};

/// Largest max_age in seconds (RFC 8461 §3.2: "maximum value of 31557600").
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Below this, an enforce policy lapses between weekly fetches (spec §3, `max_age_short`).
pub const MAX_AGE_SHORT_ENFORCE: u64 = 604_800;
/// Below this, a testing policy lapses within a day.
pub const MAX_AGE_SHORT_TESTING: u64 = 86_400;

/// Applies spec §2–§4 to the facts of one domain.
pub fn decide(facts: DomainFacts) -> DomainReport {
    let DomainFacts {
        domain,
        input,
        rank,
        scanned_at,
        duration_ms,
        sts,
        tlsrpt,
        mx,
        policy,
        mx_probes,
    } = facts;
    let mut report = DomainReport::new(domain, input, rank);
    report.scanned_at = scanned_at;
    report.duration_ms = duration_ms;

    let exists = record_mx(&mut report, mx);
    let sts_lookup_failed = match sts {
        Ok(answer) => {
            if exists {
                record_sts(&mut report, answer);
            }
            false
        }
        Err(failure) => {
            lookup_failed(&mut report, Lookup::StsTxt, &failure);
            true
        }
    };
    let mut policy_lookup_failed = false;
    if let Some(policy) = policy {
        policy_lookup_failed = record_policy(&mut report, policy);
    }
    if exists {
        record_tlsrpt(&mut report, tlsrpt);
    }

    // §4: a lookup that decides the verdict and could not be completed makes it inconclusive.
    report.outcome = if sts_lookup_failed || policy_lookup_failed {
        Outcome::Error
    } else if !report.has_mta_sts {
        Outcome::Absent
    } else if report.issues.iter().any(|i| i.code.invalidates_policy()) {
        Outcome::Invalid
    } else {
        Outcome::Valid
    };
    // §7: what each probed MX said, and whether an enforcing sender would deliver at all.
    let refused_by_tls = match mx_probes {
        Some(probes) => record_mx_probes(&mut report, &probes, scanned_at),
        None => Vec::new(),
    };
    let enforced = report.outcome == Outcome::Valid && report.mode == Some(Mode::Enforce);
    report.delivery_at_risk =
        enforced && (!report.mx_uncovered.is_empty() || !refused_by_tls.is_empty());
    // Every MX refused: uncovered by the patterns, or a definite TLS failure. An MX that could
    // not be probed counts neither way, so it keeps the domain out of `delivery_blocked`.
    report.delivery_blocked = enforced
        && !report.mx_hosts.is_empty()
        && report.mx_hosts.iter().all(|host| {
            report.mx_uncovered.contains(host)
                || refused_by_tls
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host.trim_end_matches('.')))
        });
    report
}

/// Spec §7 per-domain effect of the MX probes: columns and codes. Returns the MX hosts an
/// enforcing sender refuses for TLS (definite failures).
fn record_mx_probes(
    report: &mut DomainReport,
    probes: &[std::sync::Arc<MxProbe>],
    now_ms: i64,
) -> Vec<String> {
    report.mx_probed = true;
    // §7: "error in enforce, warning otherwise".
    let severity = if report.mode == Some(Mode::Enforce) {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut refused = Vec::new();
    for probe in probes {
        let host = &probe.host;
        let detail = probe.error.as_deref().unwrap_or("");
        let separator = if detail.is_empty() { "" } else { ": " };
        if probe.status == MxStatus::Valid {
            report.mx_tls_valid.push(host.clone());
            if probe.cert_expiring_soon(now_ms) {
                let days = probe
                    .cert
                    .as_ref()
                    .map_or(0, |cert| (cert.not_after_ms - now_ms).max(0) / 86_400_000);
                report.issues.push(Issue::new(
                    IssueCode::MxCertExpiring,
                    format!("MX host {host}: certificate expires in {days} days"),
                ));
            }
        } else if probe.status.is_definite_failure() {
            report
                .mx_tls_failed
                .push(format!("{host} {}", probe.status.as_str()));
            refused.push(host.clone());
            let code = if probe.status == MxStatus::StarttlsMissing {
                IssueCode::MxStarttlsMissing
            } else {
                IssueCode::MxTlsInvalid
            };
            report.issues.push(Issue::with_severity(
                code,
                severity,
                format!("MX host {host}: {}{separator}{detail}", probe.status),
            ));
        } else {
            report.mx_tls_unknown.push(host.clone());
            report.issues.push(Issue::new(
                IssueCode::MxUnreachable,
                format!(
                    "MX host {host} not probed to a verdict: {}{separator}{detail}",
                    probe.status
                ),
            ));
        }
    }
    refused
}

/// A lookup that could not be completed: the typed fact, the issue, and the `error` text.
fn lookup_failed(report: &mut DomainReport, lookup: Lookup, failure: &DnsFailure) {
    let message = format!("{} lookup failed: {failure}", lookup.label());
    report.add_error(&message);
    report
        .lookup_failures
        .push(LookupFailure::new(lookup, failure));
    report
        .issues
        .push(Issue::new(IssueCode::DnsLookupFailed, message));
}

/// Records the MX set; returns whether the domain exists.
fn record_mx(report: &mut DomainReport, mx: Result<MxAnswer, DnsFailure>) -> bool {
    match mx {
        Ok(answer) if answer.status == NameStatus::NxDomain => {
            report.issues.push(Issue::new(
                IssueCode::DomainNxdomain,
                format!("{} does not exist (NXDOMAIN)", report.domain),
            ));
            false
        }
        Ok(answer) => {
            if answer.is_null_mx() {
                report.issues.push(Issue::new(
                    IssueCode::MxMissing,
                    "null MX (RFC 7505): the domain accepts no mail",
                ));
            } else if answer.hosts.is_empty() {
                report
                    .issues
                    .push(Issue::new(IssueCode::MxMissing, "no MX record"));
            } else {
                // A "." exchange beside real ones is meaningless (RFC 7505 §3): ignore it.
                report.mx_hosts = answer
                    .hosts
                    .into_iter()
                    .map(|(_, host)| host)
                    .filter(|host| !host.is_empty())
                    .collect();
            }
            true
        }
        Err(failure) => {
            lookup_failed(report, Lookup::Mx, &failure);
            // Unknown: carry on as if the domain exists so its record still counts.
            true
        }
    }
}

/// Applies RFC 8461 §3.1 to the `_mta-sts` answer.
fn record_sts(report: &mut DomainReport, answer: TxtAnswer) {
    report.sts_record_cname = answer.cname;
    let candidates: Vec<&str> = answer
        .records
        .iter()
        .map(String::as_str)
        .filter(|record| looks_like_sts(record))
        .collect();
    if !candidates.is_empty() {
        report.sts_record = Some(escape_controls(&candidates.join(" | ")));
    }
    match evaluate_sts_records(answer.records.iter().map(String::as_str)) {
        StsRecordVerdict::Missing => {
            report.issues.push(Issue::new(
                IssueCode::StsRecordMissing,
                format!("no v=STSv1 TXT record at _mta-sts.{}", report.domain),
            ));
        }
        StsRecordVerdict::Valid { id, duplicates, .. } => {
            report.has_mta_sts = true;
            report.sts_id = Some(id);
            for field in duplicates {
                report.issues.push(Issue::new(
                    IssueCode::StsRecordDuplicateField,
                    format!(
                        "field {} repeats an earlier one in the _mta-sts record: ignored, the first counts (RFC 8461 §3.2)",
                        crate::mta_sts::quote(&field)
                    ),
                ));
            }
        }
        StsRecordVerdict::Multiple { count } => {
            report.has_mta_sts = true;
            report.issues.push(Issue::new(
                IssueCode::StsRecordMultiple,
                format!("{count} v=STSv1 records at _mta-sts: senders ignore them all"),
            ));
        }
        StsRecordVerdict::Invalid { issue } => {
            report.has_mta_sts = true;
            report.issues.push(issue);
        }
    }
}

/// Applies the policy host lookup and the fetch (RFC 8461 §3.3), then the body and the
/// cross-checks (§3.2, §4.1). Returns whether the policy host's lookup failed (inconclusive).
fn record_policy(report: &mut DomainReport, policy: PolicyFacts) -> bool {
    let PolicyFacts {
        host,
        probing,
        addresses,
        attempt,
    } = policy;
    let url = format!("https://{host}/.well-known/mta-sts.txt");
    if probing {
        // Without a record only a usable policy is worth a word (`policy_without_record`).
        if let FetchAttempt::Fetched {
            result: Ok(fetched),
            ..
        } = &attempt
            && fetched.status == 200
            && parse_policy_bytes(&fetched.body).is_usable()
        {
            report.policy_url = Some(url);
            report.issues.push(Issue::new(
                IssueCode::PolicyWithoutRecord,
                format!("{host} serves a policy but _mta-sts has no TXT record"),
            ));
        }
        return false;
    }
    report.policy_url = Some(url);
    let answer = match addresses {
        Ok(answer) => answer,
        Err(failure) => {
            report.policy_fetch = Some(FetchOutcome::DnsFailed);
            lookup_failed(report, Lookup::PolicyHost, &failure);
            return true;
        }
    };
    report.policy_host_cname = answer.cname;
    let fetch_failure = |report: &mut DomainReport, outcome, issue: Issue| {
        report.policy_fetch = Some(outcome);
        report.add_error(&issue.message);
        report.issues.push(issue);
    };
    match attempt {
        FetchAttempt::NoAddress => {
            let message = if answer.status == NameStatus::NxDomain {
                format!("{host} does not exist (NXDOMAIN)")
            } else {
                format!("{host} has no A or AAAA record")
            };
            fetch_failure(
                report,
                FetchOutcome::NoAddress,
                Issue::new(IssueCode::PolicyHostUnresolvable, message),
            );
        }
        FetchAttempt::Forbidden => {
            let listed: Vec<String> = answer.addresses.iter().map(ToString::to_string).collect();
            fetch_failure(
                report,
                FetchOutcome::AddressForbidden,
                Issue::new(
                    IssueCode::PolicyAddressForbidden,
                    format!(
                        "{host} resolves only to non-public addresses ({}); not contacted",
                        listed.join(", ")
                    ),
                ),
            );
        }
        FetchAttempt::Fetched {
            result: Err(failure),
            ..
        } => {
            let outcome = failure.outcome();
            fetch_failure(report, outcome, fetch_issue(&host, failure));
        }
        FetchAttempt::Fetched {
            result: Ok(fetched),
            ..
        } => record_fetched(report, fetched),
    }
    false
}

/// An answer from the policy host: status, media type, body, cross-checks.
fn record_fetched(report: &mut DomainReport, fetched: FetchedPolicy) {
    report.policy_http_status = Some(fetched.status);
    report.policy_content_type = fetched.content_type.clone();
    match fetched.status {
        200 => {}
        300..=399 => {
            let location = fetched
                .location
                .as_deref()
                .unwrap_or("(no Location header)");
            let message = format!(
                "policy answered {} redirecting to {location}; senders must not follow redirects",
                fetched.status
            );
            report.policy_fetch = Some(FetchOutcome::Redirect);
            report.add_error(&message);
            report
                .issues
                .push(Issue::new(IssueCode::PolicyRedirect, message));
            return;
        }
        status => {
            let message = format!("policy answered HTTP {status}, not 200");
            report.policy_fetch = Some(FetchOutcome::HttpStatus);
            report.add_error(&message);
            report
                .issues
                .push(Issue::new(IssueCode::PolicyHttpStatus, message));
            return;
        }
    }
    report.policy_fetch = Some(FetchOutcome::Fetched);
    if let Some(problem) = content_type_problem(fetched.content_type.as_deref()) {
        report
            .issues
            .push(Issue::new(IssueCode::PolicyContentType, problem));
    }
    report.policy_sha256 = Some(hex_sha256(&fetched.body));
    record_parsed_policy(report, parse_policy_bytes(&fetched.body));
}

/// RFC 8461 §3.3: the media type SHOULD be `text/plain`; parameters other than `charset` are
/// ignored, and the policy is UTF-8 (§3.2), so a charset must be `utf-8` or its subset `us-ascii`.
pub(crate) fn content_type_problem(content_type: Option<&str>) -> Option<String> {
    let Some(value) = content_type else {
        return Some("policy served without a Content-Type, not text/plain".to_owned());
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    let charset = parts.find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    });
    let media_ok = media.eq_ignore_ascii_case("text/plain");
    let charset_ok = charset.is_none_or(|charset| {
        charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii")
    });
    match (media_ok, charset_ok) {
        (true, true) => None,
        (false, _) => Some(format!("policy served as {value}, not text/plain")),
        (true, false) => Some(format!(
            "policy served with charset {}: the policy is UTF-8 text (RFC 8461 §3.2), declare charset=utf-8 or none",
            charset.unwrap_or_default()
        )),
    }
}

/// Copies the parsed policy into the report and runs the cross-checks.
fn record_parsed_policy(report: &mut DomainReport, parsed: PolicyParse) {
    let PolicyParse { policy, issues } = parsed;
    report.issues.extend(issues);
    report.policy_version = policy.version;
    report.mode = policy.mode;
    report.max_age = policy.max_age;
    report.mx_patterns = policy.mx;
    match report.mode {
        Some(Mode::Testing) => report.issues.push(Issue::new(
            IssueCode::ModeTesting,
            "mode is testing: failures are reported, not enforced",
        )),
        Some(Mode::None) => report.issues.push(Issue::new(
            IssueCode::ModeNone,
            "mode is none: MTA-STS is switched off",
        )),
        _ => {}
    }
    if let (Some(mode), Some(max_age)) = (report.mode, report.max_age) {
        let floor = match mode {
            Mode::Enforce => Some(MAX_AGE_SHORT_ENFORCE),
            Mode::Testing => Some(MAX_AGE_SHORT_TESTING),
            Mode::None => None,
        };
        if let Some(floor) = floor.filter(|floor| max_age < *floor) {
            report.issues.push(Issue::new(
                IssueCode::MaxAgeShort,
                format!(
                    "max_age {max_age} is below {floor} for {} mode",
                    mode.as_str()
                ),
            ));
        }
    }
    cross_check_mx(report);
}

/// §4.1: every MX host must match a pattern, or MTA-STS senders will not deliver to it.
fn cross_check_mx(report: &mut DomainReport) {
    let severity = match report.mode {
        Some(Mode::Enforce) => Severity::Error,
        Some(Mode::Testing) => Severity::Warning,
        _ => return,
    };
    if report.mx_patterns.is_empty() || report.mx_hosts.is_empty() {
        return;
    }
    report.mx_uncovered = report
        .mx_hosts
        .iter()
        .filter(|host| {
            !report
                .mx_patterns
                .iter()
                .any(|pattern| mx_pattern_matches(pattern, host))
        })
        .cloned()
        .collect();
    report.mx_uncovered_class = report
        .mx_uncovered
        .iter()
        .map(|host| classify_uncovered_mx(host, &report.mx_patterns))
        .collect();
    for host in &report.mx_uncovered {
        report.issues.push(Issue::with_severity(
            IssueCode::MxNotCovered,
            severity,
            format!("MX host {host} matches no mx pattern of the policy"),
        ));
    }
    // A pattern is used when it matches an MX host. Patterns are few in real policies, but a
    // 64 KiB policy can hold thousands: both kinds are looked up in sets (linear overall), and
    // the issue list is capped like the parser's.
    let normal = |name: &str| name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let hosts: HashSet<String> = report.mx_hosts.iter().map(|h| normal(h)).collect();
    // `*.S` matches one non-empty label followed by `.S`: the parents `S` of the MX hosts.
    let parents: HashSet<&str> = hosts
        .iter()
        .filter_map(|host| host.split_once('.'))
        .filter(|(label, rest)| !label.is_empty() && !rest.is_empty())
        .map(|(_, rest)| rest)
        .collect();
    let mut unused = 0usize;
    for pattern in &report.mx_patterns {
        let pattern_normal = normal(pattern);
        let used = match pattern_normal.strip_prefix("*.") {
            Some(suffix) => parents.contains(suffix),
            None => hosts.contains(&pattern_normal),
        };
        if used {
            continue;
        }
        unused += 1;
        if unused <= MAX_ISSUES_PER_CODE {
            report.issues.push(Issue::new(
                IssueCode::MxPatternUnused,
                format!("mx pattern {pattern} matches no MX host"),
            ));
        }
    }
    if unused > MAX_ISSUES_PER_CODE {
        report.issues.push(Issue::new(
            IssueCode::MxPatternUnused,
            format!(
                "and {} more mx_pattern_unused issues not listed",
                unused - MAX_ISSUES_PER_CODE
            ),
        ));
    }
}

/// Applies RFC 8460 §3 to the `_smtp._tls` answer.
fn record_tlsrpt(report: &mut DomainReport, answer: Result<TxtAnswer, DnsFailure>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(failure) => {
            lookup_failed(report, Lookup::TlsRptTxt, &failure);
            return;
        }
    };
    match evaluate_tlsrpt_records(answer.records.iter().map(String::as_str)) {
        TlsRptVerdict::Missing => {
            let severity = if report.has_mta_sts {
                Severity::Warning
            } else {
                Severity::Info
            };
            report.issues.push(Issue::with_severity(
                IssueCode::TlsrptMissing,
                severity,
                format!("no v=TLSRPTv1 TXT record at _smtp._tls.{}", report.domain),
            ));
        }
        TlsRptVerdict::Valid { rua, record } => {
            report.tls_rpt = true;
            report.tls_rpt_rua = rua;
            report.tls_rpt_record = Some(record);
        }
        TlsRptVerdict::Multiple { count } => report.issues.push(Issue::new(
            IssueCode::TlsrptMultiple,
            format!("{count} v=TLSRPTv1 records at _smtp._tls: reporters ignore them all"),
        )),
        TlsRptVerdict::Invalid { issue } => report.issues.push(issue),
    }
}

/// A TXT string that begins like an MTA-STS record (for the raw `sts_record` column).
fn looks_like_sts(record: &str) -> bool {
    let lowered = record.trim_start().get(..7).map(str::to_ascii_lowercase);
    lowered.as_deref() == Some("v=stsv1") || record.contains("v=STSv1")
}

/// Raw DNS text with control characters written as `\xNN`: TXT data is arbitrary bytes, and a
/// raw newline would break a CSV record across lines.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(escaped, "\\x{:02x}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn fetch_issue(host: &str, failure: FetchFailure) -> Issue {
    match failure {
        FetchFailure::Connect(cause) => Issue::new(
            IssueCode::PolicyConnectFailed,
            format!("cannot connect to {host}: {cause}"),
        ),
        FetchFailure::Tls(cause) => {
            Issue::new(IssueCode::PolicyTlsInvalid, format!("{host}: {cause}"))
        }
        FetchFailure::Timeout(stage, cause) => Issue::new(
            IssueCode::PolicyTimeout,
            format!("{host}: {} timeout: {cause}", stage.as_str()),
        ),
        FetchFailure::TooLarge { cap } => Issue::new(
            IssueCode::PolicyTooLarge,
            format!("{host}: policy body larger than {cap} bytes"),
        ),
        FetchFailure::Protocol(cause) => Issue::new(
            IssueCode::PolicyHttpStatus,
            format!("{host}: broken HTTP answer: {cause}"),
        ),
    }
}

fn hex_sha256(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut text = String::with_capacity(64);
    for byte in digest {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    //! Socket-free table tests of the decision: one row per spec code and outcome rule, with
    //! facts built by hand.

    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::net::{AddressAnswer, FetchStage};

    const ENFORCE: &str =
        "version: STSv1\nmode: enforce\nmx: mx1.d.test\nmx: *.d.test\nmax_age: 604800\n";

    fn txt(records: &[&str]) -> Result<TxtAnswer, DnsFailure> {
        Ok(TxtAnswer {
            status: NameStatus::Exists,
            records: records.iter().map(|r| (*r).to_owned()).collect(),
            cname: None,
        })
    }

    fn served(status: u16, content_type: &str, body: &[u8]) -> FetchAttempt {
        FetchAttempt::Fetched {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            result: Ok(FetchedPolicy {
                status,
                content_type: Some(content_type.to_owned()),
                location: (300..400)
                    .contains(&status)
                    .then(|| "https://elsewhere.test/".to_owned()),
                body: body.to_vec(),
            }),
        }
    }

    fn failed(failure: FetchFailure) -> FetchAttempt {
        FetchAttempt::Fetched {
            addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
            result: Err(failure),
        }
    }

    fn addresses(list: &[IpAddr]) -> Result<AddressAnswer, DnsFailure> {
        Ok(AddressAnswer {
            status: NameStatus::Exists,
            addresses: list.to_vec(),
            cname: None,
        })
    }

    /// A valid, enforced, reported domain `d.test` with MX `mx1.d.test`, `mx2.d.test`.
    fn base() -> DomainFacts {
        DomainFacts {
            domain: "d.test".into(),
            input: "d.test".into(),
            rank: None,
            scanned_at: 1,
            duration_ms: 2,
            sts: txt(&["v=STSv1; id=1"]),
            tlsrpt: txt(&["v=TLSRPTv1; rua=mailto:r@d.test"]),
            mx: Ok(MxAnswer {
                status: NameStatus::Exists,
                hosts: vec![(10, "mx1.d.test".into()), (20, "mx2.d.test".into())],
            }),
            policy: Some(PolicyFacts {
                host: "mta-sts.d.test".into(),
                probing: false,
                addresses: addresses(&[IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]),
                attempt: served(200, "text/plain", ENFORCE.as_bytes()),
            }),
            mx_probes: None,
        }
    }

    fn with_policy(change: impl FnOnce(&mut PolicyFacts)) -> DomainFacts {
        let mut facts = base();
        if let Some(policy) = facts.policy.as_mut() {
            change(policy);
        }
        facts
    }

    fn with_body(body: &str) -> DomainFacts {
        with_policy(|p| p.attempt = served(200, "text/plain", body.as_bytes()))
    }

    type Row = (&'static str, DomainFacts, Outcome, &'static [IssueCode]);

    #[test]
    fn outcome_and_codes_per_spec_rule() {
        use IssueCode::*;
        let nx_mx = Ok(MxAnswer {
            status: NameStatus::NxDomain,
            hosts: vec![],
        });
        let rows: Vec<Row> = vec![
            ("valid enforce", base(), Outcome::Valid, &[]),
            // §4 absent / nxdomain / mx
            (
                "no record",
                DomainFacts {
                    sts: txt(&["v=spf1 -all"]),
                    policy: None,
                    ..base()
                },
                Outcome::Absent,
                &[StsRecordMissing],
            ),
            (
                "nxdomain",
                DomainFacts {
                    mx: nx_mx,
                    policy: None,
                    ..base()
                },
                Outcome::Absent,
                &[DomainNxdomain],
            ),
            (
                "no mx",
                DomainFacts {
                    mx: Ok(MxAnswer {
                        status: NameStatus::Exists,
                        hosts: vec![],
                    }),
                    ..base()
                },
                Outcome::Valid,
                &[MxMissing],
            ),
            // §4 error: the _mta-sts lookup, or the policy host's, failed
            (
                "sts servfail",
                DomainFacts {
                    sts: Err(DnsFailure::ServFail),
                    policy: None,
                    ..base()
                },
                Outcome::Error,
                &[DnsLookupFailed],
            ),
            (
                "policy host timeout",
                with_policy(|p| {
                    p.addresses = Err(DnsFailure::Timeout);
                    p.attempt = FetchAttempt::NoAddress;
                }),
                Outcome::Error,
                &[DnsLookupFailed],
            ),
            (
                "mx refused: not the verdict's lookup",
                DomainFacts {
                    mx: Err(DnsFailure::Refused),
                    ..base()
                },
                Outcome::Valid,
                &[DnsLookupFailed],
            ),
            // §2 record rules
            (
                "multiple",
                DomainFacts {
                    sts: txt(&["v=STSv1; id=1", "v=STSv1; id=2"]),
                    ..base()
                },
                Outcome::Invalid,
                &[StsRecordMultiple],
            ),
            (
                "trailing whitespace",
                DomainFacts {
                    sts: txt(&["v=STSv1; id=1 "]),
                    ..base()
                },
                Outcome::Invalid,
                &[StsRecordSyntax],
            ),
            (
                "bad id",
                DomainFacts {
                    sts: txt(&["v=STSv1; id=a-b"]),
                    ..base()
                },
                Outcome::Invalid,
                &[StsRecordIdInvalid],
            ),
            (
                "duplicate field",
                DomainFacts {
                    sts: txt(&["v=STSv1; id=1; id=2"]),
                    ..base()
                },
                Outcome::Valid,
                &[StsRecordDuplicateField],
            ),
            // §3.3 fetch
            (
                "no address",
                with_policy(|p| {
                    p.addresses = addresses(&[]);
                    p.attempt = FetchAttempt::NoAddress;
                }),
                Outcome::Invalid,
                &[PolicyHostUnresolvable],
            ),
            (
                "forbidden",
                with_policy(|p| {
                    p.addresses = addresses(&[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]);
                    p.attempt = FetchAttempt::Forbidden;
                }),
                Outcome::Invalid,
                &[PolicyAddressForbidden],
            ),
            (
                "refused",
                with_policy(|p| p.attempt = failed(FetchFailure::Connect("refused".into()))),
                Outcome::Invalid,
                &[PolicyConnectFailed],
            ),
            (
                "tls",
                with_policy(|p| p.attempt = failed(FetchFailure::Tls("expired".into()))),
                Outcome::Invalid,
                &[PolicyTlsInvalid],
            ),
            (
                "timeout",
                with_policy(|p| {
                    p.attempt = failed(FetchFailure::Timeout(FetchStage::Http, "slow".into()))
                }),
                Outcome::Invalid,
                &[PolicyTimeout],
            ),
            (
                "too large",
                with_policy(|p| p.attempt = failed(FetchFailure::TooLarge { cap: 10 })),
                Outcome::Invalid,
                &[PolicyTooLarge],
            ),
            (
                "redirect",
                with_policy(|p| p.attempt = served(301, "text/html", b"")),
                Outcome::Invalid,
                &[PolicyRedirect],
            ),
            (
                "404",
                with_policy(|p| p.attempt = served(404, "text/html", b"")),
                Outcome::Invalid,
                &[PolicyHttpStatus],
            ),
            (
                "content type",
                with_policy(|p| p.attempt = served(200, "text/html", ENFORCE.as_bytes())),
                Outcome::Valid,
                &[PolicyContentType],
            ),
            (
                "charset",
                with_policy(|p| {
                    p.attempt = served(
                        200,
                        "text/plain; charset=\"windows-1252\"",
                        ENFORCE.as_bytes(),
                    )
                }),
                Outcome::Valid,
                &[PolicyContentType],
            ),
            // §3.2 body
            (
                "bom",
                with_body(&format!("\u{feff}{ENFORCE}")),
                Outcome::Valid,
                &[PolicyBom],
            ),
            (
                "syntax",
                with_body("version: STSv1\nmode enforce\n"),
                Outcome::Invalid,
                &[PolicySyntax],
            ),
            (
                "version",
                with_body("version: STSv2\nmode: enforce\nmx: *.d.test\nmax_age: 604800\n"),
                Outcome::Invalid,
                &[PolicyVersionInvalid],
            ),
            (
                "mode",
                with_body("version: STSv1\nmode: on\nmx: *.d.test\nmax_age: 604800\n"),
                Outcome::Invalid,
                &[PolicyModeInvalid],
            ),
            (
                "max_age",
                with_body("version: STSv1\nmode: enforce\nmx: *.d.test\nmax_age: 99999999999\n"),
                Outcome::Invalid,
                &[PolicyMaxAgeInvalid],
            ),
            (
                "no mx",
                with_body("version: STSv1\nmode: enforce\nmax_age: 604800\n"),
                Outcome::Invalid,
                &[PolicyMxMissing],
            ),
            (
                "bad mx",
                with_body("version: STSv1\nmode: enforce\nmx: a@d.test\nmax_age: 604800\n"),
                Outcome::Invalid,
                &[PolicyMxInvalid],
            ),
            (
                "duplicate policy field",
                with_body(&format!("{ENFORCE}mode: testing\n")),
                Outcome::Valid,
                &[PolicyDuplicateField],
            ),
            (
                "unknown field",
                with_body(&format!("{ENFORCE}colour: blue\n")),
                Outcome::Valid,
                &[PolicyUnknownField],
            ),
            (
                "version late",
                with_body("mode: enforce\nversion: STSv1\nmx: *.d.test\nmax_age: 604800\n"),
                Outcome::Valid,
                &[PolicyVersionNotFirst],
            ),
            // §4.1 cross-check, modes
            (
                "uncovered",
                with_body("version: STSv1\nmode: enforce\nmx: mx1.d.test\nmax_age: 604800\n"),
                Outcome::Valid,
                &[MxNotCovered],
            ),
            (
                "unused",
                with_body(&format!("{ENFORCE}mx: old.example.net\n")),
                Outcome::Valid,
                &[MxPatternUnused],
            ),
            (
                "short",
                with_body("version: STSv1\nmode: enforce\nmx: *.d.test\nmax_age: 3600\n"),
                Outcome::Valid,
                &[MaxAgeShort],
            ),
            (
                "testing",
                with_body("version: STSv1\nmode: testing\nmx: *.d.test\nmax_age: 604800\n"),
                Outcome::Valid,
                &[ModeTesting],
            ),
            (
                "none",
                with_body("version: STSv1\nmode: none\nmax_age: 604800\n"),
                Outcome::Valid,
                &[ModeNone],
            ),
            // RFC 8460
            (
                "tlsrpt missing",
                DomainFacts {
                    tlsrpt: txt(&[]),
                    ..base()
                },
                Outcome::Valid,
                &[TlsrptMissing],
            ),
            (
                "tlsrpt multiple",
                DomainFacts {
                    tlsrpt: txt(&[
                        "v=TLSRPTv1; rua=mailto:a@b.c",
                        "v=TLSRPTv1; rua=mailto:d@e.f",
                    ]),
                    ..base()
                },
                Outcome::Valid,
                &[TlsrptMultiple],
            ),
            (
                "tlsrpt invalid",
                DomainFacts {
                    tlsrpt: txt(&["v=TLSRPTv1; rua=mailto:a@b.c;;"]),
                    ..base()
                },
                Outcome::Valid,
                &[TlsrptInvalid],
            ),
            (
                "policy without record",
                DomainFacts {
                    sts: txt(&[]),
                    policy: base().policy.map(|p| PolicyFacts { probing: true, ..p }),
                    ..base()
                },
                Outcome::Absent,
                &[StsRecordMissing, PolicyWithoutRecord],
            ),
        ];
        for (name, facts, outcome, codes) in rows {
            let report = decide(facts);
            assert_eq!(report.outcome, outcome, "{name}: {:#?}", report.issues);
            for code in codes {
                assert!(
                    report.has_issue(*code),
                    "{name}: no {code} in {:#?}",
                    report.issues
                );
            }
            if codes.is_empty() {
                assert_eq!(
                    report.severity(),
                    Severity::None,
                    "{name}: {:#?}",
                    report.issues
                );
            }
        }
    }

    #[test]
    fn typed_facts_follow_the_lookups() {
        let report = decide(with_policy(|p| {
            p.addresses = Err(DnsFailure::Refused);
            p.attempt = FetchAttempt::NoAddress;
        }));
        assert_eq!(report.policy_fetch, Some(FetchOutcome::DnsFailed));
        assert_eq!(
            report.lookup_failures,
            [LookupFailure {
                lookup: Lookup::PolicyHost,
                kind: crate::net::DnsFailureKind::Refused
            }]
        );
        assert!(!report.has_issue(IssueCode::PolicyHostUnresolvable));

        let report = decide(base());
        assert_eq!(report.policy_fetch, Some(FetchOutcome::Fetched));
        assert!(report.lookup_failures.is_empty());
        assert_eq!(report.tls_rpt_rua, ["mailto:r@d.test"]);

        let report = decide(with_policy(|p| p.attempt = served(302, "text/html", b"")));
        assert_eq!(report.policy_fetch, Some(FetchOutcome::Redirect));
    }

    #[test]
    fn a_second_error_cause_is_appended() {
        let facts = DomainFacts {
            mx: Err(DnsFailure::ServFail),
            ..with_policy(|p| p.attempt = served(404, "text/html", b""))
        };
        let error = decide(facts).error.unwrap_or_default();
        assert!(error.contains("MX lookup failed"), "{error}");
        assert!(error.contains("HTTP 404"), "{error}");
    }

    #[test]
    fn delivery_at_risk_needs_a_valid_enforced_policy_with_an_uncovered_mx() {
        let uncovered = "version: STSv1\nmode: enforce\nmx: mx1.d.test\nmax_age: 604800\n";
        assert!(decide(with_body(uncovered)).delivery_at_risk);
        assert!(!decide(base()).delivery_at_risk);
        let testing = uncovered.replace("enforce", "testing");
        assert!(!decide(with_body(&testing)).delivery_at_risk);
    }

    #[test]
    fn unused_patterns_are_capped_and_linear() {
        let mut body =
            String::from("version: STSv1\nmode: enforce\nmx: *.d.test\nmax_age: 604800\n");
        for n in 0..5000 {
            body.push_str(&format!("mx: host{n}.example.net\n"));
        }
        let report = decide(with_body(&body));
        let unused = report
            .issues
            .iter()
            .filter(|i| i.code == IssueCode::MxPatternUnused)
            .count();
        assert_eq!(unused, MAX_ISSUES_PER_CODE + 1, "listed plus one summary");
        assert!(
            report
                .issues
                .iter()
                .any(|i| i.message.contains("4997 more")),
            "{:?}",
            report.issues.last()
        );
    }
}
