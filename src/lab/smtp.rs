//! The test internet's SMTP servers (tokio + rustls) for the MX probe (spec §7): one listener per
//! MX behaviour, each on its own loopback address `127.25.0.N` and one shared port. The server
//! knows the behaviour from the address the client connected to, before the first byte (SNI comes
//! too late: STARTTLS follows a plaintext greeting). The lab DNS answers `<slug>.mx.test`, and any
//! name under it, with the behaviour's address; certificates come from the lab CA for the SNI name.
//!
//! Server-side counters (connections per behaviour, most at once, `MAIL`/`RCPT`/`DATA` seen) let
//! tests prove the probe cache, the per-address limit and that no mail is ever sent.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::ca::{CertKind, LabCa};
use crate::net::smtp::MxStatus;

/// The lab zone of the MX hosts: `<slug>.mx.test`.
pub const MX_ZONE: &str = "mx.test";
/// A loopback address where nothing listens (connection refused).
pub const REFUSING_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 25, 255, 254);
/// How long one connection is served at most (tarpit, held connections).
const HOLD_LIMIT: Duration = Duration::from_secs(60);
/// Commands answered per connection at most.
const COMMANDS_MAX: usize = 32;
/// Longest command line read.
const COMMAND_LINE_MAX: u64 = 1024;

/// How the MX host at one lab address behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MxBehaviour {
    /// STARTTLS, a certificate for the SNI name from the trusted lab root.
    Valid,
    /// STARTTLS, a `*.mx.test` certificate.
    Wildcard,
    /// EHLO reply without STARTTLS.
    NoStarttls,
    /// Certificate expired in 2021.
    Expired,
    /// Certificate valid from 2098.
    NotYetValid,
    /// Certificate for `not-<host>`.
    WrongName,
    /// Self-signed certificate.
    SelfSigned,
    /// Certificate from a CA the scanner does not trust.
    UntrustedCa,
    /// Certificate from the lab intermediate, sent without it.
    MissingIntermediate,
    /// `454 4.7.0` to STARTTLS.
    StarttlsRefused,
    /// `421` greeting, then close.
    Greeting421,
    /// `554` greeting; every command but QUIT gets `503`.
    Greeting554,
    /// Accepts and never speaks.
    Tarpit,
    /// Closes the connection on EHLO.
    CloseAfterEhlo,
    /// Multi-line banner and EHLO reply written in 7-byte TCP segments; a complete chain
    /// through the lab intermediate (valid).
    SplitReplies,
    /// `220` to STARTTLS followed, in the same write, by plaintext lines (a STARTTLS injection).
    InjectAfterStarttls,
    /// `220` to STARTTLS, then bytes that are not TLS in answer to the ClientHello.
    GarbageAfterStarttls,
    /// STARTTLS, a valid certificate that expires in seven days (`mx_cert_expiring`).
    Expiring,
    /// Accepts and stays silent until the test releases it ([`LabSmtp::release_held`]), then
    /// ends the connection count and answers `421`.
    Held,
}

impl MxBehaviour {
    pub const ALL: [MxBehaviour; 19] = [
        MxBehaviour::Valid,
        MxBehaviour::Wildcard,
        MxBehaviour::NoStarttls,
        MxBehaviour::Expired,
        MxBehaviour::NotYetValid,
        MxBehaviour::WrongName,
        MxBehaviour::SelfSigned,
        MxBehaviour::UntrustedCa,
        MxBehaviour::MissingIntermediate,
        MxBehaviour::StarttlsRefused,
        MxBehaviour::Greeting421,
        MxBehaviour::Greeting554,
        MxBehaviour::Tarpit,
        MxBehaviour::CloseAfterEhlo,
        MxBehaviour::SplitReplies,
        MxBehaviour::InjectAfterStarttls,
        MxBehaviour::GarbageAfterStarttls,
        MxBehaviour::Held,
        MxBehaviour::Expiring,
    ];

