//! Normalisation of an input domain (spec §1): trimmed, lowercased, IDN converted to A-labels, no
//! trailing dot, and rejected with a precise reason when the value is not a mail domain name.
//!
//! Rules (RFC 1035 §2.3.1 and §2.3.4 for labels and lengths, RFC 5890/5891 and UTS #46 for IDNs):
//! - surrounding whitespace (ASCII or Unicode) and a byte-order mark are trimmed; a control
//!   character (NUL included) anywhere else is an error;
//! - exactly one trailing dot is stripped (`example.com.` is the same name; `example.com..` is not);
//! - IP literals (`1.2.3.4`, `::1`, `[::1]`), URLs, e-mail addresses and wildcards are rejected;
//! - non-ASCII names and `xn--` labels go through `idna::domain_to_ascii` (UTS #46), and the
//!   result is validated again: labels 1–63 octets, the name at most 253 octets, letters, digits
//!   and hyphens only, no hyphen at either end of a label;
//! - decision: an underscore is rejected. Underscores appear in service names (`_mta-sts`,
//!   `_dmarc`), never in a mail domain, so an input containing one is a mistake in the list;
//! - decision: a single-label name (`com`, `localhost`) is rejected: it is not a registrable mail
//!   domain, and scanning it would only query the root's TLD delegation;
//! - decision: an all-numeric last label that is not an IPv4 address (`1.2.3`) is rejected, as no
//!   top-level domain is all digits (RFC 3696 §2).
//!
//! The function is idempotent, and an already-normalised ASCII name never reaches the IDNA code
//! (the fast path: this runs once per input row).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Longest label, in octets (RFC 1035 §2.3.4).
const LABEL_MAX: usize = 63;
/// Longest name without the trailing dot, in octets (RFC 1035 §2.3.4: 255 on the wire).
const NAME_MAX: usize = 253;

/// Why an input value is not a domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// Nothing but whitespace.
    Empty,
    /// An IPv4 or IPv6 address, bracketed or not.
    IpLiteral,
    /// A URL (`https://…`, or anything with a `/`).
    Url,
    /// An e-mail address (contains `@`).
    EmailAddress,
    /// A wildcard (`*`).
    Wildcard,
    /// An empty label: a leading dot, two dots in a row, or more than one trailing dot.
    EmptyLabel,
    /// A label over 63 octets (A-label form).
    LabelTooLong { label_len: usize },
    /// A name over 253 octets (A-label form, without the trailing dot).
    NameTooLong { len: usize },
    /// A character no host name may contain (after IDNA mapping, for IDNs).
    InvalidCharacter { ch: char },
    /// A label that begins or ends with a hyphen.
    HyphenAtLabelEdge,
    /// The last label is all digits but the name is no IPv4 address (RFC 3696 §2).
    NumericTld,
    /// Only one label (`com`, `localhost`).
    SingleLabel,
    /// The IDNA (UTS #46) conversion to A-labels failed; the text says how.
    Idna(String),
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::Empty => f.write_str("empty domain name"),
            DomainError::IpLiteral => f.write_str("an IP address, not a domain name"),
            DomainError::Url => f.write_str("a URL, not a domain name"),
            DomainError::EmailAddress => f.write_str("an e-mail address, not a domain name"),
            DomainError::Wildcard => f.write_str("a wildcard ('*'), not a domain name"),
            DomainError::EmptyLabel => {
                f.write_str("empty label (leading dot, consecutive dots or doubled trailing dot)")
            }
            DomainError::LabelTooLong { label_len } => {
                write!(f, "label of {label_len} octets (max {LABEL_MAX})")
            }
            DomainError::NameTooLong { len } => {
                write!(f, "name of {len} octets (max {NAME_MAX})")
            }
            DomainError::InvalidCharacter { ch: '_' } => f.write_str(
                "invalid character '_' (U+005F): underscores occur in service names, never in a mail domain",
            ),
            DomainError::InvalidCharacter { ch } => {
                write!(
                    f,
                    "invalid character '{}' (U+{:04X})",
                    ch.escape_debug(),
                    u32::from(*ch)
                )
            }
            DomainError::HyphenAtLabelEdge => f.write_str("label starts or ends with a hyphen"),
            DomainError::NumericTld => {
                f.write_str("the last label is all digits, which no top-level domain is")
            }
            DomainError::SingleLabel => {
                f.write_str("single-label name, not a registrable mail domain")
            }
            DomainError::Idna(reason) => write!(f, "invalid internationalized name: {reason}"),
        }
    }
}

impl std::error::Error for DomainError {}

