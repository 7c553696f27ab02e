//! The per-domain validator: runs the lookups of spec §1 through the network traits, applies the
//! rules of §2 with the pure parsers, and fills one [`DomainReport`] with outcome and issues.

use std::fmt::Write as _;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::issues::{Issue, IssueCode, Severity};
use crate::mta_sts::mx::mx_pattern_matches;
use crate::mta_sts::policy::{Mode, PolicyParse, parse_policy_bytes};
use crate::mta_sts::record::{StsRecordVerdict, evaluate_sts_records};
use crate::mta_sts::tlsrpt::{TlsRptVerdict, evaluate_tlsrpt_records};
use crate::net::address::AddressPolicy;
use crate::net::{Dns, DnsFailure, FetchFailure, FetchStage, NameStatus, PolicyFetch, TxtAnswer};
use crate::report::{DomainReport, Outcome, now_millis};

/// Largest max_age in seconds (RFC 8461 §3.2: "maximum value of 31557600").
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// Below this, an enforce policy lapses between weekly fetches (spec §3, `max_age_short`).
pub const MAX_AGE_SHORT_ENFORCE: u64 = 604_800;
/// Below this, a testing policy lapses within a day.
pub const MAX_AGE_SHORT_TESTING: u64 = 86_400;

/// What the validator may do, beyond the lookups every domain gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationSettings {
    /// Which addresses the policy fetch may connect to.
    pub address_policy: AddressPolicy,
    /// Fetch the policy even without a TXT record (to find `policy_without_record`).
    pub probe_policy: bool,
}

/// Validates domains with one DNS and one HTTPS implementation.
pub struct Validator<D, F> {
    dns: D,
    fetcher: F,
    settings: ValidationSettings,
}

impl<D: Dns, F: PolicyFetch> Validator<D, F> {
    pub fn new(dns: D, fetcher: F, settings: ValidationSettings) -> Self {
        Validator {
            dns,
            fetcher,
            settings,
        }
    }

    /// Validates one input value: normalises it, then checks the domain.
    pub async fn check_input(&self, input: &str, rank: Option<i64>) -> DomainReport {
        match crate::domain::normalize_domain(input) {
            Ok(domain) => self.check_domain(domain, input.to_owned(), rank).await,
            Err(error) => DomainReport::input_error(input.to_owned(), rank, error.to_string()),
        }
    }

    /// Checks a normalised domain (spec §1–§4).
    pub async fn check_domain(
        &self,
        domain: String,
        input: String,
        rank: Option<i64>,
    ) -> DomainReport {
        let started = Instant::now();
        let scanned_at = now_millis();
        let sts_name = format!("_mta-sts.{domain}");
        let tlsrpt_name = format!("_smtp._tls.{domain}");
        // §1: the three lookups are independent.
        let (sts, tlsrpt, mx) = tokio::join!(
            self.dns.txt(&sts_name),
            self.dns.txt(&tlsrpt_name),
            self.dns.mx(&domain)
        );
        let mut report = DomainReport::new(domain, input, rank);
        report.scanned_at = scanned_at;

        let exists = self.apply_mx(&mut report, mx);
        let sts_lookup_failed = sts.is_err();
        let policy_wanted = match sts {
            Ok(answer) if exists => self.apply_sts_record(&mut report, answer),
            Ok(_) => false,
            Err(failure) => {
                let message = format!("_mta-sts TXT lookup failed: {failure}");
                report.add_error(&message);
                report
                    .issues
                    .push(Issue::new(IssueCode::DnsLookupFailed, message));
                false
            }
        };
        if policy_wanted || (exists && self.settings.probe_policy && !sts_lookup_failed) {
            self.apply_policy(&mut report).await;
        }
        if exists {
            self.apply_tlsrpt(&mut report, tlsrpt);
        }

        report.outcome = if sts_lookup_failed {
            Outcome::Error
        } else if !report.has_mta_sts {
            Outcome::Absent
        } else if report.issues.iter().any(|i| i.code.invalidates_policy()) {
            Outcome::Invalid
        } else {
            Outcome::Valid
        };
        report.delivery_at_risk = report.outcome == Outcome::Valid
            && report.mode == Some(Mode::Enforce)
            && !report.mx_uncovered.is_empty();
        report.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        report
    }

