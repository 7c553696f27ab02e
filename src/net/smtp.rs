//! The MX transport probe of spec §7 (RFC 8461 §4.2): connect to an MX host on port 25, read the
//! banner, `EHLO`, `STARTTLS`, a TLS 1.2+ handshake with SNI = the MX name, judge the certificate
//! (chain to the caller's trust roots, validity period, RFC 6125 DNS-ID) and `QUIT`.
//! It never sends `MAIL FROM`: no mail is ever sent.
//!
//! The handshake accepts any certificate and records it ([`RecordingVerifier`]); the chain and the
//! name are judged afterwards, separately, so every fault gets its own status instead of the first
//! error a verifier stops at. The I/O sits behind [`MxProber`], so the validator can be table-tested
//! with a fake; [`ConnectGate`] lets the scan's politeness limits (per-address concurrency, global
//! rate) wrap every connection without the probe knowing them.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::address::AddressPolicy;

/// The SMTP port of RFC 5321 (a lab run overrides it).
pub const SMTP_PORT: u16 = 25;
/// Whole SMTP exchange, after the TCP connection (spec §7 `--smtp-timeout`).
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// One TCP connect attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A valid certificate with less than this left is reported as expiring (`mx_cert_expiring`).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// Banner characters kept (spec §7 MX table: first line, at most 200 characters).
pub const BANNER_MAX_CHARS: usize = 200;
/// Addresses tried per MX host when connections fail (bounds the time a host with many dead
/// addresses costs).
pub const MAX_ADDRESSES_TRIED: usize = 4;
/// SAN entries kept per certificate (a few CDN certificates list hundreds; the rest is counted).
pub const SAN_KEPT: usize = 16;
/// How long the reply to `QUIT` is awaited once the verdict is in.
const QUIT_WAIT: Duration = Duration::from_secs(2);
/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 allows 512 octets; servers exceed it).
const REPLY_LINE_MAX: usize = 4096;
/// Most lines in one reply (an EHLO reply lists one extension a line).
const REPLY_LINES_MAX: usize = 64;

/// Per-MX status of spec §7; [`MxStatus::as_str`] gives the exact names of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MxStatus {
    /// STARTTLS, a trusted chain, within its validity period, valid for the MX name.
    Valid,
    /// The EHLO reply does not offer STARTTLS (or the server refuses EHLO with 5xx).
    StarttlsMissing,
    /// STARTTLS refused, plaintext injected after its 220, or the TLS handshake failed.
    TlsHandshakeFailed,
    CertExpired,
    CertNotYetValid,
    /// No DNS-ID of the certificate matches the MX host (RFC 6125, no CN fallback).
    CertNameMismatch,
    /// Self-signed, unknown CA, missing intermediate, bad signature or encoding.
    CertUntrusted,
    /// No address, connect refused or timed out, banner timeout, 4xx/5xx greeting, closed.
    Unreachable,
    /// Every address of the host is private or reserved (the address policy forbids them).
    ForbiddenAddress,
}

impl MxStatus {
    pub const ALL: [MxStatus; 9] = [
        MxStatus::Valid,
        MxStatus::StarttlsMissing,
        MxStatus::TlsHandshakeFailed,
        MxStatus::CertExpired,
        MxStatus::CertNotYetValid,
        MxStatus::CertNameMismatch,
        MxStatus::CertUntrusted,
        MxStatus::Unreachable,
        MxStatus::ForbiddenAddress,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MxStatus::Valid => "valid",
            MxStatus::StarttlsMissing => "starttls_missing",
            MxStatus::TlsHandshakeFailed => "tls_handshake_failed",
            MxStatus::CertExpired => "cert_expired",
            MxStatus::CertNotYetValid => "cert_not_yet_valid",
            MxStatus::CertNameMismatch => "cert_name_mismatch",
            MxStatus::CertUntrusted => "cert_untrusted",
            MxStatus::Unreachable => "unreachable",
            MxStatus::ForbiddenAddress => "forbidden_address",
        }
    }

    /// A definite failure of RFC 8461 §4.2: an enforcing sender refuses this MX
    /// (`mx_starttls_missing` / `mx_tls_invalid`, `mx_tls_failed` column).
    pub const fn is_definite_failure(self) -> bool {
        !matches!(
            self,
            MxStatus::Valid | MxStatus::Unreachable | MxStatus::ForbiddenAddress
        )
    }

    /// Not probed to a verdict (`mx_unreachable`, `mx_tls_unknown` column).
    pub const fn is_unknown(self) -> bool {
        matches!(self, MxStatus::Unreachable | MxStatus::ForbiddenAddress)
    }
}

