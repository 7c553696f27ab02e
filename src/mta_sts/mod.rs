//! Pure parsers for the MTA-STS TXT record, the policy file, the TLS-RPT record and mx matching.

pub mod mx;
pub mod mx_class;
pub mod policy;
pub mod record;
pub mod tlsrpt;

/// The longest quoted value, in characters, that a message repeats before truncating it.
const QUOTE_MAX_CHARS: usize = 80;

/// Quotes a value taken from the internet for an issue message: in single quotes, cut to
/// 80 characters on a char boundary (with "…"), control characters escaped (`\r`, `\u{0}`), so a
/// message is always one readable line whatever the input.
pub(crate) fn quote(value: &str) -> String {
    let (shown, cut) = match value.char_indices().nth(QUOTE_MAX_CHARS) {
        Some((at, _)) => (value.get(..at).unwrap_or(value), true),
        None => (value, false),
    };
    let mut out = String::with_capacity(shown.len() + 5);
    out.push('\'');
    for c in shown.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push('…');
    }
    out.push('\'');
    out
}

/// WSP of RFC 5234 (space or horizontal tab), the only whitespace the RFC 8461/8460 grammars allow.
pub(crate) const fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Trims WSP (space, tab) from both ends.
pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches(is_wsp)
}

/// `ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`: the extension field name of
/// RFC 8461 §3.1 (`sts-ext-name`), §3.2 (`sts-policy-ext-name`) and RFC 8460 §3 (`tlsrpt-ext-name`).
pub(crate) fn is_ext_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric()
                && rest.len() <= 31
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        None => false,
    }
}

/// `ext-value = 1*(%x21-3A / %x3C / %x3E-7E)`: printable ASCII except "=", ";" and space
/// (RFC 8461 §3.1 `sts-ext-value`, RFC 8460 §3 `tlsrpt-ext-value`). Returns the first offending
/// character, or `None` when the value is valid; an empty value is reported as `Some(None)`.
pub(crate) fn ext_value_error(value: &str) -> Option<Option<char>> {
    if value.is_empty() {
        return Some(None);
    }
    value
        .chars()
        .find(|&c| !matches!(c, '\x21'..='\x3a' | '\x3c' | '\x3e'..='\x7e'))
        .map(Some)
}

/// How a discarded TXT record plainly tries to be an MTA-STS or TLS-RPT record (spec §2: such a
/// record is reported, not hidden as missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NearMiss {
    /// The text is wrapped in quote characters that are part of the TXT data.
    Quoted,
    /// Whitespace before the version tag.
    LeadingWhitespace,
    /// `v = STSv1`: whitespace around "=".
    Spacing,
    /// `v=stsv1`, `V=STSv1`: the version tag is case-sensitive.
    Case,
    /// `v=STSv1 id=1`, `v=STSv1,id=1`: no ";" after the version.
    NoDelimiter,
    /// `id=1; v=STSv1`: the version is not the first field.
    NotFirst,
}

/// Finds a `v=<version>` field (any case, any spacing) in a record that senders discard, and says
/// what keeps it from being a candidate. Returns the offending field, trimmed.
/// Allocation-free: it runs on every unrelated TXT string (SPF, verification tokens).
/// What a set of TXT records at one name holds for one version tag (`v=STSv1`, `v=TLSRPTv1`).
pub(crate) struct RecordScan<'a> {
    /// Records that begin with the tag: the others are discarded (RFC 8461 §3.1, RFC 8460 §3).
    pub count: usize,
    /// The first of them.
    pub candidate: Option<&'a str>,
    /// With no candidate, the first record that plainly tries and fails: kind, field, record.
    pub first_near_miss: Option<(NearMiss, &'a str, &'a str)>,
}

/// Sorts the records at one name into candidates for `tag` (`v=` + `version`) and near misses.
pub(crate) fn scan_records<'a, I: IntoIterator<Item = &'a str>>(
    records: I,
    tag: &str,
    version: &str,
) -> RecordScan<'a> {
    let mut scan = RecordScan {
        count: 0,
        candidate: None,
        first_near_miss: None,
    };
    for record in records {
        if begins_with_tag(record, tag) {
            scan.count += 1;
            scan.candidate.get_or_insert(record);
        } else if scan.count == 0
            && scan.first_near_miss.is_none()
            && let Some((kind, field)) = near_miss(record, version)
        {
            scan.first_near_miss = Some((kind, field, record));
        }
    }
    scan
}

