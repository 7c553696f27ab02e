//! JSON Lines result files: one `check --json` object per line (the shape is
//! [`DomainReport`]'s `Serialize` impl), and the streaming reader that turns them back into
//! reports.
//!
//! JSON carries everything the tabular formats do plus issue severities and messages, the policy
//! `version` (inside the `policy` object, present when a policy was fetched) and the raw
//! TLS-RPT record (inside the `tls_rpt` object, present when the record is valid).

use std::fmt;
use std::io::{BufRead, Write};
use std::marker::PhantomData;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::issues::{Issue, IssueCode, Severity};
use crate::mta_sts::mx_class::MxMismatchClass;
use crate::mta_sts::policy::Mode;
use crate::net::{FetchOutcome, LookupFailure};
use crate::output::ResultWriter;
use crate::report::{DomainReport, Outcome, parse_millis};

/// Writes one JSON object per line into any byte sink.
pub struct JsonlResultWriter {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
}

impl JsonlResultWriter {
    pub fn new(sink: Box<dyn Write + Send>) -> Self {
        JsonlResultWriter {
            out: std::io::BufWriter::with_capacity(1 << 16, sink),
        }
    }
}

impl ResultWriter for JsonlResultWriter {
    fn write(&mut self, report: &DomainReport) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, report)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Streams the lines of a JSON Lines file, one [`DomainReport`] each. Blank lines are skipped;
/// a malformed line is an error item and the stream goes on; an I/O error ends it.
pub struct JsonlRows<R: BufRead> {
    reader: R,
    line: Vec<u8>,
    line_number: u64,
    source: String,
    done: bool,
}

impl JsonlRows<Box<dyn BufRead + Send>> {
    /// Opens `path` (decompressed when it is gzip, zstd or zip).
    pub fn open(path: &Path) -> Result<Self, String> {
        Ok(JsonlRows::new(
            crate::compression::open_file(path)?,
            path.display().to_string(),
        ))
    }
}

impl<R: BufRead> JsonlRows<R> {
    /// Reads `reader` (named `source_name` in errors).
    pub fn new(reader: R, source_name: String) -> Self {
        JsonlRows {
            reader,
            line: Vec::with_capacity(4096),
            line_number: 0,
            source: source_name,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for JsonlRows<R> {
    type Item = Result<DomainReport, String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line.clear();
            // A corrupt file must not make one "line" take all memory: read at most MAX_LINE.
            let read =
                std::io::Read::take(&mut self.reader, MAX_LINE).read_until(b'\n', &mut self.line);
            match read {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line_number += 1;
                    if self.line.len() as u64 >= MAX_LINE && !self.line.ends_with(b"\n") {
                        if let Err(err) = skip_rest_of_line(&mut self.reader) {
                            self.done = true;
                            return Some(Err(format!("{}: {err}", self.source)));
                        }
                        return Some(Err(format!(
                            "{}: line {}: longer than {MAX_LINE} bytes",
                            self.source, self.line_number
                        )));
                    }
                    if self.line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(parse_line(&self.line).map_err(|err| {
                        format!("{}: line {}: {err}", self.source, self.line_number)
                    }));
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(format!("{}: {err}", self.source)));
                }
            }
        }
        None
    }
}

/// Longest line read back; a result line is a few kilobytes.
const MAX_LINE: u64 = 1 << 20;

/// Discards input up to and including the next newline.
fn skip_rest_of_line<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = available.len();
                reader.consume(all);
            }
        }
    }
}

/// Parses one JSON object as written by [`JsonlResultWriter`].
pub fn parse_line(line: &[u8]) -> Result<DomainReport, serde_json::Error> {
    let row: JsonRow = serde_json::from_slice(line)?;
    Ok(row.into_report())
}

