//! The in-process test internet: an authoritative DNS server and an HTTPS server on loopback,
//! with a CA made at start, serving the scenario catalogue. Tests, benchmarks and `demo` run on it.

pub mod ca;
pub mod demo;
pub mod dns;
pub mod https;
pub mod scenarios;
pub mod smtp;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::config::ScannerConfig;
use crate::net::address::AddressPolicy;

/// Knobs of the test internet.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabOptions {
    /// Delay before every DNS answer (latency mode).
    pub dns_delay: Duration,
    /// Delay before every HTTP answer.
    pub http_delay: Duration,
}

/// A running test internet. Dropping it stops the servers.
pub struct TestInternet {
    pub dns_address: SocketAddr,
    pub https_port: u16,
    ca: Arc<ca::LabCa>,
    dns_server: hickory_server::Server<dns::LabDnsHandler>,
    https_task: tokio::task::JoinHandle<()>,
    /// The same HTTPS server on `[::1]` (same port), when IPv6 loopback is available.
    https_v6_task: Option<tokio::task::JoinHandle<()>>,
    /// DNS queries answered so far.
    pub dns_queries: Arc<AtomicU64>,
    /// HTTP requests answered so far.
    pub http_requests: Arc<AtomicU64>,
    /// The SMTP servers of the MX hosts `<behaviour>.mx.test` (spec §7).
    pub smtp: smtp::LabSmtp,
}

impl TestInternet {
    /// Starts both servers on 127.0.0.1 (call inside a tokio runtime).
    pub async fn start(options: LabOptions) -> std::io::Result<Self> {
        let ip = Ipv4Addr::LOCALHOST;
        let ca = Arc::new(ca::LabCa::new().map_err(std::io::Error::other)?);
        let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
        let https_port = listener.local_addr()?.port();
        let http_requests = Arc::new(AtomicU64::new(0));
        let state = Arc::new(https::HttpsState {
            ca: ca.clone(),
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            delay: options.http_delay,
            requests: http_requests.clone(),
        });
        // IPv6 loopback on the same port, for the IPv6-fallback scenario; a host without IPv6
        // simply lacks it (that scenario then fails loudly, it is not skipped).
        let https_v6_task =
            tokio::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, https_port))
                .await
                .ok()
                .map(|listener| tokio::spawn(https::serve(listener, state.clone())));
        let https_task = tokio::spawn(https::serve(listener, state));
        let dns_queries = Arc::new(AtomicU64::new(0));
        let handler = dns::LabDnsHandler {
            https_ip: ip,
            delay: options.dns_delay,
            queries: dns_queries.clone(),
        };
        let (dns_address, dns_server) = dns::start(handler, ip).await?;
        let smtp = smtp::LabSmtp::start(ca.clone()).await?;
        Ok(TestInternet {
            dns_address,
            https_port,
            ca,
            dns_server,
            https_task,
            https_v6_task,
            dns_queries,
            http_requests,
            smtp,
        })
    }

    /// The lab CA, for servers started beside this one (the SMTP servers of [`smtp::LabSmtp`]).
    pub fn ca(&self) -> Arc<ca::LabCa> {
        self.ca.clone()
    }

    /// MX probe settings that reach the lab's SMTP servers: their port, no rate limit, a short
    /// exchange timeout (the lab answers at once, or never). Use as `config.mx_probe`.
    pub fn mx_probe_settings(&self) -> crate::config::MxProbeSettings {
        crate::config::MxProbeSettings {
            ehlo_name: "scanner.test".to_owned(),
            smtp_timeout: Duration::from_secs(3),
            port: self.smtp.port(),
            per_ip: crate::scan::mx_cache::DEFAULT_SMTP_PER_IP,
            rate: None,
            cache_hosts: None,
        }
    }

    /// The lab root certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// Scanner settings that reach this test internet: its name server, its CA, its HTTPS
    /// port, short timeouts, and loopback allowed (other special ranges still refused).
    pub fn scanner_config(&self) -> ScannerConfig {
        let mut config = ScannerConfig::default();
        config.dns.nameservers = vec![self.dns_address];
        config.dns.timeout = Duration::from_millis(800);
        config.dns.attempts = 1;
        config.dns.retries = 1;
        config.dns.retry_backoff = Duration::from_millis(50);
        config.http.policy_port = self.https_port;
        config.http.extra_roots_pem = Some(self.ca_pem().as_bytes().to_vec());
        config.http.connect_timeout = Duration::from_secs(2);
        config.http.total_timeout = Duration::from_secs(3);
        config.validation.address_policy = AddressPolicy {
            allow_private: false,
            allow_loopback: true,
        };
        config
    }
}

impl Drop for TestInternet {
    fn drop(&mut self) {
        self.dns_server.shutdown_token().cancel();
        self.https_task.abort();
        if let Some(task) = &self.https_v6_task {
            task.abort();
        }
    }
}