/// A record that begins with `tag` followed by `*WSP ";"` or its end.
pub(crate) fn begins_with_tag(record: &str, tag: &str) -> bool {
    fields_after_tag(record, tag).is_ok()
}

/// Why a record's version tag is not where the grammar puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagError {
    /// The record does not begin with the tag.
    Missing,
    /// The tag is not followed by `*WSP ";"` or the end.
    NoDelimiter,
}

/// The fields after the version tag: RFC 8461 §3.1 `sts-version sts-field-delim` and RFC 8460 §3
/// `tlsrpt-version field-delim`, i.e. the tag first (case-sensitive), then `*WSP ";"` or nothing.
pub(crate) fn fields_after_tag<'a>(record: &'a str, tag: &str) -> Result<&'a str, TagError> {
    let rest = record
        .strip_prefix(tag)
        .ok_or(TagError::Missing)?
        .trim_start_matches(is_wsp);
    if rest.is_empty() {
        Ok("")
    } else {
        rest.strip_prefix(';').ok_or(TagError::NoDelimiter)
    }
}

/// Why the fields after the version tag break the delimiter rules of the ABNF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelimiterError {
    /// Two `;` with only whitespace between them (`id=1;;`): the grammar has no empty field.
    EmptyField,
    /// Whitespace after the last field with no `;` after it (`id=1 `): `*WSP` belongs to a
    /// delimiter only.
    TrailingWhitespace,
}

impl DelimiterError {
    /// The message part saying what is wrong, for the record named by `tag`.
    pub(crate) fn describe(self, record: &str) -> String {
        match self {
            DelimiterError::EmptyField => format!(
                "repeated ';' (an empty field) in {}: the grammar allows one ';' between fields and at most one at the end; some lenient parsers accept it, senders following the RFC treat the record as invalid",
                quote(record)
            ),
            DelimiterError::TrailingWhitespace => format!(
                "whitespace after the last field in {}: the grammar allows it only around ';'; some lenient parsers accept it, senders following the RFC treat the record as invalid",
                quote(record)
            ),
        }
    }
}

/// The fields of a record after `tag field-delim`, split exactly by the ABNF shared by RFC 8461
/// §3.1 and RFC 8460 §3: `1*(field-delim field) [field-delim]` with `field-delim = *WSP ";" *WSP`
/// (the first delimiter was consumed by [`fields_after_tag`]). Fields come back without the
/// delimiter's whitespace; an empty field or trailing whitespace is a [`DelimiterError`].
/// Allocation-free.
pub(crate) struct Fields<'a> {
    rest: &'a str,
    done: bool,
}

pub(crate) fn split_fields(after_tag: &str) -> Fields<'_> {
    Fields {
        rest: after_tag.trim_start_matches(is_wsp),
        done: false,
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<&'a str, DelimiterError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let (segment, followed_by_delimiter) = match self.rest.split_once(';') {
            Some((segment, after)) => {
                self.rest = after.trim_start_matches(is_wsp);
                (segment, true)
            }
            None => {
                let segment = self.rest;
                self.rest = "";
                (segment, false)
            }
        };
        let field = segment.trim_end_matches(is_wsp);
        if field.is_empty() {
            self.done = true;
            return Some(Err(DelimiterError::EmptyField));
        }
        if !followed_by_delimiter && field.len() != segment.len() {
            self.done = true;
            return Some(Err(DelimiterError::TrailingWhitespace));
        }
        Some(Ok(field))
    }
}

pub(crate) fn near_miss<'a>(record: &'a str, version: &str) -> Option<(NearMiss, &'a str)> {
    for (index, field) in record.split(';').enumerate() {
        let trimmed = trim_wsp(field);
        let Some((name, raw_value)) = trimmed.split_once('=') else {
            continue;
        };
        let bare_name = trim_wsp(name);
        let unquoted_name = bare_name.trim_start_matches(['"', '\'']);
        let value = trim_wsp(raw_value);
        let token = value
            .split(|c: char| is_wsp(c) || c == ',')
            .next()
            .unwrap_or(value);
        let unquoted_token = token.trim_end_matches(['"', '\'']);
        if !unquoted_name.eq_ignore_ascii_case("v") || !unquoted_token.eq_ignore_ascii_case(version)
        {
            continue;
        }
        let kind = if index > 0 {
            NearMiss::NotFirst
        } else if unquoted_name.len() != bare_name.len() {
            NearMiss::Quoted
        } else if field.starts_with(is_wsp) {
            NearMiss::LeadingWhitespace
        } else if name.len() != bare_name.len() || raw_value.starts_with(is_wsp) {
            NearMiss::Spacing
        } else if name != "v" || token != version {
            NearMiss::Case
        } else {
            NearMiss::NoDelimiter
        };
        return Some((kind, trimmed));
    }
    None
}