/// The fields of a JSON line needed to rebuild a report; everything else (`dns_record`,
/// `recommendations`, the `severity` summary) is derived and skipped.
#[derive(Deserialize)]
struct JsonRow {
    domain: String,
    input: String,
    #[serde(default)]
    rank: Option<i64>,
    outcome: Known<Outcome>,
    #[serde(default)]
    has_mta_sts: bool,
    #[serde(default)]
    sts_id: Option<String>,
    #[serde(default)]
    sts_record: Option<String>,
    #[serde(default)]
    policy_url: Option<String>,
    #[serde(default)]
    sts_record_cname: Option<String>,
    #[serde(default)]
    policy_host_cname: Option<String>,
    #[serde(default)]
    policy_http_status: Option<u16>,
    #[serde(default)]
    policy_content_type: Option<String>,
    #[serde(default)]
    policy_sha256: Option<String>,
    #[serde(default)]
    policy: Option<JsonPolicy>,
    #[serde(default)]
    mode: Option<Known<Mode>>,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(default)]
    mx_patterns: Vec<String>,
    #[serde(default)]
    mx_hosts: Vec<String>,
    #[serde(default)]
    mx_uncovered: Vec<String>,
    #[serde(default)]
    delivery_at_risk: bool,
    #[serde(default)]
    tls_rpt: Option<JsonTlsRpt>,
    #[serde(default)]
    tls_rpt_rua: Vec<String>,
    #[serde(default)]
    issues: Vec<JsonIssue>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    policy_fetch: Option<Known<FetchOutcome>>,
    #[serde(default)]
    lookup_failures: Vec<Known<LookupFailure>>,
    #[serde(default)]
    mx_probed: bool,
    #[serde(default)]
    mx_tls_valid: Vec<String>,
    #[serde(default)]
    mx_tls_failed: Vec<String>,
    #[serde(default)]
    mx_tls_unknown: Vec<String>,
    #[serde(default)]
    mx_uncovered_class: Vec<Known<MxMismatchClass>>,
    #[serde(default)]
    delivery_blocked: bool,
    scanned_at: Rfc3339Millis,
    #[serde(default)]
    duration_ms: i64,
}

#[derive(Deserialize)]
struct JsonPolicy {
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct JsonTlsRpt {
    #[serde(default)]
    record: Option<String>,
}

#[derive(Deserialize)]
struct JsonIssue {
    code: Lenient<IssueCode>,
    #[serde(default)]
    severity: Option<Lenient<Severity>>,
    #[serde(default)]
    message: String,
}

impl JsonRow {
    fn into_report(self) -> DomainReport {
        let issues = self
            .issues
            .into_iter()
            .filter_map(|issue| {
                // Codes from a newer version are skipped.
                let code = issue.code.0?;
                let severity = issue
                    .severity
                    .and_then(|severity| severity.0)
                    .unwrap_or_else(|| code.default_severity());
                Some(Issue::with_severity(code, severity, issue.message))
            })
            .collect();
        DomainReport {
            domain: self.domain,
            input: self.input,
            rank: self.rank,
            outcome: self.outcome.0,
            has_mta_sts: self.has_mta_sts,
            sts_id: self.sts_id,
            sts_record: self.sts_record,
            policy_url: self.policy_url,
            sts_record_cname: self.sts_record_cname,
            policy_host_cname: self.policy_host_cname,
            policy_http_status: self.policy_http_status,
            policy_content_type: self.policy_content_type,
            policy_sha256: self.policy_sha256,
            policy_version: self.policy.and_then(|policy| policy.version),
            mode: self.mode.map(|mode| mode.0),
            max_age: self.max_age,
            mx_patterns: self.mx_patterns,
            mx_hosts: self.mx_hosts,
            mx_uncovered: self.mx_uncovered,
            delivery_at_risk: self.delivery_at_risk,
            tls_rpt: self.tls_rpt.is_some(),
            tls_rpt_rua: self.tls_rpt_rua,
            tls_rpt_record: self.tls_rpt.and_then(|tls_rpt| tls_rpt.record),
            issues,
            error: self.error,
            policy_fetch: self.policy_fetch.map(|outcome| outcome.0),
            lookup_failures: self
                .lookup_failures
                .into_iter()
                .map(|failure| failure.0)
                .collect(),
            mx_probed: self.mx_probed,
            mx_tls_valid: self.mx_tls_valid,
            mx_tls_failed: self.mx_tls_failed,
            mx_tls_unknown: self.mx_tls_unknown,
            mx_uncovered_class: self
                .mx_uncovered_class
                .into_iter()
                .map(|class| class.0)
                .collect(),
            delivery_blocked: self.delivery_blocked,
            scanned_at: self.scanned_at.0,
            duration_ms: self.duration_ms,
        }
    }
}

/// A value written by its stable name.
trait Named: Sized {
    const WHAT: &'static str;
    fn from_name(name: &str) -> Option<Self>;
}

impl Named for Outcome {
    const WHAT: &'static str = "an outcome name";
    fn from_name(name: &str) -> Option<Self> {
        Outcome::from_name(name)
    }
}

impl Named for Mode {
    const WHAT: &'static str = "a policy mode";
    fn from_name(name: &str) -> Option<Self> {
        Mode::from_name(name)
    }
}

impl Named for FetchOutcome {
    const WHAT: &'static str = "a policy fetch outcome";
    fn from_name(name: &str) -> Option<Self> {
        FetchOutcome::from_name(name)
    }
}

impl Named for LookupFailure {
    const WHAT: &'static str = "a lookup failure (lookup:kind)";
    fn from_name(name: &str) -> Option<Self> {
        LookupFailure::from_name(name)
    }
}

impl Named for MxMismatchClass {
    const WHAT: &'static str = "an MX mismatch class";
    fn from_name(name: &str) -> Option<Self> {
        MxMismatchClass::from_name(name)
    }
}

impl Named for IssueCode {
    const WHAT: &'static str = "an issue code";
    fn from_name(name: &str) -> Option<Self> {
        IssueCode::from_name(name)
    }
}

impl Named for Severity {
    const WHAT: &'static str = "a severity";
    fn from_name(name: &str) -> Option<Self> {
        Severity::from_name(name)
    }
}

/// A name that must be known: an unknown one makes the line an error.
struct Known<T>(T);

/// A name that may be unknown (written by a newer version): `None` then.
struct Lenient<T>(Option<T>);

/// Reads a name without allocating, even when the JSON string has escapes.
struct NameVisitor<T>(PhantomData<T>);

impl<T: Named> Visitor<'_> for NameVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::WHAT)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<T>, E> {
        Ok(T::from_name(name))
    }
}

