//! mta-sts-scan: validate MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for one domain or millions.
//!
//! The library holds everything but the command line: the pure parsers ([`mta_sts`], [`domain`]),
//! the network boundary ([`net`]), the per-domain validator ([`validate`]), the scan pipeline
//! ([`scan`]), the output writers ([`output`]), the HTML report ([`html_report`]) and the in-process test internet ([`lab`]).

pub mod compression;
pub mod config;
pub mod diff;
pub mod domain;
pub mod html_report;
pub mod issues;
pub mod lab;
pub mod mta_sts;
pub mod net;
pub mod output;
pub mod report;
pub mod scan;
pub mod serve;
pub mod text_report;
pub mod validate;
