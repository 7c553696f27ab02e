//! Why an MX host is not covered by a policy (spec §7 `mx_uncovered_class`): the mismatch
//! classes of the IMC 2025 measurement (Ashiq, Fiebig, Chung) for a host that fails every `mx`
//! pattern of RFC 8461 §4.1. Pure: names in, class out.

use super::mx::mx_pattern_matches;

/// Most edits between host and pattern still counted as a typo (spec §7).
pub const TYPO_MAX_DISTANCE: usize = 3;

/// The mismatch class of an uncovered MX host; [`MxMismatchClass::as_str`] gives the spec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MxMismatchClass {
    /// Matches a pattern except for its number of labels (`*.example.com` against
    /// `a.b.example.com` or `example.com`; a pattern with an extra label like
    /// `mx.mta-sts.example.com` against `mx.example.com`).
    LabelDepth,
    /// Host and a pattern differ only in the top-level domain (`example.net` / `example.com`,
    /// `example.co.uk` / `example.com`).
    Tld,
    /// Damerau–Levenshtein distance of at most 3 to a pattern, its wildcard replaced by the
    /// host's left-most label.
    Typo,
    /// Anything else (typically a provider's host the policy forgot).
    OtherDomain,
}

impl MxMismatchClass {
    pub const ALL: [MxMismatchClass; 4] = [
        MxMismatchClass::LabelDepth,
        MxMismatchClass::Tld,
        MxMismatchClass::Typo,
        MxMismatchClass::OtherDomain,
    ];

    /// Parses a name written by [`MxMismatchClass::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        MxMismatchClass::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            MxMismatchClass::LabelDepth => "label_depth",
            MxMismatchClass::Tld => "tld",
            MxMismatchClass::Typo => "typo",
            MxMismatchClass::OtherDomain => "other_domain",
        }
    }
}

/// Classifies an MX `host` that no pattern covers; classes are tried in the spec's order
/// (`label_depth`, `tld`, `typo`, `other_domain`), each against every pattern, and the first
/// that fits wins. Case and one trailing dot are ignored. A host that some pattern covers is not
/// a mismatch and gets `other_domain`.
pub fn classify_uncovered_mx<P: AsRef<str>>(host: &str, patterns: &[P]) -> MxMismatchClass {
    let host = normalise(host);
    if host.is_empty()
        || patterns
            .iter()
            .any(|p| mx_pattern_matches(p.as_ref(), &host))
    {
        return MxMismatchClass::OtherDomain;
    }
    let patterns: Vec<String> = patterns
        .iter()
        .map(|p| normalise(p.as_ref()))
        .filter(|p| !p.is_empty())
        .collect();
    let host_labels: Vec<&str> = host.split('.').collect();
    let fits = |test: &dyn Fn(&[&str], &[&str]) -> bool| {
        patterns.iter().any(|pattern| {
            let pattern_labels: Vec<&str> = pattern.split('.').collect();
            test(&host_labels, &pattern_labels)
        })
    };
    if fits(&differs_in_depth) {
        MxMismatchClass::LabelDepth
    } else if fits(&differs_in_tld) {
        MxMismatchClass::Tld
    } else if fits(&is_typo) {
        MxMismatchClass::Typo
    } else {
        MxMismatchClass::OtherDomain
    }
}

fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A pattern label stands for a host label when equal or when it is the wildcard.
fn label_fits(host_label: &str, pattern_label: &str) -> bool {
    host_label == pattern_label || pattern_label == "*"
}

/// Different label counts, the same last label, and the shorter name is the longer one with
/// whole labels removed (the wildcard standing for one host label).
fn differs_in_depth(host: &[&str], pattern: &[&str]) -> bool {
    if host.len() == pattern.len() || host.len().min(pattern.len()) < 2 {
        return false;
    }
    let (Some((host_last, host_rest)), Some((pattern_last, pattern_rest))) =
        (host.split_last(), pattern.split_last())
    else {
        return false;
    };
    if host_last != pattern_last {
        return false;
    }
    if host.len() < pattern.len() {
        // Host labels must appear, in order, among the pattern's.
        is_embedded(host_rest, pattern_rest, |short, long| {
            label_fits(short, long)
        })
    } else {
        // Pattern labels must appear, in order, among the host's.
        is_embedded(pattern_rest, host_rest, |short, long| {
            label_fits(long, short)
        })
    }
}

