//! The MTA-STS policy file served at `https://mta-sts.D/.well-known/mta-sts.txt` (RFC 8461 §3.2):
//! its line grammar, its fields and the issues each violation raises.
//!
//! ```text
//! sts-policy-record        = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP)
//!                            [sts-policy-term]
//! sts-policy-field         = sts-policy-version / sts-policy-mode / sts-policy-max-age /
//!                            sts-policy-mx / sts-policy-extension
//! sts-policy-field-delim   = ":" *WSP
//! sts-policy-version-value = %s"STSv1"
//! sts-policy-mode-value    = %s"testing" / %s"enforce" / %s"none"
//! sts-policy-mx-value      = ["*."] Domain
//! sts-policy-max-age-value = 1*10(DIGIT)
//! sts-policy-ext-name      = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-policy-term          = LF / CRLF
//! ```
//!
//! Decisions where the RFC or the brief leave room:
//! - Blank (or whitespace-only) lines are skipped anywhere; an all-blank body is "empty policy".
//! - A key with whitespace around it (`  mode: enforce`, `mode : enforce`) does not match the
//!   grammar: `policy_syntax` (strict parsers do not see the field). The trimmed key is still
//!   read, so the owner hears of the whitespace once rather than of a "missing" field as well.
//! - No more than 3 issues of one code are listed, then one summary issue, so a 64 KiB garbage
//!   body cannot produce thousands of issues.
//! - `policy_mx_missing` is raised only when there is no `mx` line at all and the mode is testing
//!   or enforce; with `mx` lines that are all invalid, `policy_mx_invalid` says it. With a missing
//!   or invalid mode it is not raised (the mode issue says it).
//! - Valid `mx` patterns are kept lowercased, trailing dot stripped, duplicates dropped.
//! - A UTF-8 byte-order mark is stripped silently; invalid UTF-8 and UTF-16 are one
//!   `policy_syntax` issue each and nothing else is parsed.

use super::{is_ext_name, is_wsp, quote, trim_wsp};
use crate::domain::check_ascii_labels;
use crate::issues::{Issue, IssueCode, Severity};
use std::collections::HashSet;
use std::net::IpAddr;

/// The largest `max_age` (RFC 8461 §3.2: "with a maximum value of 31557600", one year).
pub const MAX_AGE_MAX: u64 = 31_557_600;

/// Most issues of one code listed before a summary issue.
pub(crate) const MAX_ISSUES_PER_CODE: usize = 3;

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    /// The name as written in the policy (and in every output format).
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }

    /// Parses a mode name; case-sensitive, as in the ABNF (`%s"enforce"`).
    pub fn from_name(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "testing" => Some(Mode::Testing),
            "none" => Some(Mode::None),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a policy, each present only when valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `STSv1` when the version field is valid.
    pub version: Option<String>,
    pub mode: Option<Mode>,
    pub max_age: Option<u64>,
    /// Valid patterns as written, lowercased, trailing dot stripped, without duplicates.
    pub mx: Vec<String>,
}

/// A parsed policy and every issue found in it.
#[derive(Debug, Clone, Default)]
pub struct PolicyParse {
    pub policy: Policy,
    pub issues: Vec<Issue>,
}

impl PolicyParse {
    /// Whether senders would apply the policy: no issue has [`Severity::Error`].
    pub fn is_usable(&self) -> bool {
        !self
            .issues
            .iter()
            .any(|issue| issue.severity == Severity::Error)
    }
}

/// Collects issues, listing at most [`MAX_ISSUES_PER_CODE`] per code and counting the rest.
#[derive(Default)]
struct Issues {
    list: Vec<Issue>,
    /// Codes with issues left out, and how many.
    suppressed: Vec<(IssueCode, usize)>,
}

impl Issues {
    /// Adds an issue; the message is only built when it will be listed.
    fn push(&mut self, code: IssueCode, message: impl FnOnce() -> String) {
        let listed = self.list.iter().filter(|i| i.code == code).count();
        if listed < MAX_ISSUES_PER_CODE {
            self.list.push(Issue::new(code, message()));
        } else if let Some(entry) = self.suppressed.iter_mut().find(|(c, _)| *c == code) {
            entry.1 += 1;
        } else {
            self.suppressed.push((code, 1));
        }
    }