impl fmt::Display for MxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the end-entity certificate says (from the DER, whether or not it is valid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Subject distinguished name (RFC 4514 string).
    pub subject: String,
    /// DNS names of the subjectAltName extension, at most [`SAN_KEPT`].
    pub san: Vec<String>,
    /// SAN DNS names beyond the ones kept.
    pub san_omitted: usize,
    pub issuer: String,
    /// notBefore, UTC milliseconds since the epoch.
    pub not_before_ms: i64,
    /// notAfter, UTC milliseconds since the epoch.
    pub not_after_ms: i64,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub sha256: String,
}

/// The result of probing one MX host: a row of the spec §7 MX table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxProbe {
    /// The MX host name, lowercase, without trailing dot.
    pub host: String,
    /// The address of the last connection attempt (the one spoken to, when connected).
    pub address: Option<IpAddr>,
    pub status: MxStatus,
    /// First line of the greeting (code and text), control characters replaced, at most
    /// [`BANNER_MAX_CHARS`].
    pub banner: Option<String>,
    /// STARTTLS was offered in the EHLO reply.
    pub starttls: bool,
    /// Negotiated protocol, e.g. `TLSv1_3`.
    pub tls_version: Option<String>,
    /// Negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: Option<String>,
    pub cert: Option<CertFacts>,
    /// Why the status is not `valid` (or what went wrong after it was decided), one line.
    pub error: Option<String>,
    /// Start of the probe, UTC milliseconds since the epoch.
    pub probed_at_ms: i64,
    pub duration: Duration,
}

impl MxProbe {
    /// A probe that did not get to speak to the host (no address, lookup failure).
    pub fn unreachable(host: &str, detail: impl Into<String>) -> Self {
        let mut probe = MxProbe::started(host, now_ms());
        probe.error = Some(detail.into());
        probe
    }

    fn started(host: &str, probed_at_ms: i64) -> Self {
        MxProbe {
            host: normalise_host(host),
            address: None,
            status: MxStatus::Unreachable,
            banner: None,
            starttls: false,
            tls_version: None,
            cipher: None,
            cert: None,
            error: None,
            probed_at_ms,
            duration: Duration::ZERO,
        }
    }

    /// Whether the certificate ends within `window` after `now_ms` (UTC ms); false without one.
    pub fn cert_expires_within(&self, now_ms: i64, window: Duration) -> bool {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        self.cert
            .as_ref()
            .is_some_and(|cert| cert.not_after_ms < now_ms.saturating_add(window_ms))
    }

    /// Heap and inline bytes this result holds (for the probe cache's memory estimate).
    pub fn approximate_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        let cert = self.cert.as_ref().map_or(0, |cert| {
            std::mem::size_of::<CertFacts>()
                + cert.subject.capacity()
                + cert.issuer.capacity()
                + cert.sha256.capacity()
                + cert.san.capacity() * std::mem::size_of::<String>()
                + cert.san.iter().map(String::capacity).sum::<usize>()
        });
        std::mem::size_of::<Self>()
            + self.host.capacity()
            + text(&self.banner)
            + text(&self.tls_version)
            + text(&self.cipher)
            + text(&self.error)
            + cert
    }

    /// `mx_cert_expiring` of spec §7: a valid certificate with under 14 days left at `now_ms`.
    pub fn cert_expiring_soon(&self, now_ms: i64) -> bool {
        self.status == MxStatus::Valid && self.cert_expires_within(now_ms, EXPIRY_WARNING)
    }
}

/// The probe as the validator needs it: one MX host and its already resolved addresses (in
/// the order to try) in, one [`MxProbe`] out. Never fails, never panics; it always ends.
pub trait MxProber: Send + Sync {
    fn probe(&self, host: &str, addresses: &[IpAddr]) -> impl Future<Output = MxProbe> + Send;
}

/// Admission before each TCP connection to `address`; the pass is held for the whole
/// exchange. The scan's politeness limits implement it (`crate::scan::mx_cache::Politeness`).
pub trait ConnectGate: Send + Sync {
    type Pass: Send;
    fn admit(&self, address: IpAddr) -> impl Future<Output = Self::Pass> + Send;
}

/// No admission control (single-domain `check`, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungated;

impl ConnectGate for Ungated {
    type Pass = ();
    async fn admit(&self, _address: IpAddr) {}
}

impl<G: ConnectGate> ConnectGate for Arc<G> {
    type Pass = G::Pass;
    fn admit(&self, address: IpAddr) -> impl Future<Output = Self::Pass> + Send {
        G::admit(self, address)
    }
}

