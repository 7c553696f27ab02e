//! The per-domain result: every column of spec §5, the outcome of §4, and the JSON shape of
//! `check --json` (the hosted endpoint's field names from the seeds, plus our columns).

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::issues::{Issue, IssueCode, Severity};
use crate::mta_sts::mx_class::MxMismatchClass;
use crate::mta_sts::policy::Mode;
use crate::net::{FetchOutcome, Lookup, LookupFailure};

/// The verdict for one domain (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Valid,
    Invalid,
    Absent,
    Error,
    InputError,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Valid,
        Outcome::Invalid,
        Outcome::Absent,
        Outcome::Error,
        Outcome::InputError,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Absent => "absent",
            Outcome::Error => "error",
            Outcome::InputError => "input_error",
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything we learned about one input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    /// Normalised A-label form (empty when the input was not a domain).
    pub domain: String,
    /// The value as read.
    pub input: String,
    pub rank: Option<i64>,
    pub outcome: Outcome,
    pub has_mta_sts: bool,
    pub sts_id: Option<String>,
    /// Raw `v=STSv1` record(s), joined with " | " when there are several.
    pub sts_record: Option<String>,
    pub policy_url: Option<String>,
    pub sts_record_cname: Option<String>,
    pub policy_host_cname: Option<String>,
    pub policy_http_status: Option<u16>,
    pub policy_content_type: Option<String>,
    pub policy_sha256: Option<String>,
    /// `version` as the policy wrote it (JSON only).
    pub policy_version: Option<String>,
    pub mode: Option<Mode>,
    pub max_age: Option<u64>,
    pub mx_patterns: Vec<String>,
    pub mx_hosts: Vec<String>,
    pub mx_uncovered: Vec<String>,
    pub delivery_at_risk: bool,
    pub tls_rpt: bool,
    pub tls_rpt_rua: Vec<String>,
    /// The raw TLS-RPT record (JSON only).
    pub tls_rpt_record: Option<String>,
    pub issues: Vec<Issue>,
    /// Human-readable causes, for people only: statistics read the typed facts below.
    pub error: Option<String>,
    /// Lookups that could not be completed (spec §4), typed.
    pub lookup_failures: Vec<LookupFailure>,
    /// How far the policy fetch got, for domains with a record (`None`: not attempted).
    pub policy_fetch: Option<FetchOutcome>,
    /// Spec §7: the MX probe ran for this domain (`--probe-mx`).
    pub mx_probed: bool,
    /// MX hosts whose probe status is `valid`.
    pub mx_tls_valid: Vec<String>,
    /// `host status` for MX hosts with a definite TLS failure (an enforcing sender refuses them).
    pub mx_tls_failed: Vec<String>,
    /// MX hosts that could not be probed (`unreachable`, `forbidden_address`).
    pub mx_tls_unknown: Vec<String>,
    /// The IMC 2025 mismatch class of each `mx_uncovered` host, aligned with it.
    pub mx_uncovered_class: Vec<MxMismatchClass>,
    /// Valid, enforced, and every MX refused: MTA-STS senders cannot deliver at all.
    pub delivery_blocked: bool,
    /// Milliseconds since the Unix epoch, UTC.
    pub scanned_at: i64,
    pub duration_ms: i64,
}

impl DomainReport {
    /// An empty report for `domain`, to be filled in by the validator.
    pub fn new(domain: String, input: String, rank: Option<i64>) -> Self {
        DomainReport {
            domain,
            input,
            rank,
            outcome: Outcome::Absent,
            has_mta_sts: false,
            sts_id: None,
            sts_record: None,
            policy_url: None,
            sts_record_cname: None,
            policy_host_cname: None,
            policy_http_status: None,
            policy_content_type: None,
            policy_sha256: None,
            policy_version: None,
            mode: None,
            max_age: None,
            mx_patterns: Vec::new(),
            mx_hosts: Vec::new(),
            mx_uncovered: Vec::new(),
            delivery_at_risk: false,
            tls_rpt: false,
            tls_rpt_rua: Vec::new(),
            tls_rpt_record: None,
            issues: Vec::new(),
            error: None,
            lookup_failures: Vec::new(),
            policy_fetch: None,
            mx_probed: false,
            mx_tls_valid: Vec::new(),
            mx_tls_failed: Vec::new(),
            mx_tls_unknown: Vec::new(),
            mx_uncovered_class: Vec::new(),
            delivery_blocked: false,
            scanned_at: 0,
            duration_ms: 0,
        }
    }