/// Whether a byte may appear in a host name label: letter, digit or hyphen (RFC 1035 §2.3.1,
/// RFC 1123 §2.1 for a leading digit).
const fn is_ldh(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Whether a label is an A-label candidate (`xn--`, RFC 5890 §2.3.2.1), whose Punycode the IDNA
/// code must check.
fn is_xn_label(label: &str) -> bool {
    label
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
}

/// Validates an ASCII name without its trailing dot: non-empty labels of at most 63 octets, made
/// of letters, digits and hyphens, no hyphen at either end (RFC 1035 §2.3.1, RFC 1123 §2.1), at
/// most 253 octets in all (RFC 1035 §2.3.4), and not an IPv4 address or numeric TLD.
/// Case is not checked. Also used for policy `mx` values, where `allow_underscore` admits '_'
/// (real MX host names carry it, and an mx pattern must be able to name them).
pub(crate) fn check_ascii_labels(name: &str, allow_underscore: bool) -> Result<(), DomainError> {
    let allowed = |b: u8| is_ldh(b) || (allow_underscore && b == b'_');
    let mut last = "";
    for label in name.split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if let Some(&bad) = bytes.iter().find(|&&b| !allowed(b)) {
            // Not ASCII: report the whole character, not its first byte.
            let ch = label
                .chars()
                .find(|&c| !c.is_ascii() || !allowed(c as u8))
                .unwrap_or(char::from(bad));
            return Err(DomainError::InvalidCharacter { ch });
        }
        if bytes.len() > LABEL_MAX {
            return Err(DomainError::LabelTooLong {
                label_len: bytes.len(),
            });
        }
        if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
            return Err(DomainError::HyphenAtLabelEdge);
        }
        last = label;
    }
    if name.len() > NAME_MAX {
        return Err(DomainError::NameTooLong { len: name.len() });
    }
    // RFC 3696 §2: a top-level domain is never all digits; usually this is an IPv4 address.
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(if name.parse::<Ipv4Addr>().is_ok() {
            DomainError::IpLiteral
        } else {
            DomainError::NumericTld
        });
    }
    Ok(())
}

/// Rejects what is plainly some other kind of value before any IDNA mapping could blur it.
fn reject_non_domains(value: &str) -> Result<(), DomainError> {
    if let Some(ch) = value.chars().find(|c| c.is_control()) {
        return Err(DomainError::InvalidCharacter { ch });
    }
    if value.contains("://") {
        return Err(DomainError::Url);
    }
    if value.contains('@') {
        return Err(DomainError::EmailAddress);
    }
    if value.contains('/') {
        return Err(DomainError::Url);
    }
    let bare = value.strip_suffix('.').unwrap_or(value);
    if bare.starts_with('[') || bare.parse::<IpAddr>().is_ok() {
        return Err(DomainError::IpLiteral);
    }
    if value.contains('*') {
        return Err(DomainError::Wildcard);
    }
    // Any ASCII character other than letters, digits, '-' and '.' (space, '_', ':', ','), and
    // any Unicode whitespace: reported as written, before IDNA maps or rejects it.
    if let Some(ch) = value.chars().find(|&c| {
        (c.is_ascii() && !c.is_ascii_alphanumeric() && c != '-' && c != '.') || c.is_whitespace()
    }) {
        return Err(DomainError::InvalidCharacter { ch });
    }
    Ok(())
}