    fn finish(mut self) -> Vec<Issue> {
        for (code, count) in self.suppressed {
            self.list.push(Issue::new(
                code,
                format!("and {count} more {code} issues not listed"),
            ));
        }
        self.list
    }
}

/// A field seen in the body: its line number and value (first occurrence).
type Seen<'a> = Option<(usize, &'a str)>;

/// The fields the RFC defines (RFC 8461 §3.2), for "did you mean" hints.
const KNOWN_FIELDS: [&str; 4] = ["version", "mode", "max_age", "mx"];

/// The defined field an unknown key was probably meant to be: equal ignoring ASCII case, '-' and
/// '_' (`Mode`, `max-age`, `MaxAge`).
fn suggestion(key: &str) -> Option<&'static str> {
    let squash = |s: &str| {
        s.bytes()
            .filter(|b| !matches!(b, b'-' | b'_'))
            .map(|b| b.to_ascii_lowercase())
            .collect::<Vec<u8>>()
    };
    let wanted = squash(key);
    KNOWN_FIELDS
        .into_iter()
        .find(|known| squash(known) == wanted)
}

/// Parses a policy body read as bytes: reports UTF-16 or invalid UTF-8 as one `policy_syntax`
/// issue (RFC 8461 §3.2: the policy is UTF-8 text). A UTF-8 byte-order mark is skipped for the
/// parse but reported (`policy_bom`, warning): strict parsers read the first key as
/// `\u{feff}version` and reject the policy.
pub fn parse_policy_bytes(body: &[u8]) -> PolicyParse {
    if let Some(bom) = body
        .get(..2)
        .filter(|p| *p == b"\xff\xfe" || *p == b"\xfe\xff")
    {
        let order = if bom == b"\xff\xfe" { "FF FE" } else { "FE FF" };
        return only_issue(format!(
            "policy is UTF-16 encoded (byte-order mark {order}); it must be UTF-8"
        ));
    }
    let (offset, text) = match body.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => (3, rest),
        None => (0, body),
    };
    match std::str::from_utf8(text) {
        Ok(text) => {
            let mut parse = parse_policy(text);
            if offset > 0 {
                parse.issues.insert(
                    0,
                    Issue::new(
                        IssueCode::PolicyBom,
                        "policy starts with a UTF-8 byte-order mark (EF BB BF): strict parsers read the first key as '\\u{feff}version'",
                    ),
                );
            }
            parse
        }
        Err(error) => only_issue(format!(
            "policy is not valid UTF-8 at byte {}",
            error.valid_up_to() + offset
        )),
    }
}

fn only_issue(message: String) -> PolicyParse {
    PolicyParse {
        policy: Policy::default(),
        issues: vec![Issue::new(IssueCode::PolicySyntax, message)],
    }
}

