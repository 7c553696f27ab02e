//! The scenario catalogue of the test internet: what each kind of lab domain publishes in DNS
//! and serves over HTTPS, and the verdict a correct scanner gives for it.
//!
//! A lab domain is named `<slug>-<n>.test` (or just `<slug>.test`): the servers derive
//! everything from the slug, so a million-domain lab costs no memory.

use crate::issues::IssueCode;
use crate::lab::ca::CertKind;
use crate::report::Outcome;

/// What a name answers in DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txt {
    /// The name exists with no TXT record.
    None,
    /// TXT records, each given as its character-strings.
    Records(&'static [&'static [&'static str]]),
    /// A CNAME to this provider name, whose TXT record is the standard valid one.
    Cname(&'static str),
    ServFail,
    Refused,
    /// No answer at all (the resolver times out).
    Silent,
}

/// The domain's MX set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mx {
    /// `mx1.D` (10) and `mx2.D` (20).
    Standard,
    /// `mx1.D`, `mx2.D` and `backup.example.net` (30), which the policy does not cover.
    WithUncovered,
    /// RFC 7505 null MX.
    Null,
    /// A "." exchange beside `mx1.D` (a broken null MX).
    NullAmongReal,
    /// These exchanges, absolute (`valid.mx.test.`: the lab's SMTP servers, spec §7).
    Hosts(&'static [(u16, &'static str)]),
    /// The domain exists without MX.
    None,
    /// The whole domain is NXDOMAIN.
    NxDomain,
}

/// Where `mta-sts.D` points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyHost {
    /// A record: the lab's HTTPS server on 127.0.0.1.
    Lab,
    /// CNAME to the shared provider host `mta-sts.provider.test` (also the lab server).
    ProviderCname,
    /// No address record.
    Missing,
    /// 127.0.0.2, where nothing listens: connection refused.
    Refusing,
    /// 10.255.255.1, a private address the scanner must refuse to contact.
    Private,
    /// The name server answers SERVFAIL for the policy host (its lookup fails, spec §4).
    ServFail,
    /// A: 127.0.0.2 (refused) then the lab server: the fetch must try the next address.
    RefusingThenLab,
    /// A: 10.255.255.1 (forbidden); AAAA: ::1, where the lab server also listens.
    PrivateV4WithV6,
}

/// What the HTTPS server does for a policy host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Answer with this status, content type and body (`{d}` is replaced by the domain).
    Policy {
        status: u16,
        content_type: &'static str,
        body: &'static str,
    },
    /// Answer 200 text/plain with these bytes (not necessarily UTF-8).
    Bytes(&'static [u8]),
    /// Answer 301 with a Location.
    Redirect(&'static str),
    /// A body of this many bytes.
    Oversized(usize),
    /// Accept the TCP connection, never speak.
    Tarpit,
    /// Accept, read the ClientHello, answer with bytes that are not TLS.
    Garbage,
    /// Refuse TLS 1.2+ with a protocol_version alert, as a TLS-1.0-only server does.
    Tls10Only,
    /// A valid policy dripped one byte per 200 ms.
    SlowDrip,
    /// A chunked body that never ends.
    Endless,
    /// A valid policy as an HTTP/1.0 answer delimited by closing the connection.
    CloseDelimited,
}

/// One kind of lab domain.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub slug: &'static str,
    pub about: &'static str,
    pub sts: Txt,
    pub tlsrpt: Txt,
    pub mx: Mx,
    pub host: PolicyHost,
    pub cert: CertKind,
    pub serve: Serve,
    /// The outcome a correct scanner reports.
    pub outcome: Outcome,
    /// Codes a correct scanner reports (others may accompany them).
    pub codes: &'static [IssueCode],
    /// Delay before every DNS answer for this domain (a slow name server), in milliseconds.
    pub dns_delay_ms: u64,
}

const STS: Txt = Txt::Records(&[&["v=STSv1; id=20260101T000000;"]]);
const RPT: Txt = Txt::Records(&[&["v=TLSRPTv1; rua=mailto:tlsrpt@example.net"]]);
const ENFORCE: &str = "version: STSv1\nmode: enforce\nmx: mx1.{d}\nmx: *.{d}\nmax_age: 604800\n";
const PLAIN: &str = "text/plain";
/// An enforce policy covering the lab's SMTP hosts (`<behaviour>.mx.test`).
const ENFORCE_LAB_MX: &str = "version: STSv1\nmode: enforce\nmx: *.mx.test\nmax_age: 604800\n";
const TESTING_LAB_MX: &str = "version: STSv1\nmode: testing\nmx: *.mx.test\nmax_age: 604800\n";