/// Whether `short` is a subsequence of `long` under `fits` (greedy earliest match is optimal).
fn is_embedded(short: &[&str], long: &[&str], fits: impl Fn(&str, &str) -> bool) -> bool {
    let mut long = long.iter();
    short
        .iter()
        .all(|wanted| long.any(|candidate| fits(wanted, candidate)))
}

/// Second-level labels under which country-code registries sell names (`example.co.uk`).
const SECOND_LEVEL: &[&str] = &[
    "ac", "co", "com", "edu", "gov", "gv", "ltd", "ne", "net", "or", "org", "plc",
];

/// The name without its top-level domain: the last label, and a second-level label like `co`
/// too when the last label is a two-letter country code.
fn without_tld<'a, 'b>(labels: &'b [&'a str]) -> &'b [&'a str] {
    match labels {
        [rest @ .., second, country]
            if country.len() == 2 && SECOND_LEVEL.contains(second) && !rest.is_empty() =>
        {
            rest
        }
        [rest @ .., _] => rest,
        [] => labels,
    }
}

/// The pattern with its wildcard replaced by the host's left-most label.
fn expand_wildcard<'a>(host: &[&'a str], pattern: &[&'a str]) -> Vec<&'a str> {
    pattern
        .iter()
        .enumerate()
        .map(|(i, label)| match (i, *label, host.first()) {
            (0, "*", Some(first)) => *first,
            _ => *label,
        })
        .collect()
}

/// Equal once the top-level domain is taken off both (and the names are not equal).
fn differs_in_tld(host: &[&str], pattern: &[&str]) -> bool {
    let pattern = expand_wildcard(host, pattern);
    let (host_base, pattern_base) = (without_tld(host), without_tld(&pattern));
    !host_base.is_empty() && host_base == pattern_base && host != pattern.as_slice()
}

fn is_typo(host: &[&str], pattern: &[&str]) -> bool {
    let pattern = expand_wildcard(host, pattern).join(".");
    let host = host.join(".");
    if host.len().abs_diff(pattern.len()) > TYPO_MAX_DISTANCE {
        return false;
    }
    (1..=TYPO_MAX_DISTANCE).contains(&damerau_levenshtein(host.as_bytes(), pattern.as_bytes()))
}

/// The (unrestricted) Damerau–Levenshtein distance: insertions, deletions, substitutions and
/// transpositions of adjacent characters, a substring edited more than once allowed
/// (Lowrance–Wagner). Bytes, as DNS names are ASCII.
pub fn damerau_levenshtein(a: &[u8], b: &[u8]) -> usize {
    let (n, m) = (a.len(), b.len());
    let infinity = n + m;
    let width = m + 2;
    // d[(i + 1) * width + (j + 1)] is the distance between a[..i] and b[..j].
    let mut d = vec![0usize; (n + 2) * width];
    d[0] = infinity;
    for i in 0..=n {
        d[(i + 1) * width] = infinity;
        d[(i + 1) * width + 1] = i;
    }
    for j in 0..=m {
        d[j + 1] = infinity;
        d[width + j + 1] = j;
    }
    let mut last_row_of = [0usize; 256];
    for i in 1..=n {
        let mut last_match_column = 0;
        for j in 1..=m {
            let earlier_row = last_row_of[usize::from(b[j - 1])];
            let earlier_column = last_match_column;
            let cost = if a[i - 1] == b[j - 1] {
                last_match_column = j;
                0
            } else {
                1
            };
            let substitution = d[i * width + j] + cost;
            let insertion = d[(i + 1) * width + j] + 1;
            let deletion = d[i * width + j + 1] + 1;
            let transposition = d[earlier_row * width + earlier_column]
                + (i - earlier_row - 1)
                + 1
                + (j - earlier_column - 1);
            d[(i + 1) * width + j + 1] =
                substitution.min(insertion).min(deletion).min(transposition);
        }
        last_row_of[usize::from(a[i - 1])] = i;
    }
    d[(n + 1) * width + m + 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use MxMismatchClass::{LabelDepth, OtherDomain, Tld, Typo};

    #[test]
    fn class_names_are_the_spec_section_7_names() {
        let names: Vec<&str> = MxMismatchClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["label_depth", "tld", "typo", "other_domain"]);
    }

    /// Spec §7 `mx_uncovered_class` (after IMC 2025), for hosts failing RFC 8461 §4.1 matching.
    #[test]
    fn uncovered_hosts_are_classified_first_match_wins() {
        for ((host, patterns), expected) in [
            // label_depth: a `*.` pattern except for the number of labels (spec §7 example).
            (("a.b.example.com", &["*.example.com"][..]), LabelDepth),
            (("example.com", &["*.example.com"][..]), LabelDepth),
            (("A.B.Example.COM.", &["*.example.com."][..]), LabelDepth),
            // A pattern with an extra label inside it, such as `mta-sts.`.
            (
                ("mx.example.com", &["mx.mta-sts.example.com"][..]),
                LabelDepth,
            ),
            (
                ("mx.example.com", &["*.mta-sts.example.com"][..]),
                LabelDepth,
            ),
            (("mx1.eu.example.com", &["mx1.example.com"][..]), LabelDepth),
            (("example.com", &["mail.example.com"][..]), LabelDepth),
            // tld: only the top-level domain differs (wildcard expanded to the host's label).
            (("mx.example.net", &["mx.example.com"][..]), Tld),
            (("mx.example.net", &["*.example.com"][..]), Tld),
            (("mx.example.co.uk", &["*.example.com"][..]), Tld),
            (("mx.example.com", &["mx.example.com.au"][..]), Tld),
            (
                ("mx.example.de", &["*.example.com", "mx.example.fr"][..]),
                Tld,
            ),
            // typo: Damerau–Levenshtein ≤ 3 after expanding the wildcard.
            (("mx.exmaple.com", &["*.example.com"][..]), Typo),
            (("mx1.example.com", &["mx2.example.com"][..]), Typo),
            (("mail.example.com", &["mial.exampel.com"][..]), Typo),
            (("mx.examp.com", &["*.example.com"][..]), Typo),
            (("mx.example.com", &["mx.exampleabcd.com"][..]), OtherDomain),
            // other_domain: a provider the policy forgot, no patterns, mode none.
            (("aspmx.l.google.com", &["*.example.com"][..]), OtherDomain),
            (
                (
                    "example-com.mail.protection.outlook.com",
                    &["mx.example.com"][..],
                ),
                OtherDomain,
            ),
            (("backup.example.net", &[][..]), OtherDomain),
            (("mx.example.com", &["", "."][..]), OtherDomain),
            // Order: label_depth before tld before typo.
            (
                ("a.b.example.com", &["mx.exampel.com", "*.example.com"][..]),
                LabelDepth,
            ),
            (
                ("mx.example.org", &["mx.exampel.com", "*.example.com"][..]),
                Tld,
            ),
            // A covered host is not a mismatch.
            (("mx.example.com", &["*.example.com"][..]), OtherDomain),
        ] {
            assert_eq!(
                classify_uncovered_mx(host, patterns),
                expected,
                "{host:?} against {patterns:?}"
            );
        }
    }

    #[test]
    fn damerau_levenshtein_counts_adjacent_transpositions_as_one() {
        for ((a, b), distance) in [
            (("", ""), 0),
            (("", "abc"), 3),
            (("abc", ""), 3),
            (("abc", "abc"), 0),
            (("abc", "acb"), 1),
            (("kitten", "sitting"), 3),
            (("example", "exmaple"), 1),
            (("example", "exampel"), 1),
            // Unrestricted: the optimal string alignment distance here would be 3.
            (("ca", "abc"), 2),
            (("a.b.c", "c.b.a"), 2),
        ] {
            assert_eq!(
                damerau_levenshtein(a.as_bytes(), b.as_bytes()),
                distance,
                "{a:?} {b:?}"
            );
            assert_eq!(damerau_levenshtein(b.as_bytes(), a.as_bytes()), distance);
        }
    }
}
