//! The stable issue codes of spec §3: their names, default severities and the advice they carry.
//!
//! This is the one definition of the catalogue: the README's table, `--help` and the tests are
//! derived from [`IssueCode::ALL`], so the published list and the code cannot drift apart.

use std::fmt;

/// How bad a finding is (spec §2, "Severity rule").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// No finding at all (only used for the worst-severity column).
    None,
    /// Facts and advice.
    Info,
    /// A violated SHOULD or best practice.
    Warning,
    /// A violated MUST: senders ignore the policy.
    Error,
}

impl Severity {
    /// The lowercase name used in every output format.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses the output name back (used when recomputing statistics from result files).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Severity::None,
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! issue_codes {
    ($( $variant:ident => $name:literal, $severity:ident, $when:literal, $advice:expr; )*) => {
        /// A stable issue code (spec §3). The string form is a public contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum IssueCode { $( $variant, )* }

        impl IssueCode {
            /// Every code, in the order of the spec's table.
            pub const ALL: &'static [IssueCode] = &[ $( IssueCode::$variant, )* ];

            /// The stable snake_case name.
            pub const fn as_str(self) -> &'static str {
                match self { $( IssueCode::$variant => $name, )* }
            }

            /// The severity the code has unless the context changes it
            /// (`mx_not_covered` and `tlsrpt_missing` depend on mode and on MTA-STS).
            pub const fn default_severity(self) -> Severity {
                match self { $( IssueCode::$variant => Severity::$severity, )* }
            }

            /// When the code is reported, in one line (the spec's "when" column).
            pub const fn when(self) -> &'static str {
                match self { $( IssueCode::$variant => $when, )* }
            }

            /// A plain sentence telling the domain owner what to do, if there is anything to do.
            pub const fn recommendation(self) -> Option<&'static str> {
                match self { $( IssueCode::$variant => $advice, )* }
            }

            /// Looks a code up by its stable name.
            pub fn from_name(name: &str) -> Option<IssueCode> {
                match name { $( $name => Some(IssueCode::$variant), )* _ => None }
            }
        }
    };
}

