//! Matching an MX host name against a policy's `mx` pattern (RFC 8461 §4.1), without allocating.

/// Removes exactly one trailing dot (an absolute name is the same host).
fn strip_one_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

/// Whether the MX `host` is covered by the policy `pattern` (RFC 8461 §4.1).
///
/// - Equal, ignoring ASCII case and one trailing dot on either side.
/// - Or the pattern is `*.S` and the host is exactly one non-empty label followed by `.S`: the
///   wildcard stands for the whole left-most label only, so `*.example.com` matches
///   `mail.example.com` but neither `example.com` nor `a.b.example.com`.
///
/// Empty names never match.
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = strip_one_dot(pattern);
    let host = strip_one_dot(host);
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    // RFC 8461 §4.1: "*.S" matches one label followed by ".S".
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((label, rest)) => {
                !label.is_empty() && !suffix.is_empty() && rest.eq_ignore_ascii_case(suffix)
            }
            None => false,
        };
    }
    // RFC 8461 §4.1: otherwise the names must be equal (DNS names compare case-insensitively).
    pattern.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_rfc_8461_section_4_1() {
        for ((pattern, host), expected) in [
            (("mail.example.com", "mail.example.com"), true),
            (("Mail.Example.COM", "mail.example.com"), true),
            (("mail.example.com.", "mail.example.com"), true),
            (("mail.example.com", "MAIL.example.com."), true),
            (("mail.example.com.", "mail.example.com."), true),
            (("mail.example.com..", "mail.example.com"), false),
            (("mail.example.com", "mail2.example.com"), false),
            (("mail.example.com", "example.com"), false),
            (("*.example.com", "mail.example.com"), true),
            (("*.example.com", "MX1.EXAMPLE.COM."), true),
            (("*.example.com.", "mx1.example.com"), true),
            (("*.example.com", "example.com"), false),
            (("*.example.com", "a.b.example.com"), false),
            (("*.example.com", ".example.com"), false),
            (("*.example.com", "mail.example.org"), false),
            (("*.example.com", "mailexample.com"), false),
            (("*.", "mail."), false),
            (("*", "mail"), false),
            (("", ""), false),
            (("", "mail.example.com"), false),
            (("mail.example.com", ""), false),
            (("aspmx.l.google.com", "aspmx.l.google.com"), true),
            (
                (
                    "*.mail.protection.outlook.com",
                    "example-com.mail.protection.outlook.com",
                ),
                true,
            ),
        ] {
            assert_eq!(
                mx_pattern_matches(pattern, host),
                expected,
                "{pattern:?} vs {host:?}"
            );
        }
    }
}