/// Settings of the probe.
#[derive(Clone)]
pub struct SmtpProbeConfig {
    /// The name sent in `EHLO` (ideally one with forward-confirmed reverse DNS).
    pub ehlo_name: String,
    /// 25, except in the lab.
    pub port: u16,
    /// One TCP connect attempt.
    pub connect_timeout: Duration,
    /// The SMTP exchange after the connection, STARTTLS and handshake included.
    pub smtp_timeout: Duration,
    /// Trust anchors for the MX certificate (the policy fetch's).
    pub roots: Arc<RootCertStore>,
    pub provider: Arc<CryptoProvider>,
    /// Which addresses may be contacted; the others make `forbidden_address`.
    pub address_policy: AddressPolicy,
}

impl SmtpProbeConfig {
    /// Port 25, default timeouts, the strict address policy.
    pub fn new(
        ehlo_name: impl Into<String>,
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        SmtpProbeConfig {
            ehlo_name: ehlo_name.into(),
            port: SMTP_PORT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            smtp_timeout: DEFAULT_SMTP_TIMEOUT,
            roots,
            provider,
            address_policy: AddressPolicy::default(),
        }
    }
}

/// The real probe over tokio and rustls.
pub struct SmtpProber<G = Ungated> {
    config: SmtpProbeConfig,
    connector: TlsConnector,
    gate: G,
}

impl SmtpProber<Ungated> {
    /// Fails only when the crypto provider supports neither TLS 1.2 nor 1.3, or the EHLO name
    /// would let a command be injected.
    pub fn new(config: SmtpProbeConfig) -> Result<Self, String> {
        if config.ehlo_name.is_empty()
            || !config
                .ehlo_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        {
            return Err(format!("unusable EHLO name {:?}", config.ehlo_name));
        }
        let verifier = Arc::new(RecordingVerifier {
            provider: config.provider.clone(),
        });
        let tls = ClientConfig::builder_with_provider(config.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(SmtpProber {
            config,
            connector: TlsConnector::from(Arc::new(tls)),
            gate: Ungated,
        })
    }
}

impl<G> SmtpProber<G> {
    /// The same probe, admitting every connection through `gate`.
    pub fn with_gate<H: ConnectGate>(self, gate: H) -> SmtpProber<H> {
        SmtpProber {
            config: self.config,
            connector: self.connector,
            gate,
        }
    }

    pub fn config(&self) -> &SmtpProbeConfig {
        &self.config
    }
}

impl<G: ConnectGate> MxProber for SmtpProber<G> {
    async fn probe(&self, host: &str, addresses: &[IpAddr]) -> MxProbe {
        let started = Instant::now();
        let mut probe = MxProbe::started(host, now_ms());
        self.probe_into(&mut probe, addresses).await;
        probe.duration = started.elapsed();
        probe
    }
}

/// Where the exchange was when the time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Banner,
    Ehlo,
    Starttls,
    Handshake,
    /// The verdict is in; only `QUIT` is left.
    Quit,
}

impl Stage {
    fn waiting_for(self) -> &'static str {
        match self {
            Stage::Banner => "the banner",
            Stage::Ehlo => "the EHLO reply",
            Stage::Starttls => "the STARTTLS reply",
            Stage::Handshake => "the TLS handshake",
            Stage::Quit => "the QUIT reply",
        }
    }
}

