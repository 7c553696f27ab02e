//! The `_smtp._tls` TXT record of SMTP TLS Reporting (RFC 8460 §3): candidates and grammar.
//!
//! ```text
//! tlsrpt-record    = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! field-delim      = *WSP ";" *WSP
//! tlsrpt-field     = tlsrpt-rua / tlsrpt-extension   ; rua is required
//! tlsrpt-version   = %s"v=TLSRPTv1"
//! tlsrpt-rua       = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri       = URI   ; RFC 3986; ",", ";" and "!" MUST be percent-encoded
//! tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//! ```
//!
//! As for the MTA-STS record the delimiters follow the ABNF exactly: an empty field (`;;`) or
//! whitespace after the last field is `tlsrpt_invalid`. The ABNF lets `rua` appear more than once
//! (`1*(field-delim tlsrpt-field)`): the record is valid and the URIs of every `rua` field are
//! kept, in order (spec §2).

use super::{
    RecordScan, TagError, describe_near_miss, ext_value_error, fields_after_tag, is_ext_name,
    is_wsp, quote, scan_records, split_fields, trim_wsp,
};
use crate::issues::{Issue, IssueCode};

/// The version tag every TLS-RPT record must begin with (RFC 8460 §3, case-sensitive).
const VERSION: &str = "v=TLSRPTv1";

/// Verdict over all TXT records found at `_smtp._tls.D`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRptVerdict {
    /// No record begins with v=TLSRPTv1 and none plainly tries to.
    Missing,
    /// Exactly one v=TLSRPTv1 record, valid; the `rua` URIs as written, and the record itself.
    Valid { rua: Vec<String>, record: String },
    /// More than one record begins with v=TLSRPTv1.
    Multiple { count: usize },
    /// The one candidate is broken, or no candidate but a record plainly tries (`TlsrptInvalid`).
    Invalid { issue: Issue },
}

/// Whether senders keep this record: `v=TLSRPTv1` followed by `*WSP ";"` or the end (RFC 8460 §3).
fn invalid(message: String) -> Issue {
    Issue::new(IssueCode::TlsrptInvalid, message)
}

/// Judges all TXT records found at `_smtp._tls.D` (RFC 8460 §3).
///
/// Records not beginning `v=TLSRPTv1` are discarded; exactly one must remain. With none, a record
/// that plainly tries (`v=tlsrptv1`, `v=TLSRPTv1` not first) is [`TlsRptVerdict::Invalid`].
pub fn evaluate_tlsrpt_records<'a, I: IntoIterator<Item = &'a str>>(records: I) -> TlsRptVerdict {
    let RecordScan {
        count,
        candidate,
        first_near_miss,
    } = scan_records(records, VERSION, "TLSRPTv1");
    match (count, candidate, first_near_miss) {
        (2.., _, _) => TlsRptVerdict::Multiple { count },
        (_, Some(record), _) => match parse_tlsrpt_record(record) {
            Ok(rua) => TlsRptVerdict::Valid {
                rua: rua.into_iter().map(str::to_owned).collect(),
                record: record.to_owned(),
            },
            Err(issue) => TlsRptVerdict::Invalid { issue },
        },
        (_, None, Some((kind, field, record))) => TlsRptVerdict::Invalid {
            issue: invalid(format!(
                "{}; senders discard a TXT record that does not begin with \"v=TLSRPTv1;\", so no reports are sent",
                describe_near_miss(kind, field, record, VERSION)
            )),
        },
        (_, None, None) => TlsRptVerdict::Missing,
    }
}

/// Parses one candidate record (RFC 8460 §3) and returns its `rua` URIs, borrowed.
pub fn parse_tlsrpt_record(record: &str) -> Result<Vec<&str>, Issue> {
    // §3: `tlsrpt-version` first, then `field-delim` or nothing.
    let fields = fields_after_tag(record, VERSION).map_err(|error| {
        invalid(match error {
            TagError::Missing => {
                format!("record does not begin with v=TLSRPTv1: {}", quote(record))
            }
            TagError::NoDelimiter => {
                format!(
                    "v=TLSRPTv1 must be followed by ';': found {}",
                    quote(record)
                )
            }
        })
    })?;
    let mut rua: Option<Vec<&str>> = None;
    for field in split_fields(fields) {
        let field = field.map_err(|error| invalid(error.describe(record)))?;
        let Some((name, value)) = field.split_once('=') else {
            return Err(invalid(format!("field {} is not name=value", quote(field))));
        };
        if name.ends_with(is_wsp) || value.starts_with(is_wsp) {
            return Err(invalid(format!(
                "no whitespace is allowed around '=' in field {}",
                quote(field)
            )));
        }
        if name == "rua" {
            // The ABNF allows several `rua` fields: every URI counts, in order.
            let uris = parse_rua(value)?;
            rua.get_or_insert_with(Vec::new).extend(uris);
            continue;
        }
        // §3 `tlsrpt-extension`.
        if !is_ext_name(name) {
            return Err(invalid(format!(
                "invalid field name {} in {}",
                quote(name),
                quote(field)
            )));
        }
        match ext_value_error(value) {
            None => {}
            Some(None) => {
                return Err(invalid(format!(
                    "field {} has an empty value",
                    quote(field)
                )));
            }
            Some(Some(bad)) => {
                return Err(invalid(format!(
                    "field {} has a bad character '{}' in its value",
                    quote(field),
                    bad.escape_default()
                )));
            }
        }
    }
    rua.ok_or_else(|| {
        invalid("rua missing: the record must carry rua=mailto:... or rua=https://...".to_owned())
    })
}