    pub const fn slug(self) -> &'static str {
        match self {
            MxBehaviour::Valid => "valid",
            MxBehaviour::Wildcard => "wildcard",
            MxBehaviour::NoStarttls => "no-starttls",
            MxBehaviour::Expired => "expired",
            MxBehaviour::NotYetValid => "not-yet-valid",
            MxBehaviour::WrongName => "wrong-name",
            MxBehaviour::SelfSigned => "self-signed",
            MxBehaviour::UntrustedCa => "untrusted-ca",
            MxBehaviour::MissingIntermediate => "missing-intermediate",
            MxBehaviour::StarttlsRefused => "starttls-454",
            MxBehaviour::Greeting421 => "greeting-421",
            MxBehaviour::Greeting554 => "greeting-554",
            MxBehaviour::Tarpit => "tarpit",
            MxBehaviour::CloseAfterEhlo => "close-after-ehlo",
            MxBehaviour::SplitReplies => "split-replies",
            MxBehaviour::InjectAfterStarttls => "inject-after-starttls",
            MxBehaviour::GarbageAfterStarttls => "garbage-after-starttls",
            MxBehaviour::Held => "held",
            MxBehaviour::Expiring => "expiring",
        }
    }

    /// The status a correct probe reports for this behaviour.
    pub const fn expected_status(self) -> MxStatus {
        match self {
            MxBehaviour::Valid
            | MxBehaviour::Wildcard
            | MxBehaviour::SplitReplies
            | MxBehaviour::Expiring => MxStatus::Valid,
            MxBehaviour::NoStarttls => MxStatus::StarttlsMissing,
            MxBehaviour::Expired => MxStatus::CertExpired,
            MxBehaviour::NotYetValid => MxStatus::CertNotYetValid,
            MxBehaviour::WrongName => MxStatus::CertNameMismatch,
            MxBehaviour::SelfSigned
            | MxBehaviour::UntrustedCa
            | MxBehaviour::MissingIntermediate => MxStatus::CertUntrusted,
            MxBehaviour::StarttlsRefused
            | MxBehaviour::InjectAfterStarttls
            | MxBehaviour::GarbageAfterStarttls => MxStatus::TlsHandshakeFailed,
            MxBehaviour::Greeting421
            | MxBehaviour::Greeting554
            | MxBehaviour::Tarpit
            | MxBehaviour::CloseAfterEhlo
            | MxBehaviour::Held => MxStatus::Unreachable,
        }
    }

    fn cert(self) -> CertKind {
        match self {
            MxBehaviour::Wildcard => CertKind::Wildcard,
            MxBehaviour::Expired => CertKind::Expired,
            MxBehaviour::NotYetValid => CertKind::NotYetValid,
            MxBehaviour::WrongName => CertKind::WrongName,
            MxBehaviour::SelfSigned => CertKind::SelfSigned,
            MxBehaviour::UntrustedCa => CertKind::Untrusted,
            MxBehaviour::MissingIntermediate => CertKind::MissingIntermediate,
            MxBehaviour::SplitReplies => CertKind::ViaIntermediate,
            MxBehaviour::Expiring => CertKind::ExpiringSoon,
            _ => CertKind::Valid,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|b| *b == self).unwrap_or(0)
    }

    /// The behaviour's own loopback address, `127.25.0.<position + 1>`.
    pub fn address(self) -> Ipv4Addr {
        Ipv4Addr::new(127, 25, 0, self.index() as u8 + 1)
    }

    /// `<slug>.mx.test`.
    pub fn host(self) -> String {
        format!("{}.{MX_ZONE}", self.slug())
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.slug() == slug)
    }

    /// The behaviour of `<slug>.mx.test` or of any name under it (`a.<slug>.mx.test`, so tests
    /// can use many host names on one address). Case-insensitive, one trailing dot allowed.
    pub fn of_host(host: &str) -> Option<Self> {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let above = host.strip_suffix(MX_ZONE)?.strip_suffix('.')?;
        let slug = above.rsplit('.').next()?;
        Self::from_slug(slug)
    }
}

/// Server-side counts for one behaviour (one address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections accepted.
    pub total: u64,
    /// Connections open now.
    pub active: usize,
    /// Most connections open at once.
    pub max_active: usize,
    /// `MAIL`, `RCPT` or `DATA` commands received (a probe must never send one).
    pub mail_commands: u64,
}

struct SmtpState {
    counts: Vec<watch::Sender<ConnectionCounts>>,
    tls: Vec<Arc<ServerConfig>>,
    held: Semaphore,
}

/// The running SMTP servers. Dropping it stops them.
pub struct LabSmtp {
    port: u16,
    state: Arc<SmtpState>,
    tasks: Vec<JoinHandle<()>>,
}

