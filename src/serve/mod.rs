//! The check as a service (`mta-sts-scan serve`): the REST API of the hosted service
//! (`GET /v1/security/mta-sts?domain=D` answers with the `check --json` body), the MCP server
//! for AI assistants at `/mcp`, `GET /healthz` and `GET /openapi.json`, on axum.
//!
//! Status codes: 200 with the report (whatever its outcome), 400 when `domain` is missing or not a
//! domain name (no lookup is made), 401 without a valid API key (`--api-key-file`), 404 unknown
//! path, 405 not GET, 429 over the client's rate (`--client-rate`), 503 no free check slot before
//! the deadline, 504 the check did not finish before the deadline. Every body is JSON; errors are
//! `{"error": "...", "domain": "..."}` (`domain` is null when the request named none).
//!
//! Connections are accepted here, not by `axum::serve`, to keep what it lacks: a cap on open
//! connections, a deadline for reading a request's headers, and a graceful shutdown bounded by
//! the request deadline.

pub mod auth;
pub mod checks;
pub mod client_limit;
pub mod mcp;
pub mod openapi;
pub mod rest;
pub mod schema;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::from_fn_with_state;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::net::{Dns, PolicyFetch};
use crate::validate::Validator;
use auth::ApiKeys;
use checks::CheckRunner;
use client_limit::{ClientLimiter, ClientRate};

/// The check endpoint (the hosted service's path).
pub const CHECK_PATH: &str = "/v1/security/mta-sts";
/// The liveness endpoint.
pub const HEALTH_PATH: &str = "/healthz";
/// The OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The MCP endpoint (streamable HTTP).
pub const MCP_PATH: &str = "/mcp";

/// Longest wait for a request's headers (slowloris clients are cut off).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Fewest connections served at once, whatever `max_concurrent` is.
const MIN_CONNECTIONS: usize = 256;
/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Time granted at shutdown, beyond the request deadline, for answers still being written.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);
/// How often the per-client limiter forgets clients that are back to their full allowance.
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// The address a request is attributed to (rate limit, access log): the peer's, or the one a
/// trusted proxy wrote into `client_address_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client address a proxy recorded: the last address of the last `header` line (the entry
/// the proxy in front appended; earlier ones come from the client and prove nothing).
fn forwarded_client(headers: &HeaderMap, header: &HeaderName) -> Option<IpAddr> {
    let value = headers.get_all(header).iter().next_back()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

/// One answered request, for the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLogEntry {
    /// The client's address (see [`ServeSettings::client_address_header`]).
    pub client: Option<IpAddr>,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub status: u16,
    pub duration_ms: u64,
}

/// Where access log entries go; the binary decides their form (text or JSON lines).
#[derive(Clone)]
pub struct AccessLog(Arc<dyn Fn(&AccessLogEntry) + Send + Sync>);

impl AccessLog {
    pub fn new(write: impl Fn(&AccessLogEntry) + Send + Sync + 'static) -> AccessLog {
        AccessLog(Arc::new(write))
    }

    pub fn write(&self, entry: &AccessLogEntry) {
        (self.0)(entry);
    }
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLog")
    }
}

/// How much work the server takes on, and who may ask.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Checks running at once (REST and MCP together). A check holds its slot until its lookups
    /// end, even when its request already got a 504: the limit bounds the load on resolvers and
    /// policy hosts.
    pub max_concurrent: usize,
    /// Longest a request may take, waiting for a slot included: 503 when no slot freed up in
    /// time, 504 when the check did not finish in time. Also the limit for reading the headers.
    pub request_timeout: Duration,
    /// Bearer tokens that may use the API (`None`: open to anyone who can connect).
    pub api_keys: Option<ApiKeys>,
    /// Requests per client address (`None`: unlimited).
    pub client_rate: Option<ClientRate>,
    /// A header in which a proxy in front records the client's address (`X-Forwarded-For`,
    /// `X-Real-IP`): rate limits and the access log then use it instead of the proxy's address.
    /// Only for a server that is reachable through that proxy alone: clients can write the header.
    pub client_address_header: Option<HeaderName>,
    /// Host names `/mcp` answers for besides the loopback names (DNS-rebinding protection).
    pub mcp_allowed_hosts: Vec<String>,
    /// Where to log each request (`None`: no access log).
    pub access_log: Option<AccessLog>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            max_concurrent: 64,
            request_timeout: Duration::from_secs(30),
            api_keys: None,
            client_rate: None,
            client_address_header: None,
            mcp_allowed_hosts: Vec::new(),
            access_log: None,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    runner: CheckRunner,
    openapi: Arc<serde_json::Value>,
}

impl FromRef<AppState> for CheckRunner {
    fn from_ref(state: &AppState) -> CheckRunner {
        state.runner.clone()
    }
}