    /// Records the MX set; returns whether the domain exists.
    fn apply_mx(
        &self,
        report: &mut DomainReport,
        mx: Result<crate::net::MxAnswer, DnsFailure>,
    ) -> bool {
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
                let message = format!("MX lookup failed: {failure}");
                report.add_error(&message);
                report
                    .issues
                    .push(Issue::new(IssueCode::DnsLookupFailed, message));
                // Unknown: carry on as if the domain exists so its record still counts.
                true
            }
        }
    }

    /// Applies RFC 8461 §3.1; returns whether a policy fetch is warranted.
    fn apply_sts_record(&self, report: &mut DomainReport, answer: TxtAnswer) -> bool {
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
                false
            }
            StsRecordVerdict::Valid { id, .. } => {
                report.has_mta_sts = true;
                report.sts_id = Some(id);
                true
            }
            StsRecordVerdict::Multiple { count } => {
                report.has_mta_sts = true;
                report.issues.push(Issue::new(
                    IssueCode::StsRecordMultiple,
                    format!("{count} v=STSv1 records at _mta-sts: senders ignore them all"),
                ));
                true
            }
            StsRecordVerdict::Invalid { issue } => {
                report.has_mta_sts = true;
                report.issues.push(issue);
                true
            }
        }
    }

    /// Fetches and checks the policy (RFC 8461 §3.2, §3.3, §4.1).
    async fn apply_policy(&self, report: &mut DomainReport) {
        let probing = !report.has_mta_sts;
        let host = format!("mta-sts.{}", report.domain);
        if !probing {
            report.policy_url = Some(format!("https://{host}/.well-known/mta-sts.txt"));
        }
        let fetched = match self.resolve_and_fetch(&host, report).await {
            Ok(fetched) => fetched,
            Err(issue) => {
                if !probing {
                    report.add_error(&issue.message);
                    report.issues.push(issue);
                }
                return;
            }
        };
        if probing {
            if fetched.status == 200 && parse_policy_bytes(&fetched.body).is_usable() {
                report.policy_url = Some(format!("https://{host}/.well-known/mta-sts.txt"));
                report.issues.push(Issue::new(
                    IssueCode::PolicyWithoutRecord,
                    format!("{host} serves a policy but _mta-sts has no TXT record"),
                ));
            }
            return;
        }
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
                report.error = Some(message.clone());
                report
                    .issues
                    .push(Issue::new(IssueCode::PolicyRedirect, message));
                return;
            }
            status => {
                let message = format!("policy answered HTTP {status}, not 200");
                report.error = Some(message.clone());
                report
                    .issues
                    .push(Issue::new(IssueCode::PolicyHttpStatus, message));
                return;
            }
        }
        // §3.3: the media type SHOULD be text/plain; parameters other than charset are ignored.
        let media_type = fetched
            .content_type
            .as_deref()
            .map(|value| value.split(';').next().unwrap_or("").trim());
        if !media_type.is_some_and(|media| media.eq_ignore_ascii_case("text/plain")) {
            report.issues.push(Issue::new(
                IssueCode::PolicyContentType,
                format!(
                    "policy served as {}, not text/plain",
                    fetched
                        .content_type
                        .as_deref()
                        .unwrap_or("(no Content-Type)")
                ),
            ));
        }
        report.policy_sha256 = Some(hex_sha256(&fetched.body));
        let parsed = parse_policy_bytes(&fetched.body);
        self.apply_parsed_policy(report, parsed);
    }

    /// Resolves the policy host, applies the address policy, and fetches.
    async fn resolve_and_fetch(
        &self,
        host: &str,
        report: &mut DomainReport,
    ) -> Result<crate::net::FetchedPolicy, Issue> {
        let answer = self.dns.addresses(host).await.map_err(|failure| {
            Issue::new(
                IssueCode::PolicyHostUnresolvable,
                format!("address lookup of {host} failed: {failure}"),
            )
        })?;
        report.policy_host_cname = answer.cname;
        if answer.addresses.is_empty() {
            return Err(Issue::new(
                IssueCode::PolicyHostUnresolvable,
                format!("{host} has no A or AAAA record"),
            ));
        }
        let permitted: Vec<_> = answer
            .addresses
            .iter()
            .copied()
            .filter(|address| self.settings.address_policy.permits(*address))
            .collect();
        if permitted.is_empty() {
            let listed: Vec<String> = answer.addresses.iter().map(ToString::to_string).collect();
            return Err(Issue::new(
                IssueCode::PolicyAddressForbidden,
                format!(
                    "{host} resolves only to non-public addresses ({}); not contacted",
                    listed.join(", ")
                ),
            ));
        }
        self.fetcher
            .fetch(host, &permitted)
            .await
            .map_err(|failure| fetch_issue(host, failure))
    }

    /// Copies the parsed policy into the report and runs the cross-checks.
    fn apply_parsed_policy(&self, report: &mut DomainReport, parsed: PolicyParse) {
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
        // §4.1: every MX host must match a pattern, or MTA-STS senders will not deliver to it.
        let checked_mode = match report.mode {
            Some(Mode::Enforce) => Some(Severity::Error),
            Some(Mode::Testing) => Some(Severity::Warning),
            _ => None,
        };
        if let Some(severity) = checked_mode
            && !report.mx_patterns.is_empty()
            && !report.mx_hosts.is_empty()
        {
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
            for host in &report.mx_uncovered {
                report.issues.push(Issue::with_severity(
                    IssueCode::MxNotCovered,
                    severity,
                    format!("MX host {host} matches no mx pattern of the policy"),
                ));
            }
            for pattern in &report.mx_patterns {
                if !report
                    .mx_hosts
                    .iter()
                    .any(|host| mx_pattern_matches(pattern, host))
                {
                    report.issues.push(Issue::new(
                        IssueCode::MxPatternUnused,
                        format!("mx pattern {pattern} matches no MX host"),
                    ));
                }
            }
        }
    }

    /// Applies RFC 8460 §3 to the `_smtp._tls` answer.
    fn apply_tlsrpt(&self, report: &mut DomainReport, answer: Result<TxtAnswer, DnsFailure>) {
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                let message = format!("_smtp._tls TXT lookup failed: {failure}");
                report.add_error(&message);
                report
                    .issues
                    .push(Issue::new(IssueCode::DnsLookupFailed, message));
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
            TlsRptVerdict::Valid { rua } => {
                report.tls_rpt = true;
                report.tls_rpt_rua = rua;
                report.tls_rpt_record = answer
                    .records
                    .into_iter()
                    .find(|record| record.starts_with("v=TLSRPTv1"));
            }
            TlsRptVerdict::Multiple { count } => report.issues.push(Issue::new(
                IssueCode::TlsrptMultiple,
                format!("{count} v=TLSRPTv1 records at _smtp._tls: reporters ignore them all"),
            )),
            TlsRptVerdict::Invalid { issue } => report.issues.push(issue),
        }
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
            format!(
                "{host}: {} timeout: {cause}",
                match stage {
                    FetchStage::Connect => "connect/TLS",
                    FetchStage::Tls => "TLS",
                    FetchStage::Http => "response",
                }
            ),
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
