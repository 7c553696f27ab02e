//! Pure parsers for the MTA-STS TXT record, the policy file, the TLS-RPT record and mx matching.

pub mod mx;
pub mod policy;
pub mod record;
pub mod tlsrpt;