const fn policy(body: &'static str) -> Serve {
    Serve::Policy {
        status: 200,
        content_type: PLAIN,
        body,
    }
}

/// A valid, enforced, well-reported domain; the base the other scenarios vary.
const BASE: Scenario = Scenario {
    slug: "valid-enforce",
    about: "enforce policy covering every MX, TLS-RPT published",
    sts: STS,
    tlsrpt: RPT,
    mx: Mx::Standard,
    host: PolicyHost::Lab,
    cert: CertKind::Valid,
    serve: policy(ENFORCE),
    outcome: Outcome::Valid,
    codes: &[],
    dns_delay_ms: 0,
};

use IssueCode as C;

/// Every scenario, each producing the codes it names.
pub const SCENARIOS: &[Scenario] = &[
    BASE,
    Scenario {
        slug: "valid-testing",
        about: "testing mode, one-day max_age",
        serve: policy("version: STSv1\nmode: testing\nmx: *.{d}\nmax_age: 86400\n"),
        codes: &[C::ModeTesting],
        ..BASE
    },
    Scenario {
        slug: "mode-none",
        about: "mode none switches MTA-STS off",
        serve: policy("version: STSv1\nmode: none\nmax_age: 86400\n"),
        codes: &[C::ModeNone],
        ..BASE
    },
    Scenario {
        slug: "crlf",
        about: "policy with CRLF line ends",
        serve: policy("version: STSv1\r\nmode: enforce\r\nmx: *.{d}\r\nmax_age: 1209600\r\n"),
        ..BASE
    },
    Scenario {
        slug: "no-sts",
        about: "receives mail, no MTA-STS",
        sts: Txt::None,
        tlsrpt: Txt::None,
        outcome: Outcome::Absent,
        codes: &[C::StsRecordMissing, C::TlsrptMissing],
        host: PolicyHost::Missing,
        ..BASE
    },
    Scenario {
        slug: "nxdomain",
        about: "the domain does not exist",
        sts: Txt::None,
        tlsrpt: Txt::None,
        mx: Mx::NxDomain,
        outcome: Outcome::Absent,
        codes: &[C::DomainNxdomain],
        host: PolicyHost::Missing,
        ..BASE
    },
    Scenario {
        slug: "no-mx",
        about: "exists without MX",
        sts: Txt::None,
        tlsrpt: Txt::None,
        mx: Mx::None,
        outcome: Outcome::Absent,
        codes: &[C::MxMissing, C::StsRecordMissing],
        host: PolicyHost::Missing,
        ..BASE
    },
    Scenario {
        slug: "null-mx",
        about: "RFC 7505 null MX",
        sts: Txt::None,
        tlsrpt: Txt::None,
        mx: Mx::Null,
        outcome: Outcome::Absent,
        codes: &[C::MxMissing],
        host: PolicyHost::Missing,
        ..BASE
    },
    Scenario {
        slug: "servfail",
        about: "_mta-sts lookup answers SERVFAIL",
        sts: Txt::ServFail,
        outcome: Outcome::Error,
        codes: &[C::DnsLookupFailed],
        ..BASE
    },
    Scenario {
        slug: "refused",
        about: "_mta-sts lookup answers REFUSED",
        sts: Txt::Refused,
        outcome: Outcome::Error,
        codes: &[C::DnsLookupFailed],
        ..BASE
    },
    Scenario {
        slug: "dns-silent",
        about: "_mta-sts lookup is never answered",
        sts: Txt::Silent,
        outcome: Outcome::Error,
        codes: &[C::DnsLookupFailed],
        ..BASE
    },
    Scenario {
        slug: "record-multiple",
        about: "two v=STSv1 records",
        sts: Txt::Records(&[&["v=STSv1; id=1;"], &["v=STSv1; id=2;"]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordMultiple],
        ..BASE
    },
    Scenario {
        slug: "record-order",
        about: "v=STSv1 not first (version ordering)",
        sts: Txt::Records(&[&["id=20260101; v=STSv1"]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordSyntax],
        ..BASE
    },
    Scenario {
        slug: "record-case",
        about: "version tag in the wrong case",
        sts: Txt::Records(&[&["v=stsv1; id=20260101"]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordSyntax],
        ..BASE
    },
    Scenario {
        slug: "record-id",
        about: "id with punctuation",
        sts: Txt::Records(&[&["v=STSv1; id=2026-01-01;"]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordIdInvalid],
        ..BASE
    },
    Scenario {
        slug: "record-split",
        about: "the TXT record split over several strings",
        sts: Txt::Records(&[&["v=STSv1; ", "id=2026", "0101;"]]),
        ..BASE
    },
    Scenario {
        slug: "record-big",
        about: "a TXT answer too large for UDP (TCP fallback)",
        sts: Txt::Records(&[
            &["v=STSv1; id=big1;"],
            &[
                "google-site-verification=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ],
            &[
                "ms-verification=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            ],
            &[
                "apple-verification=cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
            ],
            &[
                "facebook-verification=ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
            ],
            &[
                "atlassian-verification=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            ],
            &[
                "docusign=ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            ],
        ]),
        ..BASE
    },
    Scenario {
        slug: "hosted",
        about: "_mta-sts and mta-sts delegated by CNAME to a shared provider",
        sts: Txt::Cname("_mta-sts.provider.test"),
        host: PolicyHost::ProviderCname,
        ..BASE
    },
    Scenario {
        slug: "host-missing",
        about: "mta-sts.D has no address",
        host: PolicyHost::Missing,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyHostUnresolvable],
        ..BASE
    },
    Scenario {
        slug: "connect-refused",
        about: "nothing listens at the policy host",
        host: PolicyHost::Refusing,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyConnectFailed],
        ..BASE
    },
    Scenario {
        slug: "private-address",
        about: "mta-sts.D points into a private network",
        host: PolicyHost::Private,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyAddressForbidden],
        ..BASE
    },
    Scenario {
        slug: "tarpit",
        about: "accepts TCP, never speaks",
        serve: Serve::Tarpit,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTimeout],
        ..BASE
    },
    Scenario {
        slug: "slow-drip",
        about: "policy dripped a byte at a time",
        serve: Serve::SlowDrip,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTimeout],
        ..BASE
    },
    Scenario {
        slug: "endless",
        about: "a body that never ends",
        serve: Serve::Endless,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTooLarge],
        ..BASE
    },
    Scenario {
        slug: "garbage-tls",
        about: "answers the handshake with bytes that are not TLS",
        serve: Serve::Garbage,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "tls10",
        about: "a TLS-1.0-only server",
        serve: Serve::Tls10Only,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "cert-expired",
        about: "expired certificate",
        cert: CertKind::Expired,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "cert-wrong-name",
        about: "certificate for another name",
        cert: CertKind::WrongName,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "cert-untrusted",
        about: "certificate from an untrusted CA",
        cert: CertKind::Untrusted,
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "redirect",
        about: "301 to another URL",
        serve: Serve::Redirect("https://www.example.net/mta-sts.txt"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyRedirect],
        ..BASE
    },
    Scenario {
        slug: "http-404",
        about: "policy file not found",
        serve: Serve::Policy {
            status: 404,
            content_type: "text/html",
            body: "<h1>Not Found</h1>",
        },
        outcome: Outcome::Invalid,
        codes: &[C::PolicyHttpStatus],
        ..BASE
    },
    Scenario {
        slug: "too-large",
        about: "a 100 KiB body",
        serve: Serve::Oversized(100 * 1024),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTooLarge],
        ..BASE
    },
    Scenario {
        slug: "huge-body",
        about: "a 10 MB body",
        serve: Serve::Oversized(10 * 1024 * 1024),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyTooLarge],
        ..BASE
    },
    Scenario {
        slug: "redirect-loop",
        about: "301 to the policy URL itself",
        serve: Serve::Redirect("/.well-known/mta-sts.txt"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyRedirect],
        ..BASE
    },
    Scenario {
        slug: "policy-bad-utf8",
        about: "a policy body that is not UTF-8",
        serve: Serve::Bytes(
            b"version: STSv1\nmode: enforce\nmx: mx\xff\xfe.example\nmax_age: 604800\n",
        ),
        outcome: Outcome::Invalid,
        codes: &[C::PolicySyntax],
        ..BASE
    },
    Scenario {
        slug: "slow-dns",
        about: "a name server that answers after 300 ms",
        dns_delay_ms: 300,
        ..BASE
    },
    Scenario {
        slug: "http10-close",
        about: "an HTTP/1.0 answer delimited by closing the connection",
        serve: Serve::CloseDelimited,
        ..BASE
    },
    Scenario {
        slug: "content-type",
        about: "policy served as text/html",
        serve: Serve::Policy {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: ENFORCE,
        },
        codes: &[C::PolicyContentType],
        ..BASE
    },
    Scenario {
        slug: "policy-syntax",
        about: "a line that is not key: value",
        serve: policy("version: STSv1\nmode: enforce\nmx *.{d}\nmx: *.{d}\nmax_age: 604800\n"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicySyntax],
        ..BASE
    },
    Scenario {
        slug: "policy-empty",
        about: "an empty policy body",
        serve: policy(""),
        outcome: Outcome::Invalid,
        codes: &[C::PolicySyntax],
        ..BASE
    },
    Scenario {
        slug: "policy-version",
        about: "version STSv2",
        serve: policy("version: STSv2\nmode: enforce\nmx: *.{d}\nmax_age: 604800\n"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyVersionInvalid],
        ..BASE
    },
    Scenario {
        slug: "policy-mode",
        about: "mode enforcing (not a mode)",
        serve: policy("version: STSv1\nmode: enforcing\nmx: *.{d}\nmax_age: 604800\n"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyModeInvalid],
        ..BASE
    },
    Scenario {
        slug: "policy-max-age",
        about: "max_age beyond one year",
        serve: policy("version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 99999999\n"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyMaxAgeInvalid],
        ..BASE
    },
    Scenario {
        slug: "policy-no-mx",
        about: "enforce without mx",
        serve: policy("version: STSv1\nmode: enforce\nmax_age: 604800\n"),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyMxMissing],
        ..BASE
    },
    Scenario {
        slug: "policy-bad-mx",
        about: "an e-mail address as mx",
        serve: policy(
            "version: STSv1\nmode: enforce\nmx: postmaster@{d}\nmx: *.{d}\nmax_age: 604800\n",
        ),
        outcome: Outcome::Invalid,
        codes: &[C::PolicyMxInvalid],
        ..BASE
    },
    Scenario {
        slug: "policy-duplicate",
        about: "mode given twice",
        serve: policy("version: STSv1\nmode: enforce\nmode: testing\nmx: *.{d}\nmax_age: 604800\n"),
        codes: &[C::PolicyDuplicateField],
        ..BASE
    },
    Scenario {
        slug: "policy-unknown",
        about: "a key the RFC does not define",
        serve: policy("version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 604800\nreport: yes\n"),
        codes: &[C::PolicyUnknownField],
        ..BASE
    },
    Scenario {
        slug: "version-late",
        about: "version not on the first line",
        serve: policy("mode: enforce\nversion: STSv1\nmx: *.{d}\nmax_age: 604800\n"),
        codes: &[C::PolicyVersionNotFirst],
        ..BASE
    },
    Scenario {
        slug: "mx-uncovered",
        about: "an MX host outside the policy, enforce mode",
        mx: Mx::WithUncovered,
        codes: &[C::MxNotCovered],
        ..BASE
    },
    Scenario {
        slug: "mx-with-null",
        about: "a null MX record beside a real one",
        mx: Mx::NullAmongReal,
        ..BASE
    },
    Scenario {
        slug: "mx-unused",
        about: "a pattern that matches no MX",
        serve: policy(
            "version: STSv1\nmode: enforce\nmx: *.{d}\nmx: mail.old-provider.example\nmax_age: 604800\n",
        ),
        codes: &[C::MxPatternUnused],
        ..BASE
    },
    Scenario {
        slug: "max-age-short",
        about: "enforce with a one-hour max_age",
        serve: policy("version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 3600\n"),
        codes: &[C::MaxAgeShort],
        ..BASE
    },
    Scenario {
        slug: "tlsrpt-missing",
        about: "MTA-STS without TLS-RPT",
        tlsrpt: Txt::None,
        codes: &[C::TlsrptMissing],
        ..BASE
    },
    Scenario {
        slug: "tlsrpt-multiple",
        about: "two TLS-RPT records",
        tlsrpt: Txt::Records(&[
            &["v=TLSRPTv1; rua=mailto:a@example.net"],
            &["v=TLSRPTv1; rua=mailto:b@example.net"],
        ]),
        codes: &[C::TlsrptMultiple],
        ..BASE
    },
    Scenario {
        slug: "tlsrpt-invalid",
        about: "TLS-RPT with an http: URI",
        tlsrpt: Txt::Records(&[&["v=TLSRPTv1; rua=http://reports.example.net/"]]),
        codes: &[C::TlsrptInvalid],
        ..BASE
    },
    Scenario {
        slug: "record-duplicate",
        about: "the TXT record repeats id: the first counts (RFC 8461 §3.2)",
        sts: Txt::Records(&[&["v=STSv1; id=20260101T000000; id=other"]]),
        codes: &[C::StsRecordDuplicateField],
        ..BASE
    },
    Scenario {
        slug: "record-trailing-space",
        about: "whitespace after the last field of the TXT record (RFC 8461 §3.1 ABNF)",
        sts: Txt::Records(&[&["v=STSv1; id=20260101T000000 "]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordSyntax],
        ..BASE
    },
    Scenario {
        slug: "record-double-delimiter",
        about: "';;' in the TXT record (RFC 8461 §3.1 ABNF)",
        sts: Txt::Records(&[&["v=STSv1; id=20260101T000000;;"]]),
        outcome: Outcome::Invalid,
        codes: &[C::StsRecordSyntax],
        ..BASE
    },
    Scenario {
        slug: "record-decoy",
        about: "a v=STSv10 decoy beside the real record is discarded",
        sts: Txt::Records(&[&["v=STSv10; id=decoy"], &["v=STSv1; id=20260101T000000;"]]),
        ..BASE
    },
    Scenario {
        slug: "tlsrpt-two-rua",
        about: "TLS-RPT with two rua fields: valid, both URIs kept",
        tlsrpt: Txt::Records(&[&[
            "v=TLSRPTv1; rua=mailto:tlsrpt@example.net; rua=https://reports.example.net/v1",
        ]]),
        ..BASE
    },
    Scenario {
        slug: "policy-host-servfail",
        about: "the policy host's name server fails: inconclusive, not a defect",
        host: PolicyHost::ServFail,
        outcome: Outcome::Error,
        codes: &[C::DnsLookupFailed],
        ..BASE
    },
    Scenario {
        slug: "refused-then-ok",
        about: "the first address of mta-sts.D refuses, the second serves the policy",
        host: PolicyHost::RefusingThenLab,
        ..BASE
    },
    Scenario {
        slug: "ipv6-fallback",
        about: "mta-sts.D has a private IPv4 address and a reachable IPv6 one",
        host: PolicyHost::PrivateV4WithV6,
        ..BASE
    },
    Scenario {
        slug: "policy-bom",
        about: "the policy starts with a UTF-8 byte-order mark",
        serve: Serve::Bytes(
            b"\xef\xbb\xbfversion: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 604800\n",
        ),
        codes: &[C::PolicyBom],
        ..BASE
    },
    Scenario {
        slug: "charset-latin1",
        about: "policy served as text/plain; charset=iso-8859-1",
        serve: Serve::Policy {
            status: 200,
            content_type: "text/plain; charset=iso-8859-1",
            body: ENFORCE,
        },
        codes: &[C::PolicyContentType],
        ..BASE
    },
    // Spec §7: MX transport security (codes appear with --probe-mx; tests/mx_probe.rs).
    Scenario {
        slug: "mx-tls-valid",
        about: "every MX offers STARTTLS with a valid certificate (one a wildcard, one a split reply)",
        mx: Mx::Hosts(&[
            (10, "valid.mx.test."),
            (20, "wildcard.mx.test."),
            (30, "split-replies.mx.test."),
        ]),
        serve: policy(ENFORCE_LAB_MX),
        ..BASE
    },
    Scenario {
        slug: "mx-starttls-missing",
        about: "the backup MX does not offer STARTTLS: mail to it fails in enforce mode",
        mx: Mx::Hosts(&[(10, "valid.mx.test."), (20, "no-starttls.mx.test.")]),
        serve: policy(ENFORCE_LAB_MX),
        codes: &[C::MxStarttlsMissing],
        ..BASE
    },
    Scenario {
        slug: "mx-tls-invalid",
        about: "the only MX has an expired certificate: enforce-mode senders cannot deliver",
        mx: Mx::Hosts(&[(10, "expired.mx.test.")]),
        serve: policy(ENFORCE_LAB_MX),
        codes: &[C::MxTlsInvalid],
        ..BASE
    },
    Scenario {
        slug: "mx-tls-invalid-testing",
        about: "a wrong-name and an untrusted MX certificate in testing mode (warnings)",
        mx: Mx::Hosts(&[(10, "wrong-name.mx.test."), (20, "untrusted-ca.mx.test.")]),
        serve: policy(TESTING_LAB_MX),
        codes: &[C::MxTlsInvalid, C::ModeTesting],
        ..BASE
    },
    Scenario {
        slug: "mx-cert-expiring",
        about: "the MX certificate is valid but expires within 14 days",
        mx: Mx::Hosts(&[(10, "expiring.mx.test.")]),
        serve: policy(ENFORCE_LAB_MX),
        codes: &[C::MxCertExpiring],
        ..BASE
    },
    Scenario {
        slug: "mx-unreachable",
        about: "one MX greets with 421: not probed to a verdict",
        mx: Mx::Hosts(&[(10, "valid.mx.test."), (20, "greeting-421.mx.test.")]),
        serve: policy(ENFORCE_LAB_MX),
        codes: &[C::MxUnreachable],
        ..BASE
    },
    Scenario {
        slug: "mx-uncovered-and-broken",
        about: "one MX outside the policy, the other with a self-signed certificate",
        mx: Mx::Hosts(&[(10, "self-signed.mx.test."), (20, "valid.mx.example.")]),
        serve: policy(ENFORCE_LAB_MX),
        codes: &[C::MxTlsInvalid, C::MxNotCovered],
        ..BASE
    },
    Scenario {
        slug: "policy-only",
        about: "a policy served without a TXT record (found only when probing)",
        sts: Txt::None,
        outcome: Outcome::Absent,
        codes: &[C::StsRecordMissing],
        ..BASE
    },
];

