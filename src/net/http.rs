//! The policy fetch through reqwest 0.13 (rustls): the only file that knows the HTTP client.
//!
//! The validator resolves `mta-sts.D` itself (through the scanner's one resolver), checks the
//! addresses against the address policy, and hands the permitted ones to [`ReqwestFetcher`],
//! which pins them for reqwest's connector: the client never resolves a name on its own, so it
//! cannot be steered to an address the validator did not approve.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::trust::{self, TrustStore};
use super::{FetchFailure, FetchStage, FetchedPolicy, PolicyFetch};

/// HTTP client settings, already validated.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time allowed for the TCP connection and TLS handshake.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included.
    pub total_timeout: Duration,
    /// Largest policy body read, in bytes (RFC 8461 §3.3 sets no limit; 64 KiB is generous).
    pub body_cap: usize,
    /// Port of the policy host: 443 (RFC 8461 §3.3). Other values are for labs and tests only.
    pub policy_port: u16,
    /// The trust anchors: Mozilla's pinned set (default) or the system store.
    pub trust_store: TrustStore,
    /// Extra trust anchors (PEM), added to the chosen store.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Explicit proxy URL; without it no proxy is used, whatever the environment says.
    pub proxy: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            body_cap: 64 * 1024,
            policy_port: 443,
            trust_store: TrustStore::Mozilla,
            extra_roots_pem: None,
            proxy: None,
        }
    }
}

/// Addresses approved by the validator, per host, for the duration of a fetch.
#[derive(Default)]
struct PinnedAddresses {
    hosts: Mutex<HashMap<String, (Vec<SocketAddr>, usize)>>,
}

impl PinnedAddresses {
    fn pin(&self, host: &str, addresses: Vec<SocketAddr>) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = hosts.entry(host.to_owned()).or_insert((Vec::new(), 0));
        entry.0 = addresses;
        entry.1 += 1;
    }

    fn unpin(&self, host: &str) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = hosts.get_mut(host) {
            entry.1 -= 1;
            if entry.1 == 0 {
                hosts.remove(host);
            }
        }
    }

    fn get(&self, host: &str) -> Option<Vec<SocketAddr>> {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts.get(host).map(|(addresses, _)| addresses.clone())
    }
}

struct PinnedResolver(Arc<PinnedAddresses>);

impl Resolve for PinnedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let found = self.0.get(name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match found {
                Some(addresses) => Ok(Box::new(addresses.into_iter()) as Addrs),
                // Only an explicit `--proxy` host is connected to without being pinned (policy
                // hosts always are); it is the user's own infrastructure, resolved by the system.
                None => match tokio::net::lookup_host((host.as_str(), 0)).await {
                    Ok(addresses) => {
                        Ok(Box::new(addresses.collect::<Vec<_>>().into_iter()) as Addrs)
                    }
                    Err(error) => Err(format!("cannot resolve {host}: {error}").into()),
                },
            }
        })
    }
}

/// Removes a pin when the fetch ends, however it ends.
struct PinGuard<'a> {
    pins: &'a PinnedAddresses,
    host: &'a str,
}

impl Drop for PinGuard<'_> {
    fn drop(&mut self) {
        self.pins.unpin(self.host);
    }
}

/// Fetches policies with one shared reqwest client.
#[derive(Clone)]
pub struct ReqwestFetcher {
    client: reqwest::Client,
    pins: Arc<PinnedAddresses>,
    settings: Arc<HttpSettings>,
}