impl<G: ConnectGate> SmtpProber<G> {
    async fn probe_into(&self, probe: &mut MxProbe, addresses: &[IpAddr]) {
        if addresses.is_empty() {
            probe.error = Some("no address".to_owned());
            return;
        }
        let permitted: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|a| self.config.address_policy.permits(*a))
            .collect();
        if permitted.is_empty() {
            probe.status = MxStatus::ForbiddenAddress;
            probe.error = Some(format!(
                "only private or reserved addresses: {}",
                join_addresses(addresses)
            ));
            return;
        }
        let mut failures = Vec::new();
        for address in permitted.into_iter().take(MAX_ADDRESSES_TRIED) {
            probe.address = Some(address);
            let _pass = self.gate.admit(address).await;
            let target = SocketAddr::new(address, self.config.port);
            let stream =
                match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(target))
                    .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        failures.push(format!("{address}: connect: {error}"));
                        continue;
                    }
                    Err(_) => {
                        failures.push(format!("{address}: connect timed out"));
                        continue;
                    }
                };
            let _ = stream.set_nodelay(true);
            let mut stage = Stage::Banner;
            let exchange = self.converse(stream, probe, &mut stage);
            if tokio::time::timeout(self.config.smtp_timeout, exchange)
                .await
                .is_err()
                && stage != Stage::Quit
            {
                probe.status = if stage == Stage::Handshake {
                    MxStatus::TlsHandshakeFailed
                } else {
                    MxStatus::Unreachable
                };
                probe.error = Some(format!(
                    "timed out after {} ms waiting for {}",
                    self.config.smtp_timeout.as_millis(),
                    stage.waiting_for()
                ));
            }
            return;
        }
        probe.status = MxStatus::Unreachable;
        probe.error = Some(failures.join("; "));
    }

    /// The SMTP exchange on a connected socket. Sets `probe.status` and `probe.error` and moves
    /// `stage` to [`Stage::Quit`] once the verdict is in.
    async fn converse(&self, stream: TcpStream, probe: &mut MxProbe, stage: &mut Stage) {
        let mut reader = BufReader::new(stream);
        let banner = match read_reply(&mut reader).await {
            Ok(reply) => reply,
            Err(error) => {
                verdict(
                    probe,
                    MxStatus::Unreachable,
                    Some(format!("banner: {error}")),
                );
                *stage = Stage::Quit;
                return;
            }
        };
        probe.banner = Some(banner.first_line(BANNER_MAX_CHARS));
        if banner.code != 220 {
            verdict(
                probe,
                MxStatus::Unreachable,
                Some(format!("greeting {}", banner.summary())),
            );
            *stage = Stage::Quit;
            quit(&mut reader).await;
            return;
        }
        *stage = Stage::Ehlo;
        let ehlo = match command(&mut reader, &format!("EHLO {}", self.config.ehlo_name)).await {
            Ok(reply) => reply,
            Err(error) => {
                verdict(probe, MxStatus::Unreachable, Some(format!("EHLO: {error}")));
                *stage = Stage::Quit;
                return;
            }
        };
        if ehlo.code != 250 {
            let status = if ehlo.code >= 500 {
                MxStatus::StarttlsMissing
            } else {
                MxStatus::Unreachable
            };
            verdict(
                probe,
                status,
                Some(format!("EHLO refused: {}", ehlo.summary())),
            );
            *stage = Stage::Quit;
            quit(&mut reader).await;
            return;
        }
        probe.starttls = ehlo.has_extension("STARTTLS");
        if !probe.starttls {
            verdict(
                probe,
                MxStatus::StarttlsMissing,
                Some("STARTTLS not offered in the EHLO reply".to_owned()),
            );
            *stage = Stage::Quit;
            quit(&mut reader).await;
            return;
        }
        *stage = Stage::Starttls;
        let go_ahead = match command(&mut reader, "STARTTLS").await {
            Ok(reply) => reply,
            Err(error) => {
                verdict(
                    probe,
                    MxStatus::Unreachable,
                    Some(format!("STARTTLS: {error}")),
                );
                *stage = Stage::Quit;
                return;
            }
        };
        if go_ahead.code != 220 {
            verdict(
                probe,
                MxStatus::TlsHandshakeFailed,
                Some(format!("STARTTLS refused: {}", go_ahead.summary())),
            );
            *stage = Stage::Quit;
            quit(&mut reader).await;
            return;
        }
        // RFC 3207 §4.2 / CVE-2011-0411: bytes after the 220 were sent before TLS, so whatever
        // the TLS layer would make of them is attacker-controlled. Refuse instead of dropping them.
        if !reader.buffer().is_empty() {
            verdict(
                probe,
                MxStatus::TlsHandshakeFailed,
                Some(format!(
                    "{} bytes of plaintext after the 220 reply to STARTTLS",
                    reader.buffer().len()
                )),
            );
            *stage = Stage::Quit;
            return;
        }
        *stage = Stage::Handshake;
        let Ok(server_name) = ServerName::try_from(probe.host.clone()) else {
            verdict(
                probe,
                MxStatus::TlsHandshakeFailed,
                Some(format!("host name {:?} is not usable for SNI", probe.host)),
            );
            *stage = Stage::Quit;
            return;
        };
        let tls = match self
            .connector
            .connect(server_name, reader.into_inner())
            .await
        {
            Ok(tls) => tls,
            Err(error) => {
                verdict(
                    probe,
                    MxStatus::TlsHandshakeFailed,
                    Some(format!("TLS handshake: {}", describe_tls_error(&error))),
                );
                *stage = Stage::Quit;
                return;
            }
        };
        let connection = tls.get_ref().1;
        probe.tls_version = connection
            .protocol_version()
            .map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_owned));
        probe.cipher = connection.negotiated_cipher_suite().map(|s| {
            s.suite()
                .as_str()
                .map_or_else(|| format!("{:?}", s.suite()), str::to_owned)
        });
        let chain = connection.peer_certificates().unwrap_or_default();
        let judgement = judge_certificate(
            chain,
            &probe.host,
            &self.config.roots,
            &self.config.provider,
            UnixTime::now(),
        );
        probe.cert = judgement.facts;
        verdict(probe, judgement.status, judgement.error);
        *stage = Stage::Quit;
        let mut tls = BufReader::new(tls);
        quit(&mut tls).await;
        let _ = tls.get_mut().shutdown().await;
    }
}