/// `tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)` (RFC 8460 §3).
fn parse_rua(value: &str) -> Result<Vec<&str>, Issue> {
    let mut uris = Vec::new();
    for uri in value.split(',') {
        let uri = trim_wsp(uri);
        if uri.is_empty() {
            return Err(invalid(format!(
                "rua {} has an empty URI (stray comma?)",
                quote(value)
            )));
        }
        if let Err(reason) = check_uri(uri) {
            return Err(invalid(format!("rua URI {}: {reason}", quote(uri))));
        }
        uris.push(uri);
    }
    Ok(uris)
}

/// A reporting URI: `mailto:` with an address, or `https:` with a host (RFC 8460 §3: "Two URI
/// schemes are supported"); scheme names compare case-insensitively (RFC 3986 §3.1).
fn check_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("not a URI (no scheme): use mailto:you@example.com or https://...".to_owned());
    };
    // RFC 3986 §2: a URI is printable ASCII; RFC 8460 §3: "!" MUST be percent-encoded.
    if let Some(bad) = uri.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "bad character '{}': a URI is printable ASCII without spaces",
            bad.escape_default()
        ));
    }
    if uri.contains('!') {
        return Err(
            "'!' must be percent-encoded (DMARC-style size limits are not part of TLS-RPT)"
                .to_owned(),
        );
    }
    if scheme.eq_ignore_ascii_case("mailto") {
        let address = rest.split('?').next().unwrap_or(rest);
        return match address.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
            _ => Err("mailto: needs an address like tls-reports@example.com".to_owned()),
        };
    }
    if scheme.eq_ignore_ascii_case("https") {
        let authority = rest
            .strip_prefix("//")
            .map(|r| r.split(['/', '?', '#']).next().unwrap_or(r));
        let host = authority.map(|a| {
            let host = a.rsplit_once('@').map_or(a, |(_, h)| h);
            host.split(':').next().unwrap_or(host)
        });
        return match host {
            Some(host) if !host.is_empty() => Ok(()),
            _ => Err("https: needs a host, as in https://reports.example.com/tlsrpt".to_owned()),
        };
    }
    if scheme.eq_ignore_ascii_case("http") {
        return Err("http: is not allowed, only https: (and mailto:)".to_owned());
    }
    Err(format!(
        "scheme {} is not allowed: only mailto: and https:",
        quote(scheme)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Expected {
        Missing,
        Valid(&'static [&'static str]),
        Multiple(usize),
        Invalid(&'static str),
    }

    #[test]
    fn verdicts() {
        use Expected::*;
        let cases: Vec<(Vec<&str>, Expected)> = vec![
            (
                vec!["v=TLSRPTv1; rua=mailto:tls@example.com"],
                Valid(&["mailto:tls@example.com"]),
            ),
            (
                vec!["v=TLSRPTv1;rua=mailto:a@x.com,https://r.example.com/tlsrpt"],
                Valid(&["mailto:a@x.com", "https://r.example.com/tlsrpt"]),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@x.com , MAILTO:b@y.org;"],
                Valid(&["mailto:a@x.com", "MAILTO:b@y.org"]),
            ),
            (
                vec!["v=TLSRPTv1 ; rua=https://user@r.example.com:8443/x?y=1; ext=1 ;"],
                Valid(&["https://user@r.example.com:8443/x?y=1"]),
            ),
            (
                vec!["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@b.c"],
                Valid(&["mailto:a@b.c"]),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c?subject=x"],
                Valid(&["mailto:a@b.c?subject=x"]),
            ),
            (vec!["v=TLSRPTv1"], Invalid("rua missing")),
            (vec!["v=TLSRPTv1; ext=1"], Invalid("rua missing")),
            (vec!["v=TLSRPTv1; RUA=mailto:a@b.c"], Invalid("rua missing")),
            (
                vec!["v=TLSRPTv1; rua=http://r.example.com/"],
                Invalid("http: is not allowed"),
            ),
            (
                vec!["v=TLSRPTv1; rua=ftp://r.example.com/"],
                Invalid("scheme 'ftp' is not allowed"),
            ),
            (vec!["v=TLSRPTv1; rua=ftp:"], Invalid("scheme 'ftp'")),
            (
                vec!["v=TLSRPTv1; rua=tls@example.com"],
                Invalid("no scheme"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:example.com"],
                Invalid("needs an address"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:@example.com"],
                Invalid("needs an address"),
            ),
            (
                vec!["v=TLSRPTv1; rua=https:///path"],
                Invalid("needs a host"),
            ),
            (
                vec!["v=TLSRPTv1; rua=https:r.example.com"],
                Invalid("needs a host"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c!10m"],
                Invalid("'!' must be percent-encoded"),
            ),
            (vec!["v=TLSRPTv1; rua=mailto:a@b.c,"], Invalid("empty URI")),
            (vec!["v=TLSRPTv1; rua="], Invalid("empty URI")),
            (
                vec!["v=TLSRPTv1; rua = mailto:a@b.c"],
                Invalid("around '='"),
            ),
            // RFC 8460 §3: `1*(field-delim tlsrpt-field)`, so rua may repeat; all URIs count.
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c; rua=mailto:d@e.f"],
                Valid(&["mailto:a@b.c", "mailto:d@e.f"]),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c,https://r.x/y; e=1; rua=mailto:d@e.f"],
                Valid(&["mailto:a@b.c", "https://r.x/y", "mailto:d@e.f"]),
            ),
            // Exact delimiters: no empty field, no whitespace after the last field.
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c;;"],
                Invalid("repeated ';'"),
            ),
            (
                vec!["v=TLSRPTv1;; rua=mailto:a@b.c"],
                Invalid("repeated ';'"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c "],
                Invalid("whitespace after the last field"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c; "],
                Valid(&["mailto:a@b.c"]),
            ),
            // "commas, exclamation points, and semicolons MUST be encoded"; mailto needs
            // a local part and a domain.
            (
                vec!["v=TLSRPTv1; rua=https://r.example.com/a!b"],
                Invalid("'!' must be percent-encoded"),
            ),
            (
                vec!["v=TLSRPTv1; rua=https://r.example.com/a%21b"],
                Valid(&["https://r.example.com/a%21b"]),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@"],
                Invalid("needs an address"),
            ),
            (vec!["v=TLSRPTv1; rua=mailto:"], Invalid("needs an address")),
            (
                vec!["v=TLSRPTv1; rua=mailto:@"],
                Invalid("needs an address"),
            ),
            // Candidate selection: a decoy v=TLSRPTv10 beside the real record is discarded.
            (
                vec![
                    "v=TLSRPTv10; rua=mailto:x@y.z",
                    "v=TLSRPTv1; rua=mailto:a@b.c",
                ],
                Valid(&["mailto:a@b.c"]),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c; junk"],
                Invalid("not name=value"),
            ),
            (
                vec!["v=TLSRPTv1; rua=mailto:a@b.c; e=a b"],
                Invalid("bad character ' '"),
            ),
            (
                vec!["v=TLSRPTv1,rua=mailto:a@b.c"],
                Invalid("must be followed by ';'"),
            ),
            (
                vec![
                    "v=TLSRPTv1; rua=mailto:a@b.c",
                    "v=TLSRPTv1; rua=mailto:d@e.f",
                ],
                Multiple(2),
            ),
            (
                vec!["v=tlsrptv1; rua=mailto:a@b.c"],
                Invalid("case-sensitive: found 'v=tlsrptv1'"),
            ),
            (
                vec!["rua=mailto:a@b.c; v=TLSRPTv1"],
                Invalid("must come first"),
            ),
            (
                vec!["v=TLSRPTv1 rua=mailto:a@b.c"],
                Invalid("must be followed by ';'"),
            ),
            (vec!["v=spf1 -all", "google-site-verification=x"], Missing),
            (vec!["v=TLSRPTv10; rua=mailto:a@b.c"], Missing),
            (vec![], Missing),
        ];
        for (records, expected) in cases {
            let verdict = evaluate_tlsrpt_records(records.iter().copied());
            match (&expected, &verdict) {
                (Missing, TlsRptVerdict::Missing) => {}
                (Valid(want), TlsRptVerdict::Valid { rua, record }) => {
                    assert_eq!(rua, want, "{records:?}");
                    assert!(record.starts_with("v=TLSRPTv1"), "{record:?}");
                    assert!(!record.starts_with("v=TLSRPTv10"), "{record:?}");
                }
                (Multiple(want), TlsRptVerdict::Multiple { count }) => {
                    assert_eq!(count, want, "{records:?}")
                }
                (Invalid(fragment), TlsRptVerdict::Invalid { issue }) => {
                    assert_eq!(issue.code, IssueCode::TlsrptInvalid, "{records:?}");
                    assert!(
                        issue.message.contains(fragment),
                        "{records:?}: {:?} lacks {fragment:?}",
                        issue.message
                    );
                }
                _ => panic!("{records:?}: expected {expected:?}, got {verdict:?}"),
            }
        }
    }
}
