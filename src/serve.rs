//! The single-domain check as an HTTP/1.1 API (`mta-sts-scan serve`):
//! `GET /v1/security/mta-sts?domain=D` answers with the `check --json` body, `GET /healthz` says
//! the server is up. A semaphore bounds the checks running at once, every request has a deadline,
//! and shutdown lets the requests in flight finish before the server returns.
//!
//! Status codes: 200 with the report (whatever its outcome), 400 when `domain` is missing or not a
//! domain name (no lookup is made), 404 unknown path, 405 not GET, 503 no free check slot before
//! the deadline, 504 the check did not finish before the deadline. Every body is JSON; errors are
//! `{"error": "...", "domain": "..."}` (`domain` is null when the request named none).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use crate::net::{Dns, PolicyFetch};
use crate::validate::Validator;

/// The check endpoint (the hosted service's path).
pub const CHECK_PATH: &str = "/v1/security/mta-sts";
/// The liveness endpoint.
pub const HEALTH_PATH: &str = "/healthz";

/// Longest wait for a request's headers (slowloris clients are cut off).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Fewest connections served at once, whatever `max_concurrent` is.
const MIN_CONNECTIONS: usize = 256;

/// Accepts a connection once a connection slot is free (the slot travels with it).
async fn accept_within(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, _peer) = listener.accept().await?;
    Ok((stream, slot))
}

/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest request deadline accepted (longer ones are surely a typo).
const LONGEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Time granted at shutdown, beyond the request deadline, for answers still being written.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);

/// How much work the server takes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSettings {
    /// Checks running at once. A check holds its slot until its lookups end, even when its
    /// request already got a 504: the limit bounds the load on resolvers and policy hosts.
    pub max_concurrent: usize,
    /// Longest a request may take, waiting for a slot included: 503 when no slot freed up in
    /// time, 504 when the check did not finish in time. Also the limit for reading the headers.
    pub request_timeout: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            max_concurrent: 64,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What every connection shares.
struct Service<D, F> {
    validator: Arc<Validator<D, F>>,
    check_slots: Arc<Semaphore>,
    settings: ServeSettings,
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
    if settings.max_concurrent == 0 || settings.max_concurrent > Semaphore::MAX_PERMITS {
        return Err(format!(
            "the number of concurrent checks must be between 1 and {}",
            Semaphore::MAX_PERMITS
        ));
    }
    if settings.request_timeout.is_zero() || settings.request_timeout > LONGEST_REQUEST_TIMEOUT {
        return Err("the request timeout must be positive and at most 24 hours".into());
    }
    let service = Arc::new(Service {
        validator,
        check_slots: Arc::new(Semaphore::new(settings.max_concurrent)),
        settings,
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
                let (stream, connection_slot) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Per-connection failures (reset before accept, descriptor limits) pass.
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let service = service.clone();
                let handler = service_fn(move |request| {
                    let service = service.clone();
                    async move { Ok::<_, Infallible>(service.respond(request).await) }
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
    let _ = tokio::time::timeout(
        settings.request_timeout + SHUTDOWN_MARGIN,
        connections.shutdown(),
    )
    .await;
    Ok(())
}

impl<D, F> Service<D, F>
where
    D: Dns + 'static,
    F: PolicyFetch + 'static,
{
    async fn respond(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        match path {
            CHECK_PATH | HEALTH_PATH if request.method() != Method::GET => {
                let mut response = json_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &json!({ "error": format!("{} only answers GET", path), "method": request.method().as_str() }),
                );
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET"));
                response
            }
            HEALTH_PATH => json_response(StatusCode::OK, &json!({ "status": "ok" })),
            CHECK_PATH => self.check(request.uri().query()).await,
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "not found", "path": path }),
            ),
        }
    }

    /// `GET /v1/security/mta-sts?domain=D`.
    async fn check(&self, query: Option<&str>) -> Response<Full<Bytes>> {
        let deadline = Instant::now() + self.settings.request_timeout;
        let input = match domain_parameter(query) {
            Ok(input) => input,
            Err(message) => return error_response(StatusCode::BAD_REQUEST, message, None),
        };
        let domain = match crate::domain::normalize_domain(&input) {
            Ok(domain) => domain,
            Err(error) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("not a domain name: {error}"),
                    Some(&input),
                );
            }
        };
        // Wait for a slot at most half the deadline: a check that starts later could not finish
        // in time, and under overload a quick 503 beats a queue of doomed requests.
        let slot_deadline = Instant::now() + self.settings.request_timeout / 2;
        let slot = match timeout_at(
            slot_deadline.min(deadline),
            self.check_slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) | Err(_) => {
                let mut response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "all {} check slots stayed busy for {} ms; try again later",
                        self.settings.max_concurrent,
                        self.settings.request_timeout.as_millis()
                    ),
                    Some(&domain),
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        };
        let validator = self.validator.clone();
        let checked_domain = domain.clone();
        // The check runs on its own task so it keeps its slot until its lookups end, even when
        // the client's deadline passes first or it disconnects; but never longer than one
        // request timeout, so slots always come back.
        let limit = self.settings.request_timeout;
        let check = tokio::spawn(async move {
            let report =
                tokio::time::timeout(limit, validator.check_domain(checked_domain, input, None))
                    .await;
            drop(slot);
            report
        });
        match timeout_at(deadline, check).await {
            Ok(Ok(Ok(report))) => match serde_json::to_vec(&report) {
                Ok(body) => bytes_response(StatusCode::OK, body),
                Err(error) => error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot serialise the report: {error}"),
                    Some(&domain),
                ),
            },
            Ok(Err(_)) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the check stopped unexpectedly",
                Some(&domain),
            ),
            Ok(Ok(Err(_))) | Err(_) => error_response(
                StatusCode::GATEWAY_TIMEOUT,
                &format!(
                    "the check did not finish within {} ms",
                    self.settings.request_timeout.as_millis()
                ),
                Some(&domain),
            ),
        }
    }
}

/// The decoded value of the one `domain` query parameter.
fn domain_parameter(query: Option<&str>) -> Result<String, &'static str> {
    let mut values = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| key == "domain")
        .map(|(_, value)| value.into_owned());
    let first = values
        .next()
        .ok_or("missing query parameter `domain` (GET /v1/security/mta-sts?domain=example.com)")?;
    if values.next().is_some() {
        return Err("give the query parameter `domain` once");
    }
    Ok(first)
}

fn error_response(
    status: StatusCode,
    message: &str,
    domain: Option<&str>,
) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message, "domain": domain }))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    bytes_response(status, body.to_string().into_bytes())
}

fn bytes_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_parameter_is_percent_decoded_and_required_once() {
        assert_eq!(
            domain_parameter(Some("domain=example.com")),
            Ok("example.com".into())
        );
        assert_eq!(
            domain_parameter(Some("x=1&domain=b%C3%BCcher.example")),
            Ok("bücher.example".into())
        );
        assert_eq!(
            domain_parameter(Some("domain=not%20a+domain")),
            Ok("not a domain".into())
        );
        assert_eq!(domain_parameter(Some("domain=")), Ok(String::new()));
        assert!(domain_parameter(None).is_err());
        assert!(domain_parameter(Some("domains=example.com")).is_err());
        assert!(domain_parameter(Some("domain=a.example&domain=b.example")).is_err());
    }
}