issue_codes! {
    InputInvalidDomain => "input_invalid_domain", Error,
        "input value is not a valid domain name",
        Some("Fix the input list: this value is not a domain name.");
    DomainNxdomain => "domain_nxdomain", Info,
        "the domain does not exist (MX lookup NXDOMAIN)",
        None;
    DnsLookupFailed => "dns_lookup_failed", Error,
        "SERVFAIL, timeout or refused for a lookup",
        Some("Make sure the domain's authoritative name servers answer for _mta-sts, _smtp._tls and MX queries.");
    MxMissing => "mx_missing", Info,
        "no MX, or null MX (RFC 7505)",
        None;
    StsRecordMissing => "sts_record_missing", Info,
        "no v=STSv1 TXT record",
        Some("Publish an MTA-STS policy and a TXT record at _mta-sts (\"v=STSv1; id=...\") so senders must use TLS to reach you.");
    StsRecordMultiple => "sts_record_multiple", Error,
        "more than one v=STSv1 record",
        Some("Keep exactly one v=STSv1 TXT record at _mta-sts: with more than one, senders ignore the policy.");
    StsRecordSyntax => "sts_record_syntax", Error,
        "record violates the RFC 8461 §3.1 grammar",
        Some("Rewrite the _mta-sts TXT record as \"v=STSv1; id=<1-32 letters or digits>\", with v=STSv1 first and in that case.");
    StsRecordIdInvalid => "sts_record_id_invalid", Error,
        "id missing, empty, longer than 32, or not alphanumeric",
        Some("Set the record's id to 1-32 ASCII letters or digits, for example a timestamp like 20260101T000000 without punctuation.");
    PolicyHostUnresolvable => "policy_host_unresolvable", Error,
        "mta-sts.D has no address",
        Some("Publish an A or AAAA record for the mta-sts host that serves the policy.");
    PolicyConnectFailed => "policy_connect_failed", Error,
        "TCP connection refused or unreachable",
        Some("Make the policy host accept HTTPS connections on port 443.");
    PolicyAddressForbidden => "policy_address_forbidden", Error,
        "mta-sts.D resolves only to loopback, private, link-local or other non-public addresses",
        Some("Point the mta-sts host at a public address: senders cannot fetch a policy from a private network.");
    PolicyTimeout => "policy_timeout", Error,
        "connect, TLS, or response exceeded its timeout",
        Some("Make the policy host answer promptly: senders give up on slow policy fetches.");
    PolicyTlsInvalid => "policy_tls_invalid", Error,
        "certificate untrusted, expired, wrong name; handshake failure",
        Some("Serve the policy with a certificate valid for the mta-sts host name from a public CA, over TLS 1.2 or later.");
    PolicyRedirect => "policy_redirect", Error,
        "3xx answer",
        Some("Serve the policy directly with status 200: senders must not follow redirects.");
    PolicyHttpStatus => "policy_http_status", Error,
        "any other non-200 status",
        Some("Serve the policy file at /.well-known/mta-sts.txt with status 200.");
    PolicyTooLarge => "policy_too_large", Error,
        "body over the size cap",
        Some("Keep the policy file small: a few lines of key: value.");
    PolicyContentType => "policy_content_type", Warning,
        "media type not text/plain",
        Some("Serve the policy with Content-Type: text/plain.");
    PolicySyntax => "policy_syntax", Error,
        "a line that is not key: value, invalid UTF-8, empty body",
        Some("Fix the policy file: every line must be \"key: value\" in UTF-8.");
    PolicyVersionInvalid => "policy_version_invalid", Error,
        "version missing or not STSv1",
        Some("Start the policy with \"version: STSv1\".");
    PolicyModeInvalid => "policy_mode_invalid", Error,
        "mode missing or not one of enforce, testing, none",
        Some("Set \"mode:\" to enforce, testing or none.");
    PolicyMaxAgeInvalid => "policy_max_age_invalid", Error,
        "max_age missing, not 1-10 digits, or > 31557600",
        Some("Set \"max_age:\" to a whole number of seconds no larger than 31557600, e.g. 604800 or more for enforce.");
    PolicyMxMissing => "policy_mx_missing", Error,
        "no mx in testing or enforce mode",
        Some("List every MX host (or a *.domain pattern that covers it) on its own \"mx:\" line.");
    PolicyMxInvalid => "policy_mx_invalid", Error,
        "an mx value that is not [\"*.\"]Domain (e-mail address, URL, IP, inner wildcard)",
        Some("Write each mx value as a host name or a *.domain pattern: no addresses, URLs or inner wildcards.");
    PolicyDuplicateField => "policy_duplicate_field", Warning,
        "a non-mx field repeated (first wins)",
        Some("Remove repeated version, mode or max_age lines: only the first counts.");
    PolicyUnknownField => "policy_unknown_field", Info,
        "a key the RFC does not define",
        None;
    PolicyVersionNotFirst => "policy_version_not_first", Info,
        "version is not on the first line (not an RFC violation)",
        Some("Put \"version: STSv1\" on the first line of the policy: some checkers expect it there.");
    PolicyBom => "policy_bom", Warning,
        "the policy body starts with a UTF-8 byte-order mark",
        Some("Save the policy file as UTF-8 without a byte-order mark: strict parsers read the first key as \"\\u{feff}version\" instead of \"version\".");
    MxNotCovered => "mx_not_covered", Error,
        "an MX host matches no mx pattern of the policy",
        Some("Add an mx line for every MX host, or remove the MX record: in enforce mode MTA-STS senders will not deliver to it.");
    MxPatternUnused => "mx_pattern_unused", Info,
        "a pattern matches no MX host",
        Some("Remove mx patterns that no longer match an MX host.");
    MaxAgeShort => "max_age_short", Warning,
        "max_age below 86400 (testing) or below 604800 (enforce)",
        Some("Raise max_age to at least 604800 for enforce mode (86400 for testing) so the policy protects between fetches.");
    ModeTesting => "mode_testing", Info,
        "policy is not enforced yet",
        Some("Move to mode: enforce once TLS-RPT reports show no failures.");
    ModeNone => "mode_none", Info,
        "policy switches MTA-STS off",
        Some("Set mode: testing, then enforce, to protect inbound mail.");
    TlsrptMissing => "tlsrpt_missing", Warning,
        "no TLS-RPT record",
        Some("Publish a TLS-RPT record (_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:...\") so you hear about delivery failures.");
    TlsrptMultiple => "tlsrpt_multiple", Error,
        "more than one v=TLSRPTv1 record",
        Some("Keep exactly one v=TLSRPTv1 TXT record at _smtp._tls.");
    TlsrptInvalid => "tlsrpt_invalid", Error,
        "bad grammar, no rua, or a URI that is not mailto/https",
        Some("Rewrite the TLS-RPT record as \"v=TLSRPTv1; rua=mailto:you@example.com\" (mailto: or https: URIs, comma-separated).");
    PolicyWithoutRecord => "policy_without_record", Warning,
        "policy served but no TXT record (only when probing is on)",
        Some("Publish the _mta-sts TXT record: without it senders never fetch the policy.");
    StsRecordDuplicateField => "sts_record_duplicate_field", Warning,
        "a field repeated in the TXT record (the first wins, RFC 8461 §3.2)",
        Some("Remove the repeated field from the _mta-sts TXT record: only the first counts, and a second id invites confusion about which policy is current.");
    MxStarttlsMissing => "mx_starttls_missing", Error,
        "an MX accepted the connection but does not offer STARTTLS (only with --probe-mx)",
        Some("Offer STARTTLS on every MX host: in enforce mode MTA-STS senders will not deliver to one without it.");
    MxTlsInvalid => "mx_tls_invalid", Error,
        "an MX's TLS handshake failed or its certificate is not valid for the MX host name (only with --probe-mx)",
        Some("Give every MX host a certificate from a public CA that names the MX host (DNS name in subjectAltName), with its full chain: in enforce mode MTA-STS senders refuse the others.");
    MxCertExpiring => "mx_cert_expiring", Warning,
        "an MX certificate is valid but expires within 14 days (only with --probe-mx)",
        Some("Renew the MX certificate before it expires: an expired certificate stops mail from MTA-STS senders in enforce mode.");
    MxUnreachable => "mx_unreachable", Info,
        "an MX could not be probed: no address, connection refused or timed out, 4xx/5xx greeting (inconclusive; port 25 may be blocked where the scanner runs)",
        None;
    DomainTimeout => "domain_timeout", Error,
        "the scan's per-domain deadline expired before the checks finished (outcome error)",
        None;
}