impl FromRef<AppState> for Arc<serde_json::Value> {
    fn from_ref(state: &AppState) -> Arc<serde_json::Value> {
        state.openapi.clone()
    }
}

/// The whole application: routes, `/mcp`, and the layers (outermost first: access log, panic
/// catcher, client rate, API key).
fn app(
    runner: CheckRunner,
    settings: &ServeSettings,
    client_limiter: Option<ClientLimiter>,
    mcp_stop: CancellationToken,
) -> axum::Router {
    let (routes, document) = openapi::api_routes().split_for_parts();
    let document = openapi::finish(document, settings.api_keys.is_some());
    let document = serde_json::to_value(&document).unwrap_or_default();
    let mcp = mcp::http_service(runner.clone(), &settings.mcp_allowed_hosts, mcp_stop);
    let mut router = routes
        .nest_service(MCP_PATH, mcp)
        .fallback(rest::not_found)
        .with_state(AppState {
            runner,
            openapi: Arc::new(document),
        })
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if let Some(keys) = settings.api_keys.clone() {
        router = router.layer(from_fn_with_state(keys, auth::require_api_key));
    }
    if let Some(limiter) = client_limiter {
        router = router.layer(from_fn_with_state(limiter, client_limit::limit_clients));
    }
    router = router.layer(CatchPanicLayer::custom(rest::panic_response));
    if let Some(log) = settings.access_log.clone() {
        router = router.layer(from_fn_with_state(log, rest::log_access));
    }
    router
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting, lets the requests in
/// flight finish (up to the request deadline) and returns. Fails only on unusable settings.
pub async fn serve<D, F>(
    listener: TcpListener,
    validator: Arc<Validator<D, F>>,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String>
where
    D: Dns + 'static,
    F: PolicyFetch + 'static,
{
    let runner = CheckRunner::new(
        Arc::new(validator),
        settings.max_concurrent,
        settings.request_timeout,
    )?;
    let client_limiter = settings.client_rate.map(ClientLimiter::new);
    let mcp_stop = CancellationToken::new();
    let router = app(runner, &settings, client_limiter.clone(), mcp_stop.clone());
    let forget_idle_clients = client_limiter.map(|limiter| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_IDLE_CLIENTS_EVERY);
            loop {
                every.tick().await;
                limiter.forget_idle_clients();
            }
        })
    });

    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.request_timeout.min(HEADER_READ_TIMEOUT));
    // Idle or slow clients must not exhaust the descriptors the checks' own sockets need.
    let connection_slots = Arc::new(Semaphore::new(
        settings
            .max_concurrent
            .saturating_mul(8)
            .max(MIN_CONNECTIONS),
    ));
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = accept_within(&listener, &connection_slots) => {
                let (stream, peer, connection_slot) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Per-connection failures (reset before accept, descriptor limits) pass.
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let router = router.clone();
                let address_header = settings.client_address_header.clone();
                let handler = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    let client = address_header
                        .as_ref()
                        .and_then(|header| forwarded_client(request.headers(), header))
                        .unwrap_or(peer.ip());
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(ClientAddress(client));
                    let router = router.clone();
                    async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|never| match never {})) }
                });
                let connection =
                    connections.watch(http.serve_connection(TokioIo::new(stream), handler));
                tokio::spawn(async move {
                    // A client that goes away mid-request is its own business.
                    let _ = connection.await;
                    drop(connection_slot);
                });
            }
        }
    }
    drop(listener);
    mcp_stop.cancel();
    if let Some(task) = forget_idle_clients {
        task.abort();
    }
    let _ = tokio::time::timeout(
        settings.request_timeout + SHUTDOWN_MARGIN,
        connections.shutdown(),
    )
    .await;
    Ok(())
}

/// Accepts a connection once a connection slot is free (the slot travels with it).
async fn accept_within(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_s_entry_is_the_last_one() {
        let header = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        assert_eq!(forwarded_client(&headers, &header), None);
        headers.append(
            &header,
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        assert_eq!(
            forwarded_client(&headers, &header),
            Some("198.51.100.7".parse().unwrap())
        );
        headers.append(&header, HeaderValue::from_static("2001:db8::1"));
        assert_eq!(
            forwarded_client(&headers, &header),
            Some("2001:db8::1".parse().unwrap())
        );
        headers.insert(&header, HeaderValue::from_static("192.0.2.1:4711"));
        assert_eq!(
            forwarded_client(&headers, &header),
            Some("192.0.2.1".parse().unwrap())
        );
        headers.insert(&header, HeaderValue::from_static("unknown"));
        assert_eq!(forwarded_client(&headers, &header), None);
    }
}