impl Scenario {
    /// Whether the scenario's verdict depends on the MX probe of spec §7 (its MX hosts are the
    /// lab's SMTP servers).
    pub fn needs_mx_probe(&self) -> bool {
        matches!(self.mx, Mx::Hosts(_))
    }
}

/// The lab's top-level domain (RFC 6761 reserves `.test`).
pub const LAB_TLD: &str = "test";

/// Finds the scenario of a lab domain name (`<slug>[-<n>].test`).
pub fn scenario_of(domain: &str) -> Option<&'static Scenario> {
    let label = domain.strip_suffix(".test")?;
    if label.contains('.') {
        return None;
    }
    let by_slug = |slug: &str| SCENARIOS.iter().find(|s| s.slug == slug);
    by_slug(label).or_else(|| match label.rsplit_once('-') {
        Some((slug, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => by_slug(slug),
        _ => None,
    })
}

/// The lab domain for scenario `slug` and index `n`.
pub fn lab_domain(slug: &str, n: u64) -> String {
    format!("{slug}-{n}.{LAB_TLD}")
}

/// Domain `n` of the realistic mix used by the benchmarks and `lab --write-list`: about 2%
/// with an MTA-STS record (spread over every scenario that publishes one), about 10% NXDOMAIN,
/// the rest receiving mail without MTA-STS.
pub fn realistic_mix(n: u64) -> String {
    let with_record: Vec<&str> = SCENARIOS
        .iter()
        .filter(|s| matches!(s.sts, Txt::Records(_) | Txt::Cname(_)))
        .map(|s| s.slug)
        .collect();
    match n % 100 {
        0 | 50 => lab_domain(with_record[(n / 100) as usize % with_record.len()], n),
        1..=10 => lab_domain("nxdomain", n),
        _ => lab_domain("no-sts", n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_found() {
        for (i, scenario) in SCENARIOS.iter().enumerate() {
            assert!(
                SCENARIOS[..i].iter().all(|s| s.slug != scenario.slug),
                "{}",
                scenario.slug
            );
            let found = scenario_of(&lab_domain(scenario.slug, 42)).map(|s| s.slug);
            assert_eq!(found, Some(scenario.slug));
            assert_eq!(
                scenario_of(&format!("{}.test", scenario.slug)).map(|s| s.slug),
                Some(scenario.slug)
            );
        }
        assert!(scenario_of("unknown-1.test").is_none());
        assert!(scenario_of("valid-enforce-1.example").is_none());
    }
}
