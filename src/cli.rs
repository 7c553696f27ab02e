//! Command-line definitions (clap) and their conversion into the library's validated config.
//! Nothing here does work: `main.rs` dispatches, the library runs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use mta_sts_scan::config::ScannerConfig;
use mta_sts_scan::net::address::AddressPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "mta-sts-scan",
    version,
    about = "Check MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for one domain or millions",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check one domain and explain every finding.
    #[command(
        after_help = "Examples:\n  mta-sts-scan check example.com\n  mta-sts-scan check example.com --json\n\nExit status: 0 valid, 1 invalid or absent, 2 error (lookup failed, bad input or arguments)."
    )]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The domain to check (IDNs are accepted and converted to A-labels).
    pub domain: String,
    /// Print the result as JSON (the hosted endpoint's field names plus every column).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Network settings shared by every subcommand that looks domains up.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Name server to use, IP or IP:PORT; repeat for failover. Default: /etc/resolv.conf.
    #[arg(
        long = "resolver",
        value_name = "IP[:PORT]",
        env = "MTA_STS_SCAN_RESOLVER",
        value_delimiter = ','
    )]
    pub resolvers: Vec<String>,
    /// Time to wait for one DNS answer (e.g. 800ms, 3s).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration, env = "MTA_STS_SCAN_DNS_TIMEOUT")]
    pub dns_timeout: Duration,
    /// Tries per name server before a lookup fails.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        env = "MTA_STS_SCAN_DNS_ATTEMPTS"
    )]
    pub dns_attempts: usize,
    /// Time allowed for the TCP connect and TLS handshake of the policy fetch.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Time allowed for the whole policy fetch, body included.
    #[arg(long = "fetch-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub fetch_timeout: Duration,
    /// Largest policy body read, in bytes; larger is `policy_too_large`.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_policy_bytes: usize,
    /// Extra trusted CA certificates (PEM), on top of the standard web roots.
    #[arg(long, value_name = "PEM", env = "MTA_STS_SCAN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Let the policy fetch connect to loopback, private and other non-public addresses (labs only).
    #[arg(long)]
    pub allow_private_addresses: bool,
    /// Fetch the policy even without a TXT record (finds `policy_without_record`).
    #[arg(long)]
    pub probe_policy: bool,
    /// HTTPS port of policy hosts. RFC 8461 says 443: other values are for labs and tests only.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub policy_port: u16,
    /// HTTPS proxy for policy fetches (none by default, whatever the environment says).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

impl NetArgs {
    /// Turns the flags into the library's validated config.
    pub fn to_config(&self) -> Result<ScannerConfig, String> {
        let mut config = ScannerConfig::default();
        for resolver in &self.resolvers {
            config.dns.nameservers.push(parse_resolver(resolver)?);
        }
        if self.dns_attempts == 0 {
            return Err("--dns-attempts must be at least 1".into());
        }
        config.dns.timeout = self.dns_timeout;
        config.dns.attempts = self.dns_attempts;
        config.http.connect_timeout = self.connect_timeout;
        config.http.total_timeout = self.fetch_timeout.max(self.connect_timeout);
        if self.max_policy_bytes == 0 {
            return Err("--max-policy-bytes must be positive".into());
        }
        config.http.body_cap = self.max_policy_bytes;
        config.http.policy_port = self.policy_port;
        config.http.proxy = self.proxy.clone();
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-file {}: {e}", path.display()))?;
            config.http.extra_roots_pem = Some(pem);
        }
        config.validation.address_policy = AddressPolicy {
            allow_private: self.allow_private_addresses,
            allow_loopback: false,
        };
        config.validation.probe_policy = self.probe_policy;
        Ok(config)
    }
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT`.
fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("--resolver {text:?} is not an IP address or IP:PORT"))
}

/// `250ms`, `3s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 500ms, 3s or 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, expected) in [
            ("250ms", Some(Duration::from_millis(250))),
            ("3s", Some(Duration::from_secs(3))),
            ("2m", Some(Duration::from_secs(120))),
            ("5", Some(Duration::from_secs(5))),
            ("0s", None),
            ("fast", None),
            ("3x", None),
        ] {
            assert_eq!(parse_duration(text).ok(), expected, "{text}");
        }
    }

    #[test]
    fn resolvers() {
        assert_eq!(
            parse_resolver("9.9.9.9").unwrap(),
            "9.9.9.9:53".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("[::1]:53").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(parse_resolver("dns.google").is_err());
    }
}
