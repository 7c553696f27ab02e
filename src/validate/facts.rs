//! The typed facts one domain's lookups produced: what the network said, before any rule of the
//! spec is applied. Nothing here is a sentence; [`super::decide`] turns facts into a report.

use std::net::IpAddr;
use std::sync::Arc;

use crate::net::smtp::MxProbe;

use crate::net::{AddressAnswer, DnsFailure, FetchFailure, FetchedPolicy, MxAnswer, TxtAnswer};

/// Everything gathered for one normalised domain (spec §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    /// Normalised A-label form.
    pub domain: String,
    /// The value as read.
    pub input: String,
    pub rank: Option<i64>,
    /// When the lookups started, ms since the Unix epoch.
    pub scanned_at: i64,
    /// How long the lookups took.
    pub duration_ms: i64,
    /// `TXT _mta-sts.D`.
    pub sts: Result<TxtAnswer, DnsFailure>,
    /// `TXT _smtp._tls.D`.
    pub tlsrpt: Result<TxtAnswer, DnsFailure>,
    /// `MX D`.
    pub mx: Result<MxAnswer, DnsFailure>,
    /// The policy fetch, when one was made (a record exists, or policy probing is on).
    pub policy: Option<PolicyFacts>,
    /// Spec §7: the probe of each MX host, in preference order (at most `--max-mx-probed`);
    /// `None` when probing is off. Results are shared with every domain using the host.
    pub mx_probes: Option<Vec<Arc<MxProbe>>>,
}

/// The policy host's address lookup and the fetch (spec §1 step 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFacts {
    /// `mta-sts.D`.
    pub host: String,
    /// Whether the fetch was made without a TXT record, to find `policy_without_record`.
    pub probing: bool,
    /// `A`/`AAAA mta-sts.D` through the scanner's resolver.
    pub addresses: Result<AddressAnswer, DnsFailure>,
    /// What became of the fetch.
    pub attempt: FetchAttempt,
}

/// Whether the policy host was contacted, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttempt {
    /// Not contacted: the address lookup failed or found no address.
    NoAddress,
    /// Not contacted: every address is non-public (the address policy forbids them).
    Forbidden,
    /// Contacted at these permitted addresses, with this result.
    Fetched {
        addresses: Vec<IpAddr>,
        result: Result<FetchedPolicy, FetchFailure>,
    },
}