impl<'de, T: Named> Deserialize<'de> for Known<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Unknown<T>(PhantomData<T>);
        impl<T: Named> de::Expected for Unknown<T> {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(T::WHAT)
            }
        }
        match deserializer.deserialize_str(NameVisitor::<T>(PhantomData))? {
            Some(value) => Ok(Known(value)),
            None => Err(de::Error::invalid_value(
                de::Unexpected::Other("an unknown name"),
                &Unknown::<T>(PhantomData),
            )),
        }
    }
}

impl<'de, T: Named> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_str(NameVisitor::<T>(PhantomData))
            .map(Lenient)
    }
}

/// `scanned_at` as written by [`crate::report::format_millis`].
struct Rfc3339Millis(i64);

impl<'de> Deserialize<'de> for Rfc3339Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = i64;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an RFC 3339 time")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<i64, E> {
                parse_millis(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(TimeVisitor).map(Rfc3339Millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_long_line_is_one_error_and_reading_goes_on() {
        let mut file = vec![b'{'; (MAX_LINE as usize) * 2];
        file.push(b'\n');
        file.extend_from_slice(b"not json\n");
        let rows: Vec<_> = JsonlRows::new(&file[..], "test".to_owned()).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].as_ref().unwrap_err().contains("longer than"));
        assert!(rows[1].as_ref().unwrap_err().contains("line 2"));
    }

    #[test]
    fn unknown_issue_codes_are_skipped_and_unknown_severities_default() {
        let line = br#"{"domain":"a.example","input":"a.example","outcome":"invalid",
            "scanned_at":"2026-11-22T11:02:13.123Z",
            "issues":[{"code":"from_the_future","severity":"error","message":"?"},
                      {"code":"policy_c\u006fntent_type","severity":"dire","message":"m"}]}"#;
        let report = parse_line(line).expect("parses");
        assert_eq!(report.issues.len(), 1);
        assert_eq!(report.issues[0].code, IssueCode::PolicyContentType);
        assert_eq!(report.issues[0].severity, Severity::Warning);
        assert_eq!(report.issues[0].message, "m");
        assert_eq!(
            Some(report.scanned_at),
            parse_millis("2026-11-22T11:02:13.123Z")
        );
    }

    #[test]
    fn unknown_outcome_and_bad_time_are_errors() {
        let odd_outcome = br#"{"domain":"a","input":"a","outcome":"maybe","scanned_at":"2026-11-22T11:02:13.123Z"}"#;
        assert!(parse_line(odd_outcome).is_err());
        let bad_time = br#"{"domain":"a","input":"a","outcome":"valid","scanned_at":"later"}"#;
        assert!(parse_line(bad_time).is_err());
    }

    #[test]
    fn blank_lines_are_skipped_and_bad_lines_do_not_stop_the_stream() {
        let mut report = DomainReport::new("a.example".into(), "a.example".into(), Some(1));
        report.scanned_at = 1_795_000_000_123;
        let mut text = serde_json::to_vec(&report).expect("serialises");
        text.extend_from_slice(b"\n\n  \n{not json}\n");
        text.extend_from_slice(&serde_json::to_vec(&report).expect("serialises"));
        let rows: Vec<_> = JsonlRows::new(&text[..], "memory".into()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].as_ref().ok(), Some(&report));
        let error = rows[1].as_ref().expect_err("malformed line");
        assert!(error.starts_with("memory: line 4:"), "{error}");
        assert_eq!(rows[2].as_ref().ok(), Some(&report));
    }
}