    /// The row for an input value that is not a domain name.
    pub fn input_error(input: String, rank: Option<i64>, message: String) -> Self {
        let mut report = DomainReport::new(String::new(), input, rank);
        report.outcome = Outcome::InputError;
        report
            .issues
            .push(Issue::new(IssueCode::InputInvalidDomain, message.clone()));
        report.error = Some(message);
        report.scanned_at = now_millis();
        report
    }

    /// The worst severity among the issues (`none` without issues).
    pub fn severity(&self) -> Severity {
        self.issues
            .iter()
            .map(|issue| issue.severity)
            .max()
            .unwrap_or(Severity::None)
    }

    /// Adds a cause to the `error` column (several causes are joined with "; ").
    pub fn add_error(&mut self, cause: &str) {
        match &mut self.error {
            Some(error) => {
                error.push_str("; ");
                error.push_str(cause);
            }
            None => self.error = Some(cause.to_owned()),
        }
    }

    /// Whether `lookup` could not be completed.
    pub fn lookup_failed(&self, lookup: Lookup) -> bool {
        self.lookup_failures.iter().any(|f| f.lookup == lookup)
    }

    pub fn has_issue(&self, code: IssueCode) -> bool {
        self.issues.iter().any(|issue| issue.code == code)
    }

    /// Plain sentences derived from the issues, without repeats, worst first.
    pub fn recommendations(&self) -> Vec<&'static str> {
        let mut ordered: Vec<&Issue> = self.issues.iter().collect();
        ordered.sort_by_key(|issue| std::cmp::Reverse(issue.severity));
        let receives_mail = !self.mx_hosts.is_empty();
        let mut sentences: Vec<&'static str> = Vec::new();
        for issue in ordered {
            // Advice to publish MTA-STS or TLS-RPT is for domains that receive mail.
            let mail_only = matches!(
                issue.code,
                IssueCode::StsRecordMissing | IssueCode::TlsrptMissing
            );
            if mail_only && !receives_mail {
                continue;
            }
            if let Some(sentence) = issue.code.recommendation()
                && !sentences.contains(&sentence)
            {
                sentences.push(sentence);
            }
        }
        sentences
    }

    /// `scanned_at` as RFC 3339 UTC with milliseconds.
    pub fn scanned_at_rfc3339(&self) -> String {
        format_millis(self.scanned_at)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Formats epoch milliseconds as `2026-11-22T11:02:13.123Z`.
pub fn format_millis(millis: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(millis) {
        Some(time) => time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// Parses what [`format_millis`] writes.
pub fn parse_millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_millis())
}

struct DnsRecordJson<'a> {
    id: Option<&'a str>,
    raw: &'a str,
    cname: Option<&'a str>,
}

impl Serialize for DnsRecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("dns_record", 4)?;
        s.serialize_field("version", "STSv1")?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("record", self.raw)?;
        s.serialize_field("cname", &self.cname)?;
        s.end()
    }
}

#[derive(Serialize)]
struct PolicyJson<'a> {
    version: Option<&'a str>,
    mode: Option<&'static str>,
    mx: &'a [String],
    max_age: Option<u64>,
}

#[derive(Serialize)]
struct TlsRptJson<'a> {
    record: Option<&'a str>,
    rua: &'a [String],
}

#[derive(Serialize)]
struct IssueJson<'a> {
    code: &'static str,
    severity: &'static str,
    message: &'a str,
}