impl LabSmtp {
    /// Listens on every behaviour's address on one free port (call inside a tokio runtime).
    pub async fn start(ca: Arc<LabCa>) -> std::io::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = Vec::new();
        for behaviour in MxBehaviour::ALL {
            let config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
                .map_err(std::io::Error::other)?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(MxCertificates {
                    ca: ca.clone(),
                    provider: provider.clone(),
                    kind: behaviour.cert(),
                    fallback_host: behaviour.host(),
                }));
            tls.push(Arc::new(config));
        }
        let state = Arc::new(SmtpState {
            counts: MxBehaviour::ALL
                .iter()
                .map(|_| watch::Sender::new(ConnectionCounts::default()))
                .collect(),
            tls,
            held: Semaphore::new(0),
        });
        let (port, listeners) = bind_all().await?;
        let tasks = listeners
            .into_iter()
            .map(|(behaviour, listener)| tokio::spawn(serve(listener, behaviour, state.clone())))
            .collect();
        Ok(LabSmtp { port, state, tasks })
    }

    /// The shared port (the probe's lab-only port override).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the behaviour listens.
    pub fn address(&self, behaviour: MxBehaviour) -> SocketAddr {
        SocketAddr::from((behaviour.address(), self.port))
    }

    /// The counts for one behaviour now.
    pub fn counts(&self, behaviour: MxBehaviour) -> ConnectionCounts {
        *self.state.counts[behaviour.index()].borrow()
    }

    /// Waits until the counts of `behaviour` satisfy `ready` (no polling: woken on each change).
    pub async fn wait_for(
        &self,
        behaviour: MxBehaviour,
        mut ready: impl FnMut(&ConnectionCounts) -> bool,
    ) -> ConnectionCounts {
        let mut receiver = self.state.counts[behaviour.index()].subscribe();
        match receiver.wait_for(|counts| ready(counts)).await {
            Ok(counts) => *counts,
            // The sender lives in `self.state`, so it cannot be gone.
            Err(_) => self.counts(behaviour),
        }
    }

    /// Lets `n` held connections (present or future) answer and close.
    pub fn release_held(&self, n: usize) {
        self.state.held.add_permits(n);
    }
}

impl Drop for LabSmtp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds every behaviour's address on one port, retrying until a port is free on all of them.
async fn bind_all() -> std::io::Result<(u16, Vec<(MxBehaviour, TcpListener)>)> {
    let mut last_error = None;
    for _ in 0..50 {
        let first = TcpListener::bind((MxBehaviour::ALL[0].address(), 0)).await?;
        let port = first.local_addr()?.port();
        let mut listeners = vec![(MxBehaviour::ALL[0], first)];
        for behaviour in &MxBehaviour::ALL[1..] {
            match TcpListener::bind((behaviour.address(), port)).await {
                Ok(listener) => listeners.push((*behaviour, listener)),
                Err(error) => {
                    last_error = Some(error);
                    break;
                }
            }
        }
        if listeners.len() == MxBehaviour::ALL.len() {
            return Ok((port, listeners));
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port free on every lab MX address")))
}

/// The certificate of one behaviour, for the SNI name (or the behaviour's host without SNI).
#[derive(Debug)]
struct MxCertificates {
    ca: Arc<LabCa>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    kind: CertKind,
    fallback_host: String,
}

impl ResolvesServerCert for MxCertificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = client_hello
            .server_name()
            .map_or_else(|| self.fallback_host.clone(), str::to_ascii_lowercase);
        self.ca.certified_key(&host, self.kind, &self.provider).ok()
    }
}

async fn serve(listener: TcpListener, behaviour: MxBehaviour, state: Arc<SmtpState>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let mut open = OpenConnection::count(state.clone(), behaviour);
            let _ = tokio::time::timeout(HOLD_LIMIT, handle(stream, behaviour, &state, &mut open))
                .await;
        });
    }
}

/// Counts a connection as open until dropped or ended.
struct OpenConnection {
    state: Arc<SmtpState>,
    index: usize,
    open: bool,
}

impl OpenConnection {
    fn count(state: Arc<SmtpState>, behaviour: MxBehaviour) -> Self {
        let index = behaviour.index();
        state.counts[index].send_modify(|counts| {
            counts.total += 1;
            counts.active += 1;
            counts.max_active = counts.max_active.max(counts.active);
        });
        OpenConnection {
            state,
            index,
            open: true,
        }
    }