/// Sends `QUIT` and waits briefly for the reply, ignoring failures (the verdict is already in).
async fn quit<S: AsyncBufRead + AsyncWrite + Unpin>(stream: &mut S) {
    let _ = tokio::time::timeout(QUIT_WAIT, command(stream, "QUIT")).await;
}

/// Writes one command line and reads its reply.
async fn command<S: AsyncBufRead + AsyncWrite + Unpin>(
    stream: &mut S,
    line: &str,
) -> Result<Reply, ReplyError> {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(ReplyError::Io)?;
    stream.flush().await.map_err(ReplyError::Io)?;
    read_reply(stream).await
}

/// One SMTP reply (RFC 5321 §4.2): a code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// `code text` of the first line, control characters replaced, cut to `max_chars`.
    pub fn first_line(&self, max_chars: usize) -> String {
        let first = self.lines.first().map_or("", String::as_str);
        let line = if first.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {first}", self.code)
        };
        line.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(max_chars)
            .collect()
    }

    fn summary(&self) -> String {
        self.first_line(120)
    }

    /// Whether an EHLO reply lists `keyword` (RFC 5321 §4.1.1.1: one extension per line after
    /// the first, keyword first, case-insensitive).
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|line| {
            line.split_ascii_whitespace()
                .next()
                .is_some_and(|word| word.eq_ignore_ascii_case(keyword))
        })
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReplyError {
    /// The peer closed the connection.
    Closed,
    Io(std::io::Error),
    /// A line over the length limit or too many lines.
    TooLong,
    /// Not `ddd[ -]text`.
    Malformed(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Closed => f.write_str("connection closed"),
            ReplyError::Io(error) => write!(f, "{error}"),
            ReplyError::TooLong => f.write_str("reply too long"),
            ReplyError::Malformed(line) => write!(f, "malformed reply {line:?}"),
        }
    }
}

/// One line of a reply: code, whether it is the last line, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: u16,
    pub last: bool,
    pub text: &'a str,
}

/// Parses a reply line without its line ending (RFC 5321 §4.2: `ddd-text` continues,
/// `ddd text` or bare `ddd` ends the reply). Codes are 2xx–5xx.
pub fn parse_reply_line(line: &str) -> Option<ReplyLine<'_>> {
    let bytes = line.as_bytes();
    let digits = bytes.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match bytes.get(3) {
        None => Some(ReplyLine {
            code,
            last: true,
            text: "",
        }),
        Some(b' ') => Some(ReplyLine {
            code,
            last: true,
            text: line.get(4..)?,
        }),
        Some(b'-') => Some(ReplyLine {
            code,
            last: false,
            text: line.get(4..)?,
        }),
        Some(_) => None,
    }
}

/// Reads one reply, however its bytes are split across reads.
pub async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Reply, ReplyError> {
    let mut reply: Option<Reply> = None;
    loop {
        let raw = read_line_capped(reader).await?;
        let text = String::from_utf8_lossy(&raw);
        let parsed = parse_reply_line(&text)
            .ok_or_else(|| ReplyError::Malformed(text.chars().take(80).collect()))?;
        let reply = reply.get_or_insert_with(|| Reply {
            code: parsed.code,
            lines: Vec::new(),
        });
        if reply.lines.len() >= REPLY_LINES_MAX {
            return Err(ReplyError::TooLong);
        }
        reply.lines.push(parsed.text.to_owned());
        if parsed.last {
            return Ok(std::mem::replace(
                reply,
                Reply {
                    code: 0,
                    lines: Vec::new(),
                },
            ));
        }
    }
}

/// One line without its `\n` / `\r\n`, at most [`REPLY_LINE_MAX`] bytes.
async fn read_line_capped<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, ReplyError> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await.map_err(ReplyError::Io)?;
        if available.is_empty() {
            return Err(ReplyError::Closed);
        }
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if line.len() > REPLY_LINE_MAX {
            return Err(ReplyError::TooLong);
        }
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// The chain, validity and name verdict on the presented certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertJudgement {
    pub status: MxStatus,
    pub error: Option<String>,
    pub facts: Option<CertFacts>,
}