/// Normalises an input value to the A-label domain name the scanner queries (spec §1).
///
/// See the module documentation for the rules and decisions.
pub fn normalize_domain(input: &str) -> Result<String, DomainError> {
    let value = input.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if value.is_empty() {
        return Err(DomainError::Empty);
    }

    // Fast path: ASCII letters, digits, hyphens and dots, and no A-label to verify.
    if value.bytes().all(|b| is_ldh(b) || b == b'.') {
        let name = value.strip_suffix('.').unwrap_or(value);
        if !name.split('.').any(is_xn_label) {
            check_ascii_labels(name, false)?;
            if !name.contains('.') {
                return Err(DomainError::SingleLabel);
            }
            return Ok(name.to_ascii_lowercase());
        }
    }

    // Slow path: Unicode (IDN), A-labels, or something that is no domain name at all.
    reject_non_domains(value)?;
    let (name, stripped) = match value.strip_suffix('.') {
        Some(name) => (name, true),
        None => (value, false),
    };
    let ascii = idna::domain_to_ascii(name).map_err(|_| {
        DomainError::Idna(if name.is_ascii() {
            "an xn-- label is not valid Punycode for an IDNA (UTS #46) name".to_owned()
        } else {
            "IDNA (UTS #46) processing failed: a character or label is not allowed".to_owned()
        })
    })?;
    // UTS #46 maps ideographic full stops to '.', so a trailing one shows up only now.
    let ascii = match ascii.strip_suffix('.') {
        Some(without) if !stripped => without.to_owned(),
        _ => ascii,
    };
    if ascii.is_empty() {
        return Err(DomainError::Empty);
    }
    // UTS #46 output is lowercase but otherwise unchecked here (no STD3 rules, no lengths).
    check_ascii_labels(&ascii, false)?;
    if !ascii.contains('.') {
        return Err(DomainError::SingleLabel);
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        let ok63 = format!("{label63}.com");
        let bad64 = format!("{label64}.com");
        // 4 × 63 + 3 dots = 255 octets; trim to exactly 253 and 254.
        let four = [label63.as_str(); 4].join(".");
        let name253 = four.get(2..).unwrap_or_default().to_owned();
        let name254 = four.get(1..).unwrap_or_default().to_owned();
        let name253_dot = format!("{name253}.");
        let cases: Vec<(&str, Result<&str, DomainError>)> = vec![
            ("Example.COM.", Ok("example.com")),
            ("example.com", Ok("example.com")),
            (" bücher.de ", Ok("xn--bcher-kva.de")),
            ("BÜCHER.DE.", Ok("xn--bcher-kva.de")),
            ("xn--bcher-kva.de", Ok("xn--bcher-kva.de")),
            ("XN--BCHER-KVA.DE", Ok("xn--bcher-kva.de")),
            ("\u{feff}example.org\r\n", Ok("example.org")),
            ("\u{3000}example.org\t", Ok("example.org")),
            ("ｅｘａｍｐｌｅ．ｃｏｍ", Ok("example.com")),
            ("例え.テスト", Ok("xn--r8jz45g.xn--zckzah")),
            ("mail-1.example.co.uk", Ok("mail-1.example.co.uk")),
            (
                "r3---sn-abc.googlevideo.com",
                Ok("r3---sn-abc.googlevideo.com"),
            ),
            ("123.example.com", Ok("123.example.com")),
            (ok63.as_str(), Ok(ok63.as_str())),
            (name253.as_str(), Ok(name253.as_str())),
            (name253_dot.as_str(), Ok(name253.as_str())),
            ("1.2.3.4", Err(DomainError::IpLiteral)),
            ("1.2.3.4.", Err(DomainError::IpLiteral)),
            ("[::1]", Err(DomainError::IpLiteral)),
            ("::1", Err(DomainError::IpLiteral)),
            ("2001:db8::1", Err(DomainError::IpLiteral)),
            ("[192.0.2.1]", Err(DomainError::IpLiteral)),
            ("1.2.3", Err(DomainError::NumericTld)),
            ("https://example.com", Err(DomainError::Url)),
            ("example.com/path", Err(DomainError::Url)),
            ("user@example.com", Err(DomainError::EmailAddress)),
            ("mailto:user@example.com", Err(DomainError::EmailAddress)),
            ("*.example.com", Err(DomainError::Wildcard)),
            ("a..b", Err(DomainError::EmptyLabel)),
            (".example.com", Err(DomainError::EmptyLabel)),
            ("example.com..", Err(DomainError::EmptyLabel)),
            (".", Err(DomainError::EmptyLabel)),
            (
                bad64.as_str(),
                Err(DomainError::LabelTooLong { label_len: 64 }),
            ),
            (name254.as_str(), Err(DomainError::NameTooLong { len: 254 })),
            ("", Err(DomainError::Empty)),
            ("   ", Err(DomainError::Empty)),
            (
                "exa mple.com",
                Err(DomainError::InvalidCharacter { ch: ' ' }),
            ),
            (
                "exa\u{3000}mple.com",
                Err(DomainError::InvalidCharacter { ch: '\u{3000}' }),
            ),
            (
                "example.com\0",
                Err(DomainError::InvalidCharacter { ch: '\0' }),
            ),
            (
                "exa\u{7}mple.com",
                Err(DomainError::InvalidCharacter { ch: '\u{7}' }),
            ),
            (
                "_dmarc.example.com",
                Err(DomainError::InvalidCharacter { ch: '_' }),
            ),
            (
                "example.com:25",
                Err(DomainError::InvalidCharacter { ch: ':' }),
            ),
            ("a,b.com", Err(DomainError::InvalidCharacter { ch: ',' })),
            ("-a.com", Err(DomainError::HyphenAtLabelEdge)),
            ("a-.com", Err(DomainError::HyphenAtLabelEdge)),
            ("com", Err(DomainError::SingleLabel)),
            ("localhost.", Err(DomainError::SingleLabel)),
            ("bücher", Err(DomainError::SingleLabel)),
        ];
        for (input, expected) in cases {
            let got = normalize_domain(input);
            assert_eq!(got.as_deref(), expected.as_ref().map(|s| *s), "{input:?}");
            if let Ok(once) = got {
                assert_eq!(
                    normalize_domain(&once),
                    Ok(once.clone()),
                    "idempotent: {input:?}"
                );
            }
        }
    }

    #[test]
    fn invalid_a_labels_fail_in_idna() {
        for input in ["xn--.com", "xn--a-ecp.ru", "xn--ab-.com"] {
            let got = normalize_domain(input);
            assert!(
                matches!(
                    got,
                    Err(DomainError::Idna(_) | DomainError::HyphenAtLabelEdge)
                ),
                "{input:?}: {got:?}"
            );
        }
    }

    #[test]
    fn messages_are_precise() {
        for (error, expected) in [
            (
                DomainError::LabelTooLong { label_len: 70 },
                "label of 70 octets (max 63)",
            ),
            (
                DomainError::NameTooLong { len: 300 },
                "name of 300 octets (max 253)",
            ),
            (
                DomainError::InvalidCharacter { ch: ' ' },
                "invalid character ' ' (U+0020)",
            ),
            (
                DomainError::InvalidCharacter { ch: '\0' },
                "invalid character '\\0' (U+0000)",
            ),
            (
                DomainError::SingleLabel,
                "single-label name, not a registrable mail domain",
            ),
        ] {
            assert_eq!(error.to_string(), expected);
        }
    }
}
