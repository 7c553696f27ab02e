//! The `_mta-sts` TXT record (RFC 8461 §3.1): which TXT strings are candidates, and their grammar.
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//! sts-field       = sts-id / sts-extension
//! sts-field-delim = *WSP ";" *WSP
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! sts-extension   = sts-ext-name "=" sts-ext-value
//! sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! The grammar is applied exactly (spec §2): an empty field (`id=1;;`) or whitespace after the
//! last field (`id=1 `) makes the record invalid, even though lenient parsers accept both, because
//! "if ... the resulting record is syntactically invalid, senders MUST assume the recipient domain
//! does not have an available MTA-STS Policy" (§3.1). A repeated field is not a syntax error:
//! "all entries except for the first SHALL be ignored" (§3.2), so the first `id` counts and the
//! repeat is reported as `sts_record_duplicate_field`.

use super::{
    NearMiss, RecordScan, TagError, describe_near_miss, ext_value_error, fields_after_tag,
    is_ext_name, is_wsp, quote, scan_records, split_fields,
};
use crate::issues::{Issue, IssueCode};

/// The version tag every MTA-STS record must begin with (RFC 8461 §3.1, case-sensitive).
const VERSION: &str = "v=STSv1";

/// The longest `id` (RFC 8461 §3.1: `1*32(ALPHA / DIGIT)`).
const ID_MAX: usize = 32;

/// Verdict over ALL TXT strings returned at `_mta-sts.D` (each element = one TXT record, its
/// character-strings already concatenated without spaces by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsRecordVerdict {
    /// No record begins with v=STSv1 and none plainly tries to.
    Missing,
    /// Exactly one v=STSv1 record and it is valid.
    Valid {
        id: String,
        extensions: Vec<(String, String)>,
        /// Fields given more than once, as written the second time (the first counts, §3.2).
        duplicates: Vec<String>,
    },
    /// More than one record begins with "v=STSv1".
    Multiple { count: usize },
    /// Exactly one candidate, but it is broken; `issue` is StsRecordSyntax or StsRecordIdInvalid
    /// with a precise message. Also: no candidate, but a record plainly attempts MTA-STS in a way
    /// senders discard (StsRecordSyntax).
    Invalid { issue: Issue },
}

/// One parsed record, borrowing from the TXT data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord<'a> {
    /// The policy id (1–32 ASCII letters or digits).
    pub id: &'a str,
    /// Extension fields `name=value`, in record order (first occurrence of each name).
    pub extensions: Vec<(&'a str, &'a str)>,
    /// Repeated fields, ignored (RFC 8461 §3.2: "all entries except for the first SHALL be
    /// ignored"), as written.
    pub duplicates: Vec<&'a str>,
}

/// Whether senders keep this record: it begins with `v=STSv1` followed by `*WSP ";"` or the end
/// (RFC 8461 §3.1: "Records that do not begin with "v=STSv1;" are discarded"; `v=STSv10` is not
/// a candidate).
/// The message for a near-miss record: what is wrong and that senders discard it.
fn near_miss_issue(kind: NearMiss, field: &str, record: &str) -> Issue {
    Issue::new(
        IssueCode::StsRecordSyntax,
        format!(
            "{}; senders discard a TXT record that does not begin with \"v=STSv1;\", so the domain has no MTA-STS policy",
            describe_near_miss(kind, field, record, VERSION)
        ),
    )
}

/// Judges all TXT records found at `_mta-sts.D` (RFC 8461 §3.1).
///
/// Records that do not begin with `v=STSv1` are discarded; more than one candidate is
/// [`StsRecordVerdict::Multiple`]; exactly one is parsed. With no candidate, the first record
/// that plainly attempts MTA-STS (wrong case, not first, spacing) is reported as
/// [`StsRecordVerdict::Invalid`]; unrelated records give [`StsRecordVerdict::Missing`].
pub fn evaluate_sts_records<'a, I: IntoIterator<Item = &'a str>>(records: I) -> StsRecordVerdict {
    let RecordScan {
        count,
        candidate,
        first_near_miss,
    } = scan_records(records, VERSION, "STSv1");
    match (count, candidate, first_near_miss) {
        (2.., _, _) => StsRecordVerdict::Multiple { count },
        (_, Some(record), _) => match parse_sts_record(record) {
            Ok(parsed) => StsRecordVerdict::Valid {
                id: parsed.id.to_owned(),
                extensions: parsed
                    .extensions
                    .iter()
                    .map(|&(name, value)| (name.to_owned(), value.to_owned()))
                    .collect(),
                duplicates: parsed.duplicates.iter().map(|&f| f.to_owned()).collect(),
            },
            Err(issue) => StsRecordVerdict::Invalid { issue },
        },
        (_, None, Some((kind, field, record))) => StsRecordVerdict::Invalid {
            issue: near_miss_issue(kind, field, record),
        },
        (_, None, None) => StsRecordVerdict::Missing,
    }
}