/// Says what is wrong with a near-miss record; `tag` is the exact version tag (`v=STSv1`).
pub(crate) fn describe_near_miss(kind: NearMiss, field: &str, record: &str, tag: &str) -> String {
    match kind {
        NearMiss::Quoted => format!(
            "the record text begins with a quote character ({}): the quotes are part of the TXT data",
            quote(record)
        ),
        NearMiss::LeadingWhitespace => format!("whitespace before {tag} in {}", quote(record)),
        NearMiss::Spacing => format!(
            "no whitespace is allowed around '=' in the version tag: found {}",
            quote(field)
        ),
        NearMiss::Case => format!(
            "version tag is case-sensitive: found {}, must be '{tag}'",
            quote(
                field
                    .split(|c: char| c == ',' || is_wsp(c))
                    .next()
                    .unwrap_or(field)
            )
        ),
        NearMiss::NoDelimiter => format!(
            "{tag} must be followed by ';' before the next field: found {}",
            quote(field)
        ),
        NearMiss::NotFirst => format!(
            "{tag} must come first (version ordering): found {}",
            quote(record)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_truncates_on_char_boundaries_and_escapes_controls() {
        let long = "é".repeat(100);
        let expected_long = format!("'{}…'", "é".repeat(80));
        for (input, expected) in [
            ("abc", "'abc'"),
            ("", "''"),
            ("a\rb\0", "'a\\rb\\u{0}'"),
            (long.as_str(), expected_long.as_str()),
        ] {
            assert_eq!(quote(input), expected, "{input:?}");
        }
    }

    #[test]
    fn ext_name_grammar() {
        let max = format!("a{}", "b".repeat(31));
        let over = format!("a{}", "b".repeat(32));
        for (input, expected) in [
            ("ext", true),
            ("9x_y-z.w", true),
            (max.as_str(), true),
            (over.as_str(), false),
            ("", false),
            ("_x", false),
            ("a b", false),
            ("é", false),
        ] {
            assert_eq!(is_ext_name(input), expected, "{input:?}");
        }
    }

    /// RFC 8461 §3.1 / RFC 8460 §3: `1*(field-delim field) [field-delim]`,
    /// `field-delim = *WSP ";" *WSP`.
    #[test]
    fn fields_follow_the_delimiter_abnf() {
        use DelimiterError::*;
        let cases: &[(&str, &[Result<&str, DelimiterError>])] = &[
            ("id=1", &[Ok("id=1")]),
            (" id=1", &[Ok("id=1")]),
            ("id=1;", &[Ok("id=1")]),
            ("id=1; ", &[Ok("id=1")]),
            ("id=1 ;", &[Ok("id=1")]),
            ("id=1\t; e=2 ;\t", &[Ok("id=1"), Ok("e=2")]),
            ("", &[]),
            ("id=1 ", &[Err(TrailingWhitespace)]),
            ("id=1; e=2\t", &[Ok("id=1"), Err(TrailingWhitespace)]),
            ("id=1;;", &[Ok("id=1"), Err(EmptyField)]),
            ("id=1; ;", &[Ok("id=1"), Err(EmptyField)]),
            (";id=1", &[Err(EmptyField)]),
            ("id=1;;e=2", &[Ok("id=1"), Err(EmptyField)]),
        ];
        for (input, expected) in cases {
            let got: Vec<_> = split_fields(input).collect();
            assert_eq!(got, *expected, "{input:?}");
        }
    }

    #[test]
    fn ext_value_grammar() {
        for (input, expected) in [
            ("val", None),
            ("a:b/c", None),
            ("", Some(None)),
            ("a=b", Some(Some('='))),
            ("a b", Some(Some(' '))),
            ("é", Some(Some('é'))),
        ] {
            assert_eq!(ext_value_error(input), expected, "{input:?}");
        }
    }
}