/// Parses a policy body (RFC 8461 §3.2) into its fields and issues.
///
/// Does not judge `max_age` length or the mode's strength: the validator does.
pub fn parse_policy(body: &str) -> PolicyParse {
    let mut issues = Issues::default();
    let mut policy = Policy::default();
    let mut first_line: Option<usize> = None;
    let mut seen_mx: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut version: Seen = None;
    let mut mode: Seen = None;
    let mut max_age: Seen = None;
    let mut mx_lines = 0usize;
    // Hints for a missing field: the first unknown key that looks like it.
    let mut hints: [Seen; 4] = [None; 4];
    let mut unknown: HashSet<&str> = HashSet::new();

    // §3.2: `sts-policy-term = LF / CRLF`.
    for (index, raw) in body.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim_matches(is_wsp).is_empty() {
            continue;
        }
        let is_first = first_line.is_none();
        first_line.get_or_insert(number);

        // §3.2: `field-name ":" *WSP field-value`.
        let Some((key, rest)) = line.split_once(':') else {
            issues.push(IssueCode::PolicySyntax, || {
                format!(
                    "line {number} is not 'key: value' (no ':'): {}",
                    quote(line)
                )
            });
            continue;
        };
        let mut key = key;
        if !is_ext_name(key) {
            issues.push(IssueCode::PolicySyntax, || {
                let why = if key.is_empty() {
                    "empty field name".to_owned()
                } else if key.starts_with(is_wsp) {
                    "whitespace before the field name".to_owned()
                } else if key.ends_with(is_wsp) {
                    "whitespace before ':'".to_owned()
                } else {
                    format!("invalid field name {}", quote(key))
                };
                format!("line {number}: {why}: {}", quote(line))
            });
            // Recover `  mode: enforce` as `mode`; anything else is not a field.
            match trim_wsp(key) {
                trimmed if is_ext_name(trimmed) => key = trimmed,
                _ => continue,
            }
        }
        // §3.2: `*WSP` after ':'; trailing WSP is not part of the value.
        let value = rest.trim_matches(is_wsp);

        let slot = match key {
            "version" => {
                // Not an RFC rule (spec §2): hosted checkers expect version on the first line.
                if !is_first && version.is_none() {
                    issues.push(IssueCode::PolicyVersionNotFirst, || {
                        format!(
                            "version is on line {number}, not on the first line (line {})",
                            first_line.unwrap_or(1)
                        )
                    });
                }
                &mut version
            }
            "mode" => &mut mode,
            "max_age" => &mut max_age,
            "mx" => {
                mx_lines += 1;
                match validate_mx_pattern(value) {
                    Ok(()) => {
                        let pattern = value
                            .strip_suffix('.')
                            .unwrap_or(value)
                            .to_ascii_lowercase();
                        // Duplicates are dropped, in linear time: a 64 KiB body can hold
                        // thousands of patterns.
                        if seen_mx.insert(pattern.clone()) {
                            policy.mx.push(pattern);
                        }
                    }
                    Err(reason) => issues.push(IssueCode::PolicyMxInvalid, || {
                        format!("mx {} on line {number}: {reason}", quote(value))
                    }),
                }
                continue;
            }
            _ => {
                if let Some(known) = suggestion(key) {
                    let at = KNOWN_FIELDS.iter().position(|k| *k == known).unwrap_or(0);
                    if let Some(hint) = hints.get_mut(at) {
                        hint.get_or_insert((number, key));
                    }
                }
                if unknown.insert(key) {
                    issues.push(IssueCode::PolicyUnknownField, || {
                        let mut message =
                            format!("unknown field {} on line {number} ignored", quote(key));
                        if let Some(known) = suggestion(key) {
                            message.push_str(&format!(
                                "; keys are case-sensitive and exact: did you mean '{known}'?"
                            ));
                        }
                        message
                    });
                }
                continue;
            }
        };
        // §3.2 (spec §2): a repeated non-mx field, the first wins.
        match slot {
            Some((first, _)) => {
                let first = *first;
                issues.push(IssueCode::PolicyDuplicateField, || {
                    format!(
                        "field '{key}' repeated on line {number} ({}); the first, on line {first}, counts",
                        quote(value)
                    )
                });
            }
            None => *slot = Some((number, value)),
        }
    }

    if first_line.is_none() {
        return only_issue("empty policy".to_owned());
    }

    let missing = |field: &str, hint: Seen| match hint {
        Some((number, key)) => format!(
            "{field} field missing (line {number} has {}: keys are case-sensitive and exact)",
            quote(key)
        ),
        None => format!("{field} field missing"),
    };
    let [version_hint, mode_hint, max_age_hint, _] = hints;

    // §3.2: `version: STSv1`, required.
    match version {
        Some((_, "STSv1")) => policy.version = Some("STSv1".to_owned()),
        Some((number, value)) => issues.push(IssueCode::PolicyVersionInvalid, || {
            format!("version {} on line {number} must be 'STSv1'", quote(value))
        }),
        None => issues.push(IssueCode::PolicyVersionInvalid, || {
            missing("version", version_hint)
        }),
    }

    // §3.2: `mode: enforce / testing / none`, required, case-sensitive.
    match mode {
        Some((number, value)) => match Mode::from_name(value) {
            Some(parsed) => policy.mode = Some(parsed),
            None => issues.push(IssueCode::PolicyModeInvalid, || {
                let lower = value.to_ascii_lowercase();
                match Mode::from_name(&lower) {
                    Some(meant) => format!(
                        "mode {} on line {number} must be lowercase: '{meant}' (values are case-sensitive)",
                        quote(value)
                    ),
                    None => format!(
                        "mode {} on line {number} is not enforce, testing or none",
                        quote(value)
                    ),
                }
            }),
        },
        None => issues.push(IssueCode::PolicyModeInvalid, || missing("mode", mode_hint)),
    }

    // §3.2: `max_age: 1*10DIGIT`, at most 31557600, required.
    match max_age {
        Some((number, value)) => match parse_max_age(value) {
            Ok(seconds) => policy.max_age = Some(seconds),
            Err(reason) => issues.push(IssueCode::PolicyMaxAgeInvalid, || {
                format!("max_age {} on line {number}: {reason}", quote(value))
            }),
        },
        None => issues.push(IssueCode::PolicyMaxAgeInvalid, || {
            missing("max_age", max_age_hint)
        }),
    }

    // §3.2: "mx" is required unless the mode is "none".
    if mx_lines == 0
        && let Some(mode @ (Mode::Enforce | Mode::Testing)) = policy.mode
    {
        issues.push(IssueCode::PolicyMxMissing, || {
            format!("no mx field: mode {mode} requires at least one mx pattern")
        });
    }

    PolicyParse {
        policy,
        issues: issues.finish(),
    }
}