fn syntax(message: String) -> Issue {
    Issue::new(IssueCode::StsRecordSyntax, message)
}

fn id_invalid(message: String) -> Issue {
    Issue::new(IssueCode::StsRecordIdInvalid, message)
}

/// `sts-id = %s"id=" 1*32(ALPHA / DIGIT)` (RFC 8461 §3.1).
fn check_id(id: &str) -> Result<(), Issue> {
    if id.is_empty() {
        return Err(id_invalid(
            "id is empty: it must be 1-32 ASCII letters or digits".to_owned(),
        ));
    }
    if let Some(bad) = id.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(id_invalid(format!(
            "id {} has a bad character '{}': only ASCII letters and digits are allowed",
            quote(id),
            bad.escape_default()
        )));
    }
    // All ASCII from here: bytes are characters.
    if id.len() > ID_MAX {
        return Err(id_invalid(format!(
            "id {} is too long ({} chars, max {ID_MAX})",
            quote(id),
            id.len()
        )));
    }
    Ok(())
}

/// Parses one candidate record against the RFC 8461 §3.1 grammar.
///
/// The first violation found is returned: [`IssueCode::StsRecordIdInvalid`] for the `id`,
/// [`IssueCode::StsRecordSyntax`] for everything else.
pub fn parse_sts_record(record: &str) -> Result<StsRecord<'_>, Issue> {
    // §3.1: `sts-version` first, case-sensitive, then `sts-field-delim` or nothing at all.
    let fields = fields_after_tag(record, VERSION).map_err(|error| {
        syntax(match error {
            TagError::Missing => format!("record does not begin with v=STSv1: {}", quote(record)),
            TagError::NoDelimiter => {
                format!("v=STSv1 must be followed by ';': found {}", quote(record))
            }
        })
    })?;

    let mut id: Option<&str> = None;
    let mut extensions: Vec<(&str, &str)> = Vec::new();
    let mut duplicates = Vec::new();
    let mut case_hint: Option<&str> = None;
    for field in split_fields(fields) {
        let field = field.map_err(|error| syntax(error.describe(record)))?;
        let Some((name, value)) = field.split_once('=') else {
            if field == "id" {
                return Err(id_invalid(
                    "id has no '=' and no value: write id=<1-32 letters or digits>".to_owned(),
                ));
            }
            return Err(syntax(format!("field {} is not name=value", quote(field))));
        };
        if name.ends_with(is_wsp) || value.starts_with(is_wsp) {
            return Err(syntax(format!(
                "no whitespace is allowed around '=' in field {}",
                quote(field)
            )));
        }
        if name == "id" {
            // §3.1 `sts-id`; §3.2: a repeated field is ignored after the first.
            check_id(value)?;
            if id.is_some() {
                duplicates.push(field);
            } else {
                id = Some(value);
            }
            continue;
        }
        // §3.1 `sts-extension = sts-ext-name "=" sts-ext-value`.
        if name.is_empty() {
            return Err(syntax(format!("field {} has an empty name", quote(field))));
        }
        if !is_ext_name(name) {
            return Err(syntax(format!(
                "invalid field name {} in {}: names are 1-32 letters, digits, '_', '-' or '.', starting with a letter or digit",
                quote(name),
                quote(field)
            )));
        }
        match ext_value_error(value) {
            None => {}
            Some(None) => {
                return Err(syntax(format!("field {} has an empty value", quote(field))));
            }
            Some(Some(bad)) => {
                return Err(syntax(format!(
                    "field {} has a bad character '{}' in its value",
                    quote(field),
                    bad.escape_default()
                )));
            }
        }
        if case_hint.is_none() && name.eq_ignore_ascii_case("id") {
            case_hint = Some(field);
        }
        if extensions.iter().any(|(seen, _)| *seen == name) {
            duplicates.push(field);
        } else {
            extensions.push((name, value));
        }
    }
    match id {
        Some(id) => Ok(StsRecord {
            id,
            extensions,
            duplicates,
        }),
        None => Err(id_invalid(match case_hint {
            Some(field) => format!(
                "id missing: found {}, but field names are case-sensitive (write 'id=')",
                quote(field)
            ),
            None => "id missing: the record must carry id=<1-32 letters or digits>".to_owned(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a verdict should be; `Invalid` names the code and a fragment of the message.
    #[derive(Debug)]
    enum Expected {
        Missing,
        Valid(&'static str, &'static [(&'static str, &'static str)]),
        /// Valid, with these fields ignored as repeats.
        ValidWithDuplicates(&'static str, &'static [&'static str]),
        Multiple(usize),
        Invalid(IssueCode, &'static str),
    }

    fn check(records: &[&str], expected: &Expected) {
        let verdict = evaluate_sts_records(records.iter().copied());
        match (expected, &verdict) {
            (Expected::Missing, StsRecordVerdict::Missing) => {}
            (
                Expected::ValidWithDuplicates(want_id, want_duplicates),
                StsRecordVerdict::Valid { id, duplicates, .. },
            ) => {
                assert_eq!(id, want_id, "{records:?}");
                assert_eq!(duplicates, want_duplicates, "{records:?}");
            }
            (
                Expected::Valid(want_id, want_ext),
                StsRecordVerdict::Valid {
                    id,
                    extensions,
                    duplicates,
                },
            ) => {
                assert!(duplicates.is_empty(), "{records:?}: {duplicates:?}");
                assert_eq!(id, want_id, "{records:?}");
                let got: Vec<(&str, &str)> = extensions
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                assert_eq!(got, *want_ext, "{records:?}");
            }
            (Expected::Multiple(want), StsRecordVerdict::Multiple { count }) => {
                assert_eq!(count, want, "{records:?}");
            }
            (Expected::Invalid(code, fragment), StsRecordVerdict::Invalid { issue }) => {
                assert_eq!(issue.code, *code, "{records:?}: {}", issue.message);
                assert!(
                    issue.message.contains(fragment),
                    "{records:?}: {:?} lacks {fragment:?}",
                    issue.message
                );
            }
            _ => panic!("{records:?}: expected {expected:?}, got {verdict:?}"),
        }
    }

    #[test]
    fn verdicts() {
        use Expected::*;
        use IssueCode::{StsRecordIdInvalid as Id, StsRecordSyntax as Syntax};
        let id33 = format!("v=STSv1; id={}", "a".repeat(33));
        let id32 = format!("v=STSv1; id={}", "a".repeat(32));
        let cases: Vec<(Vec<&str>, Expected)> = vec![
            (
                vec!["v=STSv1; id=20190429T010101;"],
                Valid("20190429T010101", &[]),
            ),
            (vec!["v=STSv1;id=abc"], Valid("abc", &[])),
            (
                vec!["v=STSv1; id=abc; ext=val"],
                Valid("abc", &[("ext", "val")]),
            ),
            // §3.1 `sts-field-delim = *WSP ";" *WSP`, at most one trailing delimiter.
            (vec!["v=STSv1;  id=abc  ;  "], Valid("abc", &[])),
            (vec!["v=STSv1 ; id=abc"], Valid("abc", &[])),
            (vec!["v=STSv1;\tid=abc;"], Valid("abc", &[])),
            (vec!["v=STSv1;\tid=abc;;"], Invalid(Syntax, "repeated ';'")),
            (vec!["v=STSv1;; id=abc"], Invalid(Syntax, "repeated ';'")),
            (
                vec!["v=STSv1; id=abc; ; e=1"],
                Invalid(Syntax, "repeated ';'"),
            ),
            (
                vec!["v=STSv1; id=123 "],
                Invalid(Syntax, "whitespace after the last field"),
            ),
            (
                vec!["v=STSv1; id=123\t"],
                Invalid(Syntax, "lenient parsers accept it"),
            ),
            // §3.2: a repeated field is ignored after the first; the record stays valid.
            (
                vec!["v=STSv1; id=a; id=b"],
                ValidWithDuplicates("a", &["id=b"]),
            ),
            (
                vec!["v=STSv1; e=1; id=a; e=2"],
                ValidWithDuplicates("a", &["e=2"]),
            ),
            // §3.1 candidate selection: decoys beside the real record are discarded.
            (
                vec!["v=STSv10; id=9", "v=STSv1; id=1", "v=STSv1is not a record"],
                Valid("1", &[]),
            ),
            (
                vec!["v=STSv1 is not a policy"],
                Invalid(Syntax, "followed by ';'"),
            ),
            (
                vec!["v=STSv1; ext.1=a:b; id=X9"],
                Valid("X9", &[("ext.1", "a:b")]),
            ),
            (vec!["v=spf1 -all", "v=STSv1; id=1"], Valid("1", &[])),
            (vec!["v=stsv1; id=2", "v=STSv1; id=1"], Valid("1", &[])),
            (
                vec![id32.as_str()],
                Valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &[]),
            ),
            (vec!["v=STSv1; id=a", "v=STSv1; id=b"], Multiple(2)),
            (
                vec!["v=STSv1; id=a", "v=spf1", "v=STSv1", "v=STSv1;"],
                Multiple(3),
            ),
            (vec!["v=spf1 -all"], Missing),
            (vec![], Missing),
            (vec![""], Missing),
            (
                vec!["google-site-verification=abc", "v=spf1 include:x -all"],
                Missing,
            ),
            (vec!["v=STSv10; id=1"], Missing),
            (
                vec!["id=1; v=STSv1"],
                Invalid(Syntax, "must come first (version ordering)"),
            ),
            (
                vec!["v=stsv1; id=1"],
                Invalid(Syntax, "case-sensitive: found 'v=stsv1'"),
            ),
            (
                vec!["V=STSv1; id=1"],
                Invalid(Syntax, "case-sensitive: found 'V=STSv1'"),
            ),
            (vec!["v = STSv1; id=1"], Invalid(Syntax, "around '='")),
            (
                vec!["v=STSv1 id=1"],
                Invalid(Syntax, "must be followed by ';'"),
            ),
            (
                vec![" v=STSv1; id=1"],
                Invalid(Syntax, "whitespace before v=STSv1"),
            ),
            (
                vec!["\"v=STSv1; id=1\""],
                Invalid(Syntax, "quote character"),
            ),
            (
                vec!["v=spf1 -all", "v=stsv1; id=1"],
                Invalid(Syntax, "senders discard"),
            ),
            (vec!["v=STSv1"], Invalid(Id, "id missing")),
            (vec!["v=STSv1;"], Invalid(Id, "id missing")),
            (vec!["v=STSv1; ID=abc"], Invalid(Id, "case-sensitive")),
            (vec!["v=STSv1; id="], Invalid(Id, "id is empty")),
            (vec!["v=STSv1; id"], Invalid(Id, "no value")),
            (
                vec![id33.as_str()],
                Invalid(Id, "too long (33 chars, max 32)"),
            ),
            (
                vec!["v=STSv1; id=2019-04-29"],
                Invalid(Id, "bad character '-'"),
            ),
            (
                vec!["v=STSv1; id=abc def"],
                Invalid(Id, "bad character ' '"),
            ),
            (vec!["v=STSv1; id=é"], Invalid(Id, "bad character")),
            (vec!["v=STSv1; id=abc; =x"], Invalid(Syntax, "empty name")),
            (
                vec!["v=STSv1; id=abc; junk"],
                Invalid(Syntax, "not name=value"),
            ),
            (
                vec!["v=STSv1; id=abc; e=a=b"],
                Invalid(Syntax, "bad character '='"),
            ),
            (vec!["v=STSv1; id=abc; e="], Invalid(Syntax, "empty value")),
            (
                vec!["v=STSv1; id=abc; _e=1"],
                Invalid(Syntax, "invalid field name '_e'"),
            ),
            (vec!["v=STSv1; id = abc"], Invalid(Syntax, "around '='")),
        ];
        for (records, expected) in cases {
            check(&records, &expected);
        }
    }

    #[test]
    fn parse_borrows_fields() {
        for (input, expected) in [
            (
                "v=STSv1; id=abc; ext=val",
                Ok(StsRecord {
                    id: "abc",
                    extensions: vec![("ext", "val")],
                    duplicates: vec![],
                }),
            ),
            (
                "v=STSv1;id=1;a=b;c=d",
                Ok(StsRecord {
                    id: "1",
                    extensions: vec![("a", "b"), ("c", "d")],
                    duplicates: vec![],
                }),
            ),
            ("v=spf1", Err(IssueCode::StsRecordSyntax)),
            ("v=STSv1,id=1", Err(IssueCode::StsRecordSyntax)),
        ] {
            assert_eq!(
                parse_sts_record(input).map_err(|issue| issue.code),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let record = format!("v=STSv1; id={}", "x".repeat(5000));
        let StsRecordVerdict::Invalid { issue } = evaluate_sts_records([record.as_str()]) else {
            panic!("expected invalid");
        };
        assert!(issue.message.len() < 300, "{}", issue.message);
    }
}
