//! The test internet's HTTPS server (rustls): reads the ClientHello, then behaves as the
//! scenario of the SNI name says: the right or a broken certificate, a policy, a redirect, an
//! oversized or endless body, a tarpit, garbage instead of TLS, an HTTP/1.0 answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::LazyConfigAcceptor;

use super::ca::{CertKind, LabCa};
use super::scenarios::{Scenario, Serve, scenario_of};

/// How long a tarpit or an endless body holds a connection at most.
const HOLD_LIMIT: Duration = Duration::from_secs(60);

/// Shared state of the HTTPS server.
pub struct HttpsState {
    pub ca: Arc<LabCa>,
    pub provider: Arc<rustls::crypto::CryptoProvider>,
    /// Delay before every HTTP answer (latency mode).
    pub delay: Duration,
    /// Requests answered, for benchmarks.
    pub requests: Arc<AtomicU64>,
}

#[derive(Debug)]
struct SniCertificates {
    ca: Arc<LabCa>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabCa")
    }
}

impl ResolvesServerCert for SniCertificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = client_hello.server_name()?;
        let kind = policy_domain(host)
            .and_then(scenario_of)
            .map_or(CertKind::Valid, |s| s.cert);
        self.ca.certified_key(host, kind, &self.provider).ok()
    }
}

/// `mta-sts.x.test` → `x.test`.
fn policy_domain(host: &str) -> Option<&str> {
    host.strip_prefix("mta-sts.")
}

/// Accepts connections until the listener fails or the task is aborted.
pub async fn serve(listener: TcpListener, state: Arc<HttpsState>) {
    let config = ServerConfig::builder_with_provider(state.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map(|builder| {
            builder
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(SniCertificates {
                    ca: state.ca.clone(),
                    provider: state.provider.clone(),
                }))
        });
    let Ok(config) = config else {
        return;
    };
    let config = Arc::new(config);
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HOLD_LIMIT, handle(stream, state, config)).await;
        });
    }
}

async fn handle(
    stream: TcpStream,
    state: Arc<HttpsState>,
    config: Arc<ServerConfig>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let mut start = acceptor.await?;
    let sni = start.client_hello().server_name().map(str::to_owned);
    let domain = sni
        .as_deref()
        .and_then(policy_domain)
        .unwrap_or("")
        .to_owned();
    let scenario = scenario_of(&domain);
    match scenario.map(|s| s.serve) {
        Some(Serve::Tarpit) => {
            tokio::time::sleep(HOLD_LIMIT).await;
            return Ok(());
        }
        Some(Serve::Garbage) => {
            start
                .io
                .write_all(b"SSH-2.0-OpenSSH_9.6 this is not TLS\r\n")
                .await?;
            return start.io.shutdown().await;
        }
        Some(Serve::Tls10Only) => {
            // A fatal protocol_version alert in a TLS 1.0 record, as such a server sends to a
            // client that offers only TLS 1.2 and later.
            start
                .io
                .write_all(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])
                .await?;
            return start.io.shutdown().await;
        }
        _ => {}
    }
    let mut tls = start.into_stream(config).await?;
    read_request_head(&mut tls).await?;
    state.requests.fetch_add(1, Ordering::Relaxed);
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    match scenario {
        Some(scenario) => respond(&mut tls, scenario, &domain).await,
        None => write_simple(&mut tls, 404, "text/plain", b"no such lab host\n").await,
    }
}

/// Reads up to the end of the request head (or 16 KiB).
async fn read_request_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() > 16 * 1024 {
            return Err(std::io::Error::other("incomplete request"));
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(())
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    scenario: &Scenario,
    domain: &str,
) -> std::io::Result<()> {
    match scenario.serve {
        Serve::Policy {
            status,
            content_type,
            body,
        } => {
            let body = body.replace("{d}", domain);
            write_simple(stream, status, content_type, body.as_bytes()).await
        }
        Serve::Bytes(body) => {
            // `{d}` is replaced when the bytes are UTF-8 (a byte-order mark is); others go as is.
            let body = match std::str::from_utf8(body) {
                Ok(text) => text.replace("{d}", domain).into_bytes(),
                Err(_) => body.to_vec(),
            };
            write_simple(stream, 200, "text/plain", &body).await
        }
        Serve::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream.shutdown().await
        }
        Serve::Oversized(size) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            let line = [b'#'; 1024];
            let mut left = size;
            while left > 0 {
                let n = left.min(line.len());
                stream.write_all(&line[..n]).await?;
                left -= n;
            }
            stream.shutdown().await
        }
        Serve::SlowDrip => {
            let body = "version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 604800\n"
                .replace("{d}", domain);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            for byte in body.as_bytes() {
                stream.write_all(&[*byte]).await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            stream.shutdown().await
        }
        Serve::Endless => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let mut chunk = b"1000\r\n".to_vec();
            chunk.extend_from_slice(&[b'#'; 0x1000]);
            chunk.extend_from_slice(b"\r\n");
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Serve::CloseDelimited => {
            let body = "version: STSv1\nmode: enforce\nmx: *.{d}\nmax_age: 604800\n"
                .replace("{d}", domain);
            stream
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                .await?;
            stream.write_all(body.as_bytes()).await?;
            stream.shutdown().await
        }
        Serve::Tarpit | Serve::Garbage | Serve::Tls10Only => Ok(()),
    }
}

async fn write_simple<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