impl ReqwestFetcher {
    pub fn new(settings: HttpSettings) -> Result<Self, String> {
        let pins = Arc::new(PinnedAddresses::default());
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            .pool_max_idle_per_host(0)
            .tls_version_min(reqwest::tls::Version::TLS_1_2)
            .https_only(true)
            .user_agent(concat!(
                "mta-sts-scan/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/mta-sts-scan/mta-sts-scan)"
            ))
            .dns_resolver(Arc::new(PinnedResolver(pins.clone())));
        builder = match &settings.proxy {
            Some(url) => builder.proxy(
                reqwest::Proxy::https(url).map_err(|e| format!("invalid proxy {url:?}: {e}"))?,
            ),
            None => builder.no_proxy(),
        };
        let mut extra = Vec::new();
        if let Some(pem) = &settings.extra_roots_pem {
            extra = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("cannot read the CA file: {e}"))?;
            if extra.is_empty() {
                return Err("the CA file holds no PEM certificate".to_owned());
            }
        }
        builder =
            match settings.trust_store {
                // Only the pinned Mozilla set (plus --ca-file): no platform verifier, the same
                // verdicts on every machine.
                TrustStore::Mozilla => {
                    let mut roots = Vec::with_capacity(150 + extra.len());
                    for der in trust::mozilla_roots() {
                        roots.push(reqwest::Certificate::from_der(der).map_err(|e| {
                            format!("a built-in root certificate is unreadable: {e}")
                        })?);
                    }
                    roots.extend(extra);
                    builder.tls_certs_only(roots)
                }
                TrustStore::System => builder.tls_certs_merge(extra),
            };
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(ReqwestFetcher {
            client,
            pins,
            settings: Arc::new(settings),
        })
    }

    async fn get(&self, host: &str) -> Result<FetchedPolicy, FetchFailure> {
        // RFC 8461 §3.3: the policy is at this fixed URL; the port override only changes the
        // socket address (pinned below), so SNI and Host stay `mta-sts.D`.
        let url = format!("https://{host}/.well-known/mta-sts.txt");
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| classify(&e, &self.settings))?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &reqwest::header::HeaderValue| {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                })
        };
        let content_type = header(CONTENT_TYPE);
        let location = header(LOCATION);
        let declared_length = header(CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        let mut policy = FetchedPolicy {
            status,
            content_type,
            location,
            body: Vec::new(),
        };
        if status != 200 {
            return Ok(policy);
        }
        let cap = self.settings.body_cap;
        if declared_length.is_some_and(|length| length > cap as u64) {
            return Err(FetchFailure::TooLarge { cap });
        }
        // Never buffer an unbounded body: read chunks and stop past the cap.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&e, &self.settings))?
        {
            if policy.body.len() + chunk.len() > cap {
                return Err(FetchFailure::TooLarge { cap });
            }
            policy.body.extend_from_slice(&chunk);
        }
        Ok(policy)
    }
}

impl PolicyFetch for ReqwestFetcher {
    async fn fetch(&self, host: &str, addresses: &[IpAddr]) -> Result<FetchedPolicy, FetchFailure> {
        let port = self.settings.policy_port;
        self.pins.pin(
            host,
            addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
        );
        let _guard = PinGuard {
            pins: &self.pins,
            host,
        };
        // reqwest's own timeout covers the request; this outer one is the backstop for any
        // stage that slips through it (a slow-drip body, a stalled handshake).
        let backstop = self.settings.total_timeout + Duration::from_millis(250);
        match tokio::time::timeout(backstop, self.get(host)).await {
            Ok(result) => result,
            Err(_) => Err(FetchFailure::Timeout(
                FetchStage::Http,
                format!("no complete answer within {backstop:?}"),
            )),
        }
    }
}

/// Sorts a reqwest error into the stage that failed, by walking its causes.
fn classify(error: &reqwest::Error, settings: &HttpSettings) -> FetchFailure {
    let text = error_chain(error);
    if let Some(tls) = find_cause::<rustls::Error>(error) {
        return FetchFailure::Tls(describe_tls(tls));
    }
    if error.is_timeout() {
        let stage = if error.is_connect() {
            FetchStage::Connect
        } else {
            FetchStage::Http
        };
        let limit = if error.is_connect() {
            settings.connect_timeout
        } else {
            settings.total_timeout
        };
        return FetchFailure::Timeout(stage, format!("timed out after {limit:?} ({text})"));
    }
    if error.is_connect() {
        if let Some(io) = find_cause::<std::io::Error>(error) {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            ) {
                return FetchFailure::Connect(io.to_string());
            }
            // A peer that closes or resets during the handshake broke TLS, not TCP.
            if matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | InvalidData
            ) {
                return FetchFailure::Tls(format!("handshake failed: {io}"));
            }
        }
        return FetchFailure::Connect(text);
    }
    FetchFailure::Protocol(text)
}

/// The first cause of type `T` in the chain, looking inside `io::Error` wrappers too
/// (tokio-rustls wraps rustls errors in `io::Error`, whose `source()` skips them).
fn find_cause<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(found) = inner.downcast_ref::<T>() {
                return Some(found);
            }
            if let Some(found) = find_cause::<T>(inner) {
                return Some(found);
            }
        }
        current = cause.source();
    }
    None
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match error {
        Error::InvalidCertificate(CertificateError::Expired) => "certificate expired".to_owned(),
        Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "certificate expired".to_owned()
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "certificate not valid for the policy host name".to_owned()
        }
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate issued by an untrusted CA".to_owned()
        }
        other => format!("TLS failure: {other}"),
    }
}

/// All messages of an error chain, joined with ": ".
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
}