impl IssueCode {
    /// Whether the code is a MUST violation that makes senders ignore the policy
    /// (spec §3, "outcome effect" = invalid).
    pub const fn invalidates_policy(self) -> bool {
        use IssueCode::*;
        matches!(
            self,
            StsRecordMultiple
                | StsRecordSyntax
                | StsRecordIdInvalid
                | PolicyHostUnresolvable
                | PolicyConnectFailed
                | PolicyAddressForbidden
                | PolicyTimeout
                | PolicyTlsInvalid
                | PolicyRedirect
                | PolicyHttpStatus
                | PolicyTooLarge
                | PolicySyntax
                | PolicyVersionInvalid
                | PolicyModeInvalid
                | PolicyMaxAgeInvalid
                | PolicyMxMissing
                | PolicyMxInvalid
        )
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about one domain: a code, its severity in this context, and what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: IssueCode,
    pub severity: Severity,
    pub message: String,
}

impl Issue {
    /// A finding with the code's default severity.
    pub fn new(code: IssueCode, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity: code.default_severity(),
            message: message.into(),
        }
    }

    /// A finding whose severity depends on the context.
    pub fn with_severity(code: IssueCode, severity: Severity, message: impl Into<String>) -> Self {
        Issue {
            code,
            severity,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &code in IssueCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate name {code}");
            assert_eq!(IssueCode::from_name(code.as_str()), Some(code));
        }
        assert_eq!(IssueCode::ALL.len(), 42);
    }

    #[test]
    fn the_spec_table_names_every_code() {
        // The spec is the contract: every code it lists must exist here, with its severity.
        let spec = include_str!("../tests/fixtures/spec-codes.txt");
        for line in spec.lines().filter(|l| !l.trim().is_empty()) {
            let (name, severity) = line.split_once(' ').unwrap_or((line, ""));
            let code = IssueCode::from_name(name).unwrap_or_else(|| panic!("missing code {name}"));
            assert_eq!(code.default_severity().as_str(), severity.trim(), "{name}");
        }
    }
}