/// Judges a presented chain for `host`: chain to `roots` with the validity period at `now`
/// (webpki), then the name (RFC 6125 DNS-ID, [`dns_id_matches`]). The status is the first
/// fault in that order; the error lists every fault.
pub fn judge_certificate(
    chain: &[CertificateDer<'_>],
    host: &str,
    roots: &RootCertStore,
    provider: &CryptoProvider,
    now: UnixTime,
) -> CertJudgement {
    let Some(end_entity) = chain.first() else {
        return CertJudgement {
            status: MxStatus::TlsHandshakeFailed,
            error: Some("no certificate presented".to_owned()),
            facts: None,
        };
    };
    let facts = cert_facts(end_entity);
    let mut faults: Vec<(MxStatus, String)> = Vec::new();
    match ParsedCertificate::try_from(end_entity) {
        Ok(parsed) => {
            if let Err(error) = rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                roots,
                &chain[1..],
                now,
                provider.signature_verification_algorithms.all,
            ) {
                faults.push(classify_chain_error(&error, facts.as_ref(), chain.len()));
            }
        }
        Err(error) => faults.push((MxStatus::CertUntrusted, format!("certificate: {error}"))),
    }
    match &facts {
        Some(facts) if facts.san.iter().any(|name| dns_id_matches(name, host)) => {}
        Some(facts) => faults.push((
            MxStatus::CertNameMismatch,
            format!(
                "no DNS name of the certificate matches {host} (names: {})",
                if facts.san.is_empty() {
                    "none".to_owned()
                } else {
                    facts.san.join(", ")
                }
            ),
        )),
        None => faults.push((
            MxStatus::CertUntrusted,
            "certificate not parseable".to_owned(),
        )),
    }
    let status = faults
        .first()
        .map_or(MxStatus::Valid, |(status, _)| *status);
    let error = (!faults.is_empty()).then(|| {
        faults
            .iter()
            .map(|(_, detail)| detail.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    });
    CertJudgement {
        status,
        error,
        facts,
    }
}

fn classify_chain_error(
    error: &rustls::Error,
    facts: Option<&CertFacts>,
    chain_len: usize,
) -> (MxStatus, String) {
    let at = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    };
    match error {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => (
            MxStatus::CertExpired,
            match at(facts.map(|f| f.not_after_ms)) {
                Some(time) => format!("certificate expired at {time}"),
                None => "certificate expired".to_owned(),
            },
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => (
            MxStatus::CertNotYetValid,
            match at(facts.map(|f| f.not_before_ms)) {
                Some(time) => format!("certificate not valid before {time}"),
                None => "certificate not valid yet".to_owned(),
            },
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            let detail = match facts {
                Some(f) if chain_len == 1 && f.subject == f.issuer => {
                    "self-signed certificate".to_owned()
                }
                Some(f) => format!(
                    "certificate issuer not trusted (unknown CA or missing intermediate): {}",
                    f.issuer
                ),
                None => "certificate issuer not trusted".to_owned(),
            };
            (MxStatus::CertUntrusted, detail)
        }
        _ => (MxStatus::CertUntrusted, format!("certificate: {error}")),
    }
}

/// Facts of a DER certificate, or `None` when it does not parse.
pub fn cert_facts(der: &CertificateDer<'_>) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    let san_omitted = names.len().saturating_sub(SAN_KEPT);
    names.truncate(SAN_KEPT);
    let validity = cert.validity();
    Some(CertFacts {
        subject: cert.subject().to_string(),
        san: names,
        san_omitted,
        issuer: cert.issuer().to_string(),
        not_before_ms: validity.not_before.timestamp().saturating_mul(1000),
        not_after_ms: validity.not_after.timestamp().saturating_mul(1000),
        sha256: Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

/// Whether the presented DNS-ID `presented` (a SAN dNSName) identifies `host`, per RFC 6125
/// §6.4 as spec §7 narrows it: ASCII case-insensitive equality (one trailing dot ignored), or a
/// wildcard that is the whole left-most label (`*.example.com`) standing for exactly one
/// non-empty label, with at least two labels after it. No partial-label wildcards
/// (`f*.example.com`), no wildcard elsewhere; the subject CN is never consulted.
pub fn dns_id_matches(presented: &str, host: &str) -> bool {
    let presented = presented.strip_suffix('.').unwrap_or(presented);
    let host = host.strip_suffix('.').unwrap_or(host);
    if presented.is_empty() || host.is_empty() || host.contains('*') {
        return false;
    }
    if let Some(suffix) = presented.strip_prefix("*.") {
        if suffix.contains('*') || !suffix.contains('.') || suffix.split('.').any(str::is_empty) {
            return false;
        }
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        };
    }
    !presented.contains('*') && presented.eq_ignore_ascii_case(host)
}

/// The handshake accepts every certificate (after checking the handshake signature with it),
/// so the chain and the name can be judged separately afterwards ([`judge_certificate`]).
#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error inside an I/O error when there is one (alerts, protocol errors).
fn describe_tls_error(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

fn verdict(probe: &mut MxProbe, status: MxStatus, error: Option<String>) {
    probe.status = status;
    probe.error = error;
}

fn normalise_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn join_addresses(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[test]
    fn status_names_are_the_spec_section_7_names() {
        let names: Vec<&str> = MxStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "valid",
                "starttls_missing",
                "tls_handshake_failed",
                "cert_expired",
                "cert_not_yet_valid",
                "cert_name_mismatch",
                "cert_untrusted",
                "unreachable",
                "forbidden_address"
            ]
        );
        let failures: Vec<bool> = MxStatus::ALL
            .iter()
            .map(|s| s.is_definite_failure())
            .collect();
        assert_eq!(
            failures,
            [false, true, true, true, true, true, true, false, false]
        );
    }

    #[test]
    fn dns_id_matching_follows_rfc_6125_as_spec_section_7_narrows_it() {
        for ((presented, host), expected) in [
            (("mx.example.com", "mx.example.com"), true),
            (("MX.Example.COM", "mx.example.com"), true),
            (("mx.example.com.", "mx.example.com"), true),
            (("mx.example.com", "mx.example.com."), true),
            (("mx.example.com", "mx2.example.com"), false),
            (("example.com", "mx.example.com"), false),
            // Wildcard: the whole left-most label, exactly one label.
            (("*.example.com", "mx.example.com"), true),
            (("*.EXAMPLE.com", "MX.example.COM"), true),
            (("*.example.com", "example.com"), false),
            (("*.example.com", "a.b.example.com"), false),
            (("*.example.com", ".example.com"), false),
            (("*.example.com", "mx.example.org"), false),
            // No wildcard over a single label, no partial or inner wildcard.
            (("*.com", "example.com"), false),
            (("*", "localhost"), false),
            (("f*.example.com", "foo.example.com"), false),
            (("*x.example.com", "mx.example.com"), false),
            (("mx.*.example.com", "mx.a.example.com"), false),
            (("*.*.example.com", "a.b.example.com"), false),
            (("*.example..com", "mx.example..com"), false),
            // A host is never a pattern.
            (("*.example.com", "*.example.com"), false),
            (("", "mx.example.com"), false),
            (("mx.example.com", ""), false),
        ] {
            assert_eq!(
                dns_id_matches(presented, host),
                expected,
                "{presented:?} vs {host:?}"
            );
        }
    }

    /// A CA and a leaf it issues, with `sans` as DNS names and `common_name` as subject CN.
    fn issued_chain(
        sans: &[&str],
        common_name: &str,
    ) -> (RootCertStore, Vec<CertificateDer<'static>>) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "unit test root");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let names: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca_cert.der().to_vec()))
            .unwrap();
        (roots, vec![CertificateDer::from(leaf.der().to_vec())])
    }

    #[test]
    fn certificate_names_come_from_the_san_only_never_the_common_name() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let now = UnixTime::now();
        for (sans, common_name, expected) in [
            (&["mx.example.com"][..], "mx.example.com", MxStatus::Valid),
            (&["*.example.com"][..], "whatever", MxStatus::Valid),
            (
                &["other.example.com", "MX.EXAMPLE.COM"][..],
                "x",
                MxStatus::Valid,
            ),
            // RFC 6125 §6.4.4 fallback to the CN is not done (spec §7: DNS-ID only).
            (
                &["other.example.com"][..],
                "mx.example.com",
                MxStatus::CertNameMismatch,
            ),
            (&[][..], "mx.example.com", MxStatus::CertNameMismatch),
            (
                &["*.mx.example.com"][..],
                "mx.example.com",
                MxStatus::CertNameMismatch,
            ),
        ] {
            let (roots, chain) = issued_chain(sans, common_name);
            let judged = judge_certificate(&chain, "mx.example.com", &roots, &provider, now);
            assert_eq!(judged.status, expected, "{sans:?} CN={common_name}");
            let facts = judged.facts.unwrap();
            assert_eq!(facts.san, sans);
            assert_eq!(facts.subject, format!("CN={common_name}"));
            assert_eq!(facts.issuer, "CN=unit test root");
        }
        // Untrusted and misnamed: the chain fault comes first, both are told.
        let (_, chain) = issued_chain(&["other.example.com"], "x");
        let (other_roots, _) = issued_chain(&[], "x");
        let judged = judge_certificate(&chain, "mx.example.com", &other_roots, &provider, now);
        assert_eq!(judged.status, MxStatus::CertUntrusted);
        let error = judged.error.unwrap();
        // The other root has the same name, so webpki finds it and the signature fails.
        assert!(
            error.starts_with("certificate: invalid peer certificate: BadSignature; no DNS name"),
            "{error}"
        );
        let nothing = judge_certificate(&[], "mx.example.com", &other_roots, &provider, now);
        assert_eq!(nothing.status, MxStatus::TlsHandshakeFailed);
        let garbage = [CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])];
        let garbage = judge_certificate(&garbage, "mx.example.com", &other_roots, &provider, now);
        assert_eq!(garbage.status, MxStatus::CertUntrusted);
    }

    #[test]
    fn reply_lines_parse_per_rfc_5321_section_4_2() {
        for (line, expected) in [
            (
                "220 mx.example.com ESMTP",
                Some((220, true, "mx.example.com ESMTP")),
            ),
            ("250-STARTTLS", Some((250, false, "STARTTLS"))),
            ("250 ", Some((250, true, ""))),
            ("250", Some((250, true, ""))),
            ("554 5.7.1 no", Some((554, true, "5.7.1 no"))),
            ("421-", Some((421, false, ""))),
            ("25", None),
            ("2500 x", None),
            ("abc def", None),
            ("120 wait", None),
            ("650 x", None),
            ("", None),
            ("SSH-2.0-OpenSSH", None),
        ] {
            let parsed = parse_reply_line(line).map(|l| (l.code, l.last, l.text));
            assert_eq!(parsed, expected, "{line:?}");
        }
    }

    /// A reader that yields its fragments one read at a time, so lines cross read boundaries.
    fn fragmented(parts: &[&'static [u8]]) -> impl tokio::io::AsyncBufRead + Unpin + use<> {
        let mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = Box::new(&b""[..]);
        for part in parts {
            reader = Box::new(reader.chain(*part));
        }
        BufReader::new(reader)
    }

    #[tokio::test]
    async fn replies_are_read_across_fragments() {
        let mut reader = fragmented(&[
            b"250-mx.exa",
            b"mple.com greets you\r",
            b"\n250-PIPE",
            b"LINING\r\n250-star",
            b"ttls\r\n250 8BITMIME\r\n221 bye\n",
        ]);
        let reply = read_reply(&mut reader).await.unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(
            reply.lines,
            [
                "mx.example.com greets you",
                "PIPELINING",
                "starttls",
                "8BITMIME"
            ]
        );
        assert!(reply.has_extension("STARTTLS"));
        assert!(!reply.has_extension("SMTPUTF8"));
        let next = read_reply(&mut reader).await.unwrap();
        assert_eq!((next.code, next.lines.len()), (221, 1));
        assert!(matches!(
            read_reply(&mut reader).await,
            Err(ReplyError::Closed)
        ));
    }

    #[tokio::test]
    async fn hostile_replies_end_in_errors() {
        // Closed mid-reply, garbage, an endless line, endless continuation lines.
        let mut closed = fragmented(&[b"250-half\r\n250-line"]);
        assert!(matches!(
            read_reply(&mut closed).await,
            Err(ReplyError::Closed)
        ));
        let mut garbage = fragmented(&[b"\x16\x03\x01\x00\x05hello\r\n"]);
        assert!(matches!(
            read_reply(&mut garbage).await,
            Err(ReplyError::Malformed(_))
        ));
        let long: &'static [u8] = Box::leak(vec![b'a'; REPLY_LINE_MAX + 10].into_boxed_slice());
        let mut endless_line = fragmented(&[b"220 ", long, b"\r\n"]);
        assert!(matches!(
            read_reply(&mut endless_line).await,
            Err(ReplyError::TooLong)
        ));
        let many: &'static [u8] = "250-x\r\n".repeat(REPLY_LINES_MAX + 1).leak().as_bytes();
        let mut endless_reply = fragmented(&[many, b"250 end\r\n"]);
        assert!(matches!(
            read_reply(&mut endless_reply).await,
            Err(ReplyError::TooLong)
        ));
    }

    #[test]
    fn banner_first_line_is_cleaned_and_cut() {
        let reply = Reply {
            code: 220,
            lines: vec![format!("mx\u{7}{}", "x".repeat(300)), "second".to_owned()],
        };
        let first = reply.first_line(BANNER_MAX_CHARS);
        assert_eq!(first.chars().count(), BANNER_MAX_CHARS);
        assert!(first.starts_with("220 mx?xxx"));
    }

    #[test]
    fn expiry_window_is_fourteen_days() {
        let day_ms = 24 * 3600 * 1000;
        let mut probe = MxProbe::started("MX.Example.com.", 0);
        assert_eq!(probe.host, "mx.example.com");
        assert!(!probe.cert_expires_within(0, EXPIRY_WARNING));
        probe.status = MxStatus::Valid;
        probe.cert = Some(CertFacts {
            subject: String::new(),
            san: Vec::new(),
            san_omitted: 0,
            issuer: String::new(),
            not_before_ms: 0,
            not_after_ms: 100 * day_ms,
            sha256: String::new(),
        });
        for (now_days, expiring) in [(0, false), (86, false), (87, true), (99, true), (120, true)] {
            assert_eq!(
                probe.cert_expiring_soon(now_days * day_ms),
                expiring,
                "day {now_days}"
            );
        }
        probe.status = MxStatus::CertExpired;
        assert!(!probe.cert_expiring_soon(120 * day_ms));
    }
}