    fn end(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            self.state.counts[self.index].send_modify(|counts| {
                counts.active = counts.active.saturating_sub(1);
            });
        }
    }

    fn mail_command(&self) {
        self.state.counts[self.index].send_modify(|counts| counts.mail_commands += 1);
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.end();
    }
}

async fn handle(
    stream: TcpStream,
    behaviour: MxBehaviour,
    state: &SmtpState,
    open: &mut OpenConnection,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let host = behaviour.host();
    let mut reader = BufReader::new(stream);
    match behaviour {
        MxBehaviour::Tarpit => {
            drain(&mut reader).await;
            return Ok(());
        }
        MxBehaviour::Held => {
            tokio::select! {
                permit = state.held.acquire() => {
                    if let Ok(permit) = permit {
                        permit.forget();
                    }
                    // Counted as closed before the client can see the answer, so a client
                    // that opens its next connection after this one ends never overlaps it.
                    open.end();
                    let stream = reader.get_mut();
                    stream.write_all(b"421 4.3.2 released by the test\r\n").await?;
                    return stream.shutdown().await;
                }
                () = drain(&mut reader) => return Ok(()),
            }
        }
        MxBehaviour::Greeting421 => {
            let stream = reader.get_mut();
            stream
                .write_all(format!("421 4.3.2 {host} service not available\r\n").as_bytes())
                .await?;
            return stream.shutdown().await;
        }
        MxBehaviour::Greeting554 => {
            let stream = reader.get_mut();
            stream
                .write_all(format!("554 5.3.2 {host} no SMTP service here\r\n").as_bytes())
                .await?;
        }
        MxBehaviour::SplitReplies => {
            let banner = format!("220-{host} ESMTP mta-sts-scan lab\r\n220 greeting split\r\n");
            write_split(reader.get_mut(), banner.as_bytes()).await?;
        }
        _ => {
            let banner = format!("220 {host} ESMTP mta-sts-scan lab\r\n");
            reader.get_mut().write_all(banner.as_bytes()).await?;
        }
    }
    for _ in 0..COMMANDS_MAX {
        let Some(line) = read_command(&mut reader).await else {
            return Ok(());
        };
        let verb = verb_of(&line);
        if behaviour == MxBehaviour::Greeting554 && verb != "QUIT" {
            reply(reader.get_mut(), "503 5.5.1 no service\r\n").await?;
            continue;
        }
        match verb.as_str() {
            "EHLO" => {
                if behaviour == MxBehaviour::CloseAfterEhlo {
                    return reader.get_mut().shutdown().await;
                }
                let offered = behaviour != MxBehaviour::NoStarttls;
                let text = ehlo_reply(&host, offered);
                if behaviour == MxBehaviour::SplitReplies {
                    write_split(reader.get_mut(), text.as_bytes()).await?;
                } else {
                    reply(reader.get_mut(), &text).await?;
                }
            }
            "STARTTLS" => match behaviour {
                MxBehaviour::NoStarttls => {
                    reply(reader.get_mut(), "502 5.5.1 STARTTLS not offered\r\n").await?;
                }
                MxBehaviour::StarttlsRefused => {
                    let text = "454 4.7.0 TLS not available due to temporary reason\r\n";
                    reply(reader.get_mut(), text).await?;
                }
                MxBehaviour::InjectAfterStarttls => {
                    let text = "220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n";
                    reply(reader.get_mut(), text).await?;
                    drain(&mut reader).await;
                    return Ok(());
                }
                MxBehaviour::GarbageAfterStarttls => {
                    reply(reader.get_mut(), "220 2.0.0 Ready to start TLS\r\n").await?;
                    let mut hello = [0u8; 64];
                    let _ = reader.read(&mut hello).await?;
                    let stream = reader.get_mut();
                    stream
                        .write_all(b"garbage instead of a TLS ServerHello\r\n")
                        .await?;
                    return stream.shutdown().await;
                }
                _ => {
                    reply(reader.get_mut(), "220 2.0.0 Ready to start TLS\r\n").await?;
                    if !reader.buffer().is_empty() {
                        return Ok(()); // pipelined plaintext after STARTTLS: refuse
                    }
                    let config = state.tls[behaviour.index()].clone();
                    let tls = TlsAcceptor::from(config)
                        .accept(reader.into_inner())
                        .await?;
                    return after_tls(BufReader::new(tls), &host, open).await;
                }
            },
            _ => {
                if !common_command(&mut reader, &verb, open).await? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The conversation inside TLS: EHLO (without STARTTLS) and QUIT.
async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(
    mut reader: BufReader<S>,
    host: &str,
    open: &OpenConnection,
) -> std::io::Result<()> {
    for _ in 0..COMMANDS_MAX {
        let Some(line) = read_command(&mut reader).await else {
            return Ok(());
        };
        let verb = verb_of(&line);
        if verb == "EHLO" {
            reply(reader.get_mut(), &ehlo_reply(host, false)).await?;
        } else if !common_command(&mut reader, &verb, open).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// QUIT, mail commands (refused and counted), NOOP/RSET/HELO, anything else. Returns false when
/// the connection is over.
async fn common_command<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BufReader<S>,
    verb: &str,
    open: &OpenConnection,
) -> std::io::Result<bool> {
    let stream = reader.get_mut();
    match verb {
        "QUIT" => {
            reply(stream, "221 2.0.0 bye\r\n").await?;
            stream.shutdown().await?;
            return Ok(false);
        }
        "MAIL" | "RCPT" | "DATA" => {
            open.mail_command();
            reply(stream, "554 5.7.1 the lab accepts no mail\r\n").await?;
        }
        "HELO" | "NOOP" | "RSET" => reply(stream, "250 2.0.0 OK\r\n").await?,
        _ => reply(stream, "502 5.5.2 command not recognised\r\n").await?,
    }
    Ok(true)
}

fn ehlo_reply(host: &str, starttls: bool) -> String {
    let mut lines = vec![
        format!("{host} greets you"),
        "PIPELINING".to_owned(),
        "SIZE 10240000".to_owned(),
    ];
    if starttls {
        lines.push("STARTTLS".to_owned());
    }
    lines.push("ENHANCEDSTATUSCODES".to_owned());
    lines.push("8BITMIME".to_owned());
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("250{}{line}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> std::io::Result<()> {
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

/// Writes `bytes` in 7-byte pieces, one send each (no Nagle), so replies cross segments.
async fn write_split(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(7) {
        stream.write_all(piece).await?;
        stream.flush().await?;
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// One command line, or `None` at the end of the connection or on an over-long line.
async fn read_command<R: AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut line = Vec::new();
    let read = reader
        .take(COMMAND_LINE_MAX)
        .read_until(b'\n', &mut line)
        .await
        .ok()?;
    if read == 0 || line.last() != Some(&b'\n') {
        return None;
    }
    Some(String::from_utf8_lossy(&line).trim_end().to_owned())
}

fn verb_of(line: &str) -> String {
    line.split_ascii_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Reads and discards until the peer closes.
async fn drain<R: AsyncRead + Unpin>(reader: &mut R) {
    let mut sink = [0u8; 512];
    while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_have_unique_slugs_and_addresses_found_from_host_names() {
        for (i, behaviour) in MxBehaviour::ALL.iter().enumerate() {
            assert!(
                MxBehaviour::ALL[..i]
                    .iter()
                    .all(|b| b.slug() != behaviour.slug())
            );
            assert_eq!(behaviour.address(), Ipv4Addr::new(127, 25, 0, i as u8 + 1));
            assert_eq!(MxBehaviour::of_host(&behaviour.host()), Some(*behaviour));
            let under = format!("Host7.{}.", behaviour.host().to_uppercase());
            assert_eq!(MxBehaviour::of_host(&under), Some(*behaviour));
        }
        for host in [
            "mx.test",
            "unknown.mx.test",
            "valid.mx.test.example",
            "validmx.test",
            "",
        ] {
            assert_eq!(MxBehaviour::of_host(host), None, "{host}");
        }
    }

    #[test]
    fn ehlo_reply_is_multi_line_with_one_final_line() {
        let text = ehlo_reply("a.mx.test", true);
        assert!(text.starts_with("250-a.mx.test greets you\r\n"));
        assert!(text.contains("250-STARTTLS\r\n"));
        assert!(text.ends_with("250 8BITMIME\r\n"));
        assert!(!ehlo_reply("a.mx.test", false).contains("STARTTLS"));
    }
}