/// The JSON object of `check --json`, JSON Lines and `serve`: the hosted endpoint's fields
/// (`domain, has_mta_sts, dns_record, policy, mode, policy_url, tls_rpt, issues,
/// recommendations`) followed by every other column of spec §5.
impl Serialize for DomainReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DomainReport", 40)?;
        s.serialize_field("domain", &self.domain)?;
        s.serialize_field("has_mta_sts", &self.has_mta_sts)?;
        let dns_record = self.sts_record.as_deref().map(|raw| DnsRecordJson {
            id: self.sts_id.as_deref(),
            raw,
            cname: self.sts_record_cname.as_deref(),
        });
        s.serialize_field("dns_record", &dns_record)?;
        let fetched = self.policy_sha256.is_some();
        let policy = fetched.then(|| PolicyJson {
            version: self.policy_version.as_deref(),
            mode: self.mode.map(Mode::as_str),
            mx: &self.mx_patterns,
            max_age: self.max_age,
        });
        s.serialize_field("policy", &policy)?;
        s.serialize_field("mode", &self.mode.map(Mode::as_str))?;
        s.serialize_field("policy_url", &self.policy_url)?;
        let tls_rpt = self.tls_rpt.then(|| TlsRptJson {
            record: self.tls_rpt_record.as_deref(),
            rua: &self.tls_rpt_rua,
        });
        s.serialize_field("tls_rpt", &tls_rpt)?;
        let issues: Vec<IssueJson<'_>> = self
            .issues
            .iter()
            .map(|issue| IssueJson {
                code: issue.code.as_str(),
                severity: issue.severity.as_str(),
                message: &issue.message,
            })
            .collect();
        s.serialize_field("issues", &issues)?;
        s.serialize_field("recommendations", &self.recommendations())?;
        s.serialize_field("outcome", self.outcome.as_str())?;
        s.serialize_field("severity", self.severity().as_str())?;
        s.serialize_field("input", &self.input)?;
        s.serialize_field("rank", &self.rank)?;
        s.serialize_field("sts_id", &self.sts_id)?;
        s.serialize_field("sts_record", &self.sts_record)?;
        s.serialize_field("sts_record_cname", &self.sts_record_cname)?;
        s.serialize_field("policy_host_cname", &self.policy_host_cname)?;
        s.serialize_field("policy_http_status", &self.policy_http_status)?;
        s.serialize_field("policy_content_type", &self.policy_content_type)?;
        s.serialize_field("policy_sha256", &self.policy_sha256)?;
        s.serialize_field("max_age", &self.max_age)?;
        s.serialize_field("mx_patterns", &self.mx_patterns)?;
        s.serialize_field("mx_hosts", &self.mx_hosts)?;
        s.serialize_field("mx_uncovered", &self.mx_uncovered)?;
        s.serialize_field("delivery_at_risk", &self.delivery_at_risk)?;
        s.serialize_field("tls_rpt_rua", &self.tls_rpt_rua)?;
        s.serialize_field("error", &self.error)?;
        s.serialize_field("policy_fetch", &self.policy_fetch.map(FetchOutcome::as_str))?;
        let lookup_failures: Vec<&str> = self
            .lookup_failures
            .iter()
            .map(|failure| failure.as_str())
            .collect();
        s.serialize_field("lookup_failures", &lookup_failures)?;
        s.serialize_field("mx_probed", &self.mx_probed)?;
        s.serialize_field("mx_tls_valid", &self.mx_tls_valid)?;
        s.serialize_field("mx_tls_failed", &self.mx_tls_failed)?;
        s.serialize_field("mx_tls_unknown", &self.mx_tls_unknown)?;
        let classes: Vec<&str> = self
            .mx_uncovered_class
            .iter()
            .map(|class| class.as_str())
            .collect();
        s.serialize_field("mx_uncovered_class", &classes)?;
        s.serialize_field("delivery_blocked", &self.delivery_blocked)?;
        s.serialize_field("scanned_at", &self.scanned_at_rfc3339())?;
        s.serialize_field("duration_ms", &self.duration_ms)?;
        s.end()
    }
}