/// `sts-policy-max-age-value = 1*10(DIGIT)`, at most [`MAX_AGE_MAX`] (RFC 8461 §3.2).
fn parse_max_age(value: &str) -> Result<u64, String> {
    if value.is_empty() {
        return Err("empty value".to_owned());
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a whole number of seconds (digits only)".to_owned());
    }
    if value.len() > 10 {
        return Err(format!("{} digits (max 10)", value.len()));
    }
    let seconds = value
        .parse::<u64>()
        .map_err(|_| "not a whole number of seconds".to_owned())?;
    if seconds > MAX_AGE_MAX {
        return Err(format!("{seconds} exceeds {MAX_AGE_MAX} (one year)"));
    }
    Ok(seconds)
}

/// Checks one `mx` value against `sts-policy-mx-value = ["*."] Domain` (RFC 8461 §3.2, `Domain`
/// from RFC 5321 §4.1.2: letter-digit-hyphen labels; IDNs as A-labels, RFC 8461 §3.2).
/// A single trailing dot is accepted. Decision: '_' is accepted too, although `Domain` excludes
/// it: some providers' MX hosts carry one (`_dc-mx.<hash>.example.com`), the pattern must name
/// them, and senders compare names without checking their grammar. On error, says why.
pub fn validate_mx_pattern(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty value".to_owned());
    }
    if value.chars().any(char::is_whitespace) {
        return Err("contains whitespace: one host name per mx line".to_owned());
    }
    if value.contains('@') {
        return Err("an e-mail address, not a host name".to_owned());
    }
    if value.contains("://") || value.contains('/') {
        return Err("a URL, not a host name".to_owned());
    }
    if !value.is_ascii() {
        return Err(
            "non-ASCII characters: internationalized names must be written as A-labels (xn--...)"
                .to_owned(),
        );
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.starts_with('[') || name.parse::<IpAddr>().is_ok() {
        return Err("an IP address, not a host name".to_owned());
    }
    if name == "*" {
        return Err("no host name after the wildcard".to_owned());
    }
    // §3.2: the wildcard is only the whole left-most label, "*." followed by a domain.
    let host = name.strip_prefix("*.").unwrap_or(name);
    if host.contains('*') {
        return Err(
            "'*' is allowed only as the whole left-most label, as in '*.example.com'".to_owned(),
        );
    }
    if host.is_empty() {
        return Err("no host name".to_owned());
    }
    if name.len() > 253 {
        return Err(format!("name of {} octets (max 253)", name.len()));
    }
    check_ascii_labels(host, true).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(parse: &PolicyParse) -> Vec<IssueCode> {
        parse.issues.iter().map(|i| i.code).collect()
    }

    const GOOD: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n";

    #[test]
    fn mode_names() {
        for (input, expected) in [
            ("enforce", Some(Mode::Enforce)),
            ("testing", Some(Mode::Testing)),
            ("none", Some(Mode::None)),
            ("Enforce", None),
            ("", None),
        ] {
            assert_eq!(Mode::from_name(input), expected, "{input:?}");
            if let Some(mode) = expected {
                assert_eq!(mode.as_str(), input);
            }
        }
    }

    #[test]
    fn policy_rules() {
        use IssueCode::*;
        let long_garbage = "junk line\n".repeat(1000);
        let many_unknown: String = (0..50).map(|i| format!("k{i}: v\n")).collect();
        let many_unknown = format!("{GOOD}{many_unknown}");
        let cases: Vec<(&str, Vec<IssueCode>, &str)> = vec![
            (GOOD, vec![], ""),
            (
                "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n",
                vec![],
                "",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800",
                vec![],
                "",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n\n\n",
                vec![],
                "",
            ),
            (
                "version:STSv1\nmode:\tenforce \nmx:  mail.example.com\t\nmax_age:604800",
                vec![],
                "",
            ),
            ("version: STSv1\nmode: none\nmax_age: 86400\n", vec![], ""),
            ("", vec![PolicySyntax], "empty policy"),
            ("  \n\r\n\t\n", vec![PolicySyntax], "empty policy"),
            (
                "version: STSv1\nmode: enforce\njunk\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicySyntax],
                "line 3 is not 'key: value' (no ':'): 'junk'",
            ),
            (
                "version: STSv1\n  mode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicySyntax],
                "line 2: whitespace before the field name",
            ),
            (
                "version: STSv1\nmode : enforce\nmx: a.example.com\nmax_age: 604800\n",
                vec![PolicySyntax],
                "whitespace before ':'",
            ),
            (
                "version: STSv1\n# see: x\nmode: enforce\nmx: a.example.com\nmax_age: 1\n",
                vec![PolicySyntax],
                "invalid field name '# see'",
            ),
            (
                "version: STSv1\nMode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyUnknownField, PolicyModeInvalid],
                "mode field missing (line 2 has 'Mode'",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax-age: 604800\n",
                vec![PolicyUnknownField, PolicyMaxAgeInvalid],
                "did you mean 'max_age'?",
            ),
            (
                "mode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyVersionInvalid],
                "version field missing",
            ),
            (
                "version: STSv2\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyVersionInvalid],
                "version 'STSv2' on line 1 must be 'STSv1'",
            ),
            (
                "version: stsv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyVersionInvalid],
                "'stsv1'",
            ),
            (
                "mode: enforce\nversion: STSv1\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyVersionNotFirst],
                "version is on line 2",
            ),
            (
                "\n\nversion: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![],
                "",
            ),
            (
                "version: STSv1\nmode: Enforce\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyModeInvalid],
                "mode 'Enforce' on line 2 must be lowercase: 'enforce'",
            ),
            (
                "version: STSv1\nmode: [enforce|testing|none] # pick\nmx: a.example.com\nmax_age: 1\n",
                vec![PolicyModeInvalid],
                "'[enforce|testing|none] # pick'",
            ),
            (
                "version: STSv1\nmode:\nmx: a.example.com\nmax_age: 1\n",
                vec![PolicyModeInvalid],
                "mode '' on line 2",
            ),
            (
                "version: STSv1\nmx: mail.example.com\nmax_age: 604800\n",
                vec![PolicyModeInvalid],
                "mode field missing",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\n",
                vec![PolicyMaxAgeInvalid],
                "max_age field missing",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: +86400\n",
                vec![PolicyMaxAgeInvalid],
                "max_age '+86400' on line 4: not a whole number",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 86400s\n",
                vec![PolicyMaxAgeInvalid],
                "'86400s'",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 1e6\n",
                vec![PolicyMaxAgeInvalid],
                "'1e6'",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age:  \n",
                vec![PolicyMaxAgeInvalid],
                "empty value",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 12345678901\n",
                vec![PolicyMaxAgeInvalid],
                "11 digits (max 10)",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 31557601\n",
                vec![PolicyMaxAgeInvalid],
                "31557601 exceeds 31557600",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nmax_age: 31557600\n",
                vec![],
                "",
            ),
            (
                "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example.com\nmax_age: 86400\n",
                vec![PolicyDuplicateField],
                "field 'mode' repeated on line 3 ('enforce'); the first, on line 2, counts",
            ),
            (
                "version: STSv1\nmode: enforce\nmax_age: 604800\n",
                vec![PolicyMxMissing],
                "no mx field: mode enforce requires",
            ),
            (
                "version: STSv1\nmode: testing\nmax_age: 604800\n",
                vec![PolicyMxMissing],
                "mode testing",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: user@example.com\nmax_age: 604800\n",
                vec![PolicyMxInvalid],
                "mx 'user@example.com' on line 3: an e-mail address",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: Priority 5: ALT1.X.COM\nmax_age: 1\n",
                vec![PolicyMxInvalid],
                "whitespace",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.com\nfoo: 1\nfoo: 2\nbar: x\nmax_age: 1\n",
                vec![PolicyUnknownField, PolicyUnknownField],
                "unknown field 'foo' on line 4 ignored",
            ),
            (
                long_garbage.as_str(),
                vec![
                    PolicySyntax,
                    PolicySyntax,
                    PolicySyntax,
                    PolicyVersionInvalid,
                    PolicyModeInvalid,
                    PolicyMaxAgeInvalid,
                    PolicySyntax,
                ],
                "and 997 more policy_syntax issues not listed",
            ),
            (
                many_unknown.as_str(),
                vec![
                    PolicyUnknownField,
                    PolicyUnknownField,
                    PolicyUnknownField,
                    PolicyUnknownField,
                ],
                "and 47 more policy_unknown_field issues not listed",
            ),
            (
                "version: STSv1\rmode: enforce\rmx: a.example.com\rmax_age: 1\r",
                vec![PolicyVersionInvalid, PolicyModeInvalid, PolicyMaxAgeInvalid],
                "\\r",
            ),
        ];
        for (body, expected, fragment) in cases {
            let parse = parse_policy(body);
            assert_eq!(codes(&parse), expected, "{body:?}: {:#?}", parse.issues);
            assert!(
                parse.issues.iter().any(|i| i.message.contains(fragment)) || fragment.is_empty(),
                "{body:?}: no message contains {fragment:?}: {:#?}",
                parse.issues
            );
            let has_error = expected
                .iter()
                .any(|c| c.default_severity() == Severity::Error);
            assert_eq!(parse.is_usable(), !has_error, "{body:?}");
        }
    }

    #[test]
    fn fields_are_extracted() {
        for (body, expected) in [
            (
                GOOD,
                Policy {
                    version: Some("STSv1".to_owned()),
                    mode: Some(Mode::Enforce),
                    max_age: Some(604800),
                    mx: vec!["mail.example.com".to_owned()],
                },
            ),
            (
                "version: STSv1\nmode: testing\nmx: MX1.Example.COM.\nmx: *.example.net\nmx: mx1.example.com\nmx: bad@x\nmax_age: 0086400\n",
                Policy {
                    version: Some("STSv1".to_owned()),
                    mode: Some(Mode::Testing),
                    max_age: Some(86400),
                    mx: vec!["mx1.example.com".to_owned(), "*.example.net".to_owned()],
                },
            ),
            (
                "version: STSv1\nmode: testing\nmode: enforce\nmax_age: 5\nmax_age: 6\nmx: a.b\n",
                Policy {
                    version: Some("STSv1".to_owned()),
                    mode: Some(Mode::Testing),
                    max_age: Some(5),
                    mx: vec!["a.b".to_owned()],
                },
            ),
            ("version: STSv2\nmode: bad\nmax_age: x\n", Policy::default()),
        ] {
            assert_eq!(parse_policy(body).policy, expected, "{body:?}");
        }
    }

    #[test]
    fn bytes_decoding() {
        let utf16: Vec<u8> = "version: STSv1\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16 = [&[0xff, 0xfe][..], &utf16].concat();
        let bom = [&b"\xef\xbb\xbf"[..], GOOD.as_bytes()].concat();
        let latin1 = b"version: STSv1\nmode: enforce\n# caf\xe9\n".to_vec();
        let bom_parse = parse_policy_bytes(&bom);
        assert_eq!(codes(&bom_parse), vec![IssueCode::PolicyBom]);
        assert!(
            bom_parse.is_usable(),
            "a BOM is a warning, not a MUST violation"
        );
        for (body, expected) in [
            (GOOD.as_bytes().to_vec(), None),
            (
                utf16,
                Some("policy is UTF-16 encoded (byte-order mark FF FE); it must be UTF-8"),
            ),
            (latin1, Some("policy is not valid UTF-8 at byte 34")),
            (b"\xfe\xff\x00v".to_vec(), Some("byte-order mark FE FF")),
        ] {
            let parse = parse_policy_bytes(&body);
            match expected {
                None => assert_eq!(parse.issues, vec![], "{body:?}"),
                Some(fragment) => {
                    assert_eq!(codes(&parse), vec![IssueCode::PolicySyntax], "{body:?}");
                    assert!(
                        parse.issues.iter().any(|i| i.message.contains(fragment)),
                        "{:?}",
                        parse.issues
                    );
                }
            }
        }
    }

    #[test]
    fn mx_patterns() {
        let label64 = format!("{}.example.com", "a".repeat(64));
        for (input, expected) in [
            ("mail.example.com", Ok(())),
            ("MAIL.EXAMPLE.COM", Ok(())),
            ("mail.example.com.", Ok(())),
            ("*.example.com", Ok(())),
            ("*.mail.protection.outlook.com", Ok(())),
            ("xn--bcher-kva.de", Ok(())),
            ("mx-1.example.com", Ok(())),
            ("localhost", Ok(())),
            ("", Err("empty value")),
            (".", Err("no host name")),
            ("a..", Err("empty label")),
            ("*.", Err("no host name")),
            ("*", Err("no host name")),
            ("*.*", Err("'*' is allowed only")),
            ("user@example.com", Err("e-mail address")),
            ("https://mail.example.com", Err("URL")),
            ("://google.com", Err("URL")),
            ("mail.example.com/x", Err("URL")),
            ("192.0.2.1", Err("IP address")),
            ("[2001:db8::1]", Err("IP address")),
            ("2001:db8::1", Err("IP address")),
            ("mail.*.example.com", Err("'*' is allowed only")),
            ("*mx.example.com", Err("'*' is allowed only")),
            ("*.*.example.com", Err("'*' is allowed only")),
            ("mail example.com", Err("whitespace")),
            ("bücher.de", Err("A-labels")),
            (label64.as_str(), Err("label of 64 octets (max 63)")),
            ("mail..example.com", Err("empty label")),
            ("_dc-mx.7448e41c9abd.example.shop", Ok(())),
            ("mx#1.example.com", Err("invalid character '#'")),
            ("a.example.com,b.example.com", Err("invalid character ','")),
            ("mail.example.com:25", Err("invalid character ':'")),
            ("-mail.example.com", Err("hyphen")),
        ] {
            let got = validate_mx_pattern(input);
            match expected {
                Ok(()) => assert_eq!(got, Ok(()), "{input:?}"),
                Err(fragment) => assert!(
                    got.as_ref().is_err_and(|reason| reason.contains(fragment)),
                    "{input:?}: {got:?} lacks {fragment:?}"
                ),
            }
        }
    }

    /// Every collected real-world policy parses without panicking; a few are checked by hand
    /// (see tests/fixtures/policies/INDEX.csv for each file's origin and quirks).
    #[test]
    fn real_world_corpus() {
        use IssueCode::*;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policies");
        let mut parsed = 0;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("fixture directory")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        entries.sort();
        for path in &entries {
            let bytes = std::fs::read(path).expect("fixture");
            let parse = parse_policy_bytes(&bytes);
            assert!(
                parse.issues.len() <= 40,
                "{path:?}: {} issues",
                parse.issues.len()
            );
            parsed += 1;
        }
        assert!(parsed > 300, "only {parsed} fixtures");

        let read = |name: &str| {
            parse_policy_bytes(&std::fs::read(format!("{dir}/{name}")).expect("fixture"))
        };
        struct Case {
            file: &'static str,
            mode: Option<Mode>,
            max_age: Option<u64>,
            mx: &'static [&'static str],
            codes: &'static [IssueCode],
        }
        for case in [
            // Clean enforce policy, LF.
            Case {
                file: "0008.txt",
                mode: Some(Mode::Enforce),
                max_age: Some(604800),
                mx: &[
                    "aspmx2.googlemail.com",
                    "aspmx3.googlemail.com",
                    "alt1.aspmx.l.google.com",
                    "alt2.aspmx.l.google.com",
                    "aspmx.l.google.com",
                ],
                codes: &[],
            },
            // CRLF line endings.
            Case {
                file: "0014.txt",
                mode: Some(Mode::Enforce),
                max_age: Some(1209600),
                mx: &["mailserver.adisa.org.uk"],
                codes: &[],
            },
            // UTF-8 byte-order mark (reported, spec §3 `policy_bom`), CRLF, wildcards.
            Case {
                file: "0056.txt",
                mode: Some(Mode::Enforce),
                max_age: Some(2419200),
                mx: &[
                    "*.aspmx.l.google.com",
                    "aspmx.l.google.com",
                    "*.googlemail.com",
                ],
                codes: &[PolicyBom],
            },
            // UTF-16 with a byte-order mark.
            Case {
                file: "0058.txt",
                mode: None,
                max_age: None,
                mx: &[],
                codes: &[PolicySyntax],
            },
            // Not a policy at all: prose.
            Case {
                file: "0003.txt",
                mode: None,
                max_age: None,
                mx: &[],
                codes: &[
                    PolicySyntax,
                    PolicySyntax,
                    PolicySyntax,
                    PolicyVersionInvalid,
                    PolicyModeInvalid,
                    PolicyMaxAgeInvalid,
                    PolicySyntax,
                ],
            },
            // A TXT record pasted where the policy should be.
            Case {
                file: "0368.txt",
                mode: None,
                max_age: None,
                mx: &[],
                codes: &[
                    PolicySyntax,
                    PolicyVersionInvalid,
                    PolicyModeInvalid,
                    PolicyMaxAgeInvalid,
                ],
            },
            // Whitespace only.
            Case {
                file: "0382.txt",
                mode: None,
                max_age: None,
                mx: &[],
                codes: &[PolicySyntax],
            },
            // Indented lines (4 of them: 3 listed, 1 summarised), read despite the error.
            Case {
                file: "0036.txt",
                mode: Some(Mode::Testing),
                max_age: Some(604800),
                mx: &["mxc.ptempresas.pt", "mxp.ptempresas.pt"],
                codes: &[PolicySyntax, PolicySyntax, PolicySyntax, PolicySyntax],
            },
            // A provider's MX host with an underscore: accepted.
            Case {
                file: "0342.txt",
                mode: Some(Mode::Enforce),
                max_age: Some(604800),
                mx: &["_dc-mx.7448e41c9abd.sincerek3dprints.shop"],
                codes: &[],
            },
            // Wrong version value.
            Case {
                file: "0384.txt",
                mode: Some(Mode::Testing),
                max_age: Some(604800),
                mx: &["mx1.mail.icloud.com", "mx2.mail.icloud.com"],
                codes: &[PolicyVersionInvalid],
            },
            // Template comments left in: bad mode, mx with trailing comments.
            Case {
                file: "0013.txt",
                mode: None,
                max_age: None,
                mx: &[],
                codes: &[
                    PolicyMxInvalid,
                    PolicyMxInvalid,
                    PolicySyntax,
                    PolicySyntax,
                    PolicyModeInvalid,
                    PolicyMaxAgeInvalid,
                ],
            },
            // MX priorities pasted into mx lines; uppercase names.
            Case {
                file: "0028.txt",
                mode: Some(Mode::Testing),
                max_age: Some(31557600),
                mx: &["smtp.google.com"],
                codes: &[
                    PolicyMxInvalid,
                    PolicyMxInvalid,
                    PolicyMxInvalid,
                    PolicyMxInvalid,
                ],
            },
            // An mx that is a URL fragment.
            Case {
                file: "0024.txt",
                mode: Some(Mode::Enforce),
                max_age: Some(604800),
                mx: &[],
                codes: &[PolicyMxInvalid],
            },
        ] {
            let parse = read(case.file);
            let codes: Vec<IssueCode> = parse.issues.iter().map(|i| i.code).collect();
            assert_eq!(codes, case.codes, "{}: {:#?}", case.file, parse.issues);
            assert_eq!(parse.policy.mode, case.mode, "{}", case.file);
            assert_eq!(parse.policy.max_age, case.max_age, "{}", case.file);
            assert_eq!(parse.policy.mx, case.mx, "{}", case.file);
        }
    }
}
