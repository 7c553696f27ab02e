//! The REST face of `serve`: `GET /v1/security/mta-sts?domain=D` (the hosted service's path,
//! answered with the `check --json` body), `GET /healthz`, `GET /openapi.json`, and the JSON
//! answers for unknown paths (404), other methods (405) and panics (500). The handlers carry
//! their OpenAPI description (utoipa), from which `/openapi.json` is generated.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{RawQuery, Request, State};
use axum::http::header::{ALLOW, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::checks::{CheckRunner, Refused, mx_probe_allowed};
use super::openapi::ReportDocument;
use super::{AccessLog, AccessLogEntry, ClientAddress};

/// Every error body: what went wrong, and the domain asked about (null when none was named).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    pub error: String,
    /// The domain the request named, as given (null when it named none).
    pub domain: Option<String>,
}

/// A JSON error answer.
pub fn error_body(
    status: StatusCode,
    message: &str,
    domain: Option<&str>,
) -> (StatusCode, Json<ErrorBody>) {
    (
        status,
        Json(ErrorBody {
            error: message.to_owned(),
            domain: domain.map(str::to_owned),
        }),
    )
}

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// Always `ok`.
    pub status: String,
}

/// The query of the check endpoint.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler parses it itself for precise errors
pub struct CheckQuery {
    /// The domain to check (IDNs are accepted and converted to A-labels).
    domain: String,
    /// Also connect to each MX host and check its STARTTLS certificate against the policy.
    /// Refused with 400 while this build has no MX probe.
    probe_mx: Option<bool>,
}

/// Checks one domain's MTA-STS and TLS-RPT.
#[utoipa::path(
    get,
    path = "/v1/security/mta-sts",
    tag = "check",
    params(CheckQuery),
    responses(
        (status = 200, description = "The report, whatever its outcome (the `check --json` document)", body = ReportDocument),
        (status = 400, description = "`domain` missing, given twice or not a domain name; no lookup was made", body = ErrorBody),
        (status = 401, description = "No API key, or not a valid one (only with --api-key-file)", body = ErrorBody),
        (status = 429, description = "This client is over its --client-rate; see Retry-After", body = ErrorBody),
        (status = 503, description = "No check slot freed up within half the request deadline; see Retry-After", body = ErrorBody),
        (status = 504, description = "The check did not finish within the request deadline", body = ErrorBody),
    )
)]
pub async fn check(State(runner): State<CheckRunner>, RawQuery(query): RawQuery) -> Response {
    let request = match CheckRequest::parse(query.as_deref()) {
        Ok(request) => request,
        Err(message) => return error_body(StatusCode::BAD_REQUEST, message, None).into_response(),
    };
    let input = request.domain;
    if let Err(message) = mx_probe_allowed(request.probe_mx, runner.probes_mx()) {
        return error_body(StatusCode::BAD_REQUEST, &message, Some(&input)).into_response();
    }
    let domain = match crate::domain::normalize_domain(&input) {
        Ok(domain) => domain,
        Err(error) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                &format!("not a domain name: {error}"),
                Some(&input),
            )
            .into_response();
        }
    };
    match runner.check(domain.clone(), input, request.probe_mx).await {
        Ok(report) => Json(report).into_response(),
        Err(refused) => {
            let status = match refused {
                Refused::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
                Refused::Overdue { .. } => StatusCode::GATEWAY_TIMEOUT,
                Refused::Stopped => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut response =
                error_body(status, &refused.to_string(), Some(&domain)).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// Says the server is up (never limited, never behind the API key).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    security(()),
    responses((status = 200, description = "The server is up", body = HealthBody))
)]
pub async fn health() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".to_owned(),
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json"))
)]
pub async fn openapi(State(document): State<Arc<serde_json::Value>>) -> Json<serde_json::Value> {
    Json(document.as_ref().clone())
}

/// 405 for a known path asked with another method than GET.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = serde_json::json!({
        "error": format!("{} only answers GET", uri.path()),
        "method": method.as_str(),
    });
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET"));
    response
}

/// 404 for any other path.
pub async fn not_found(uri: Uri) -> Response {
    let body = serde_json::json!({ "error": "not found", "path": uri.path() });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// 500 with a JSON body when a handler panicked (the connection and the server live on).
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error while answering the request",
        None,
    )
    .into_response()
}

/// The access log: one entry per answered request (method, path without query, status,
/// duration, client address). Headers are never logged, so neither is the API key.
pub async fn log_access(State(log): State<AccessLog>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|ClientAddress(address)| *address);
    let response = next.run(request).await;
    log.write(&AccessLogEntry {
        client,
        method,
        path,
        status: response.status().as_u16(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    response
}

/// The parameters of one check request.
#[derive(Debug, PartialEq, Eq)]
struct CheckRequest {
    domain: String,
    probe_mx: bool,
}

impl CheckRequest {
    /// Decodes the query: `domain` exactly once, `probe_mx` at most once (`true`/`false`).
    fn parse(query: Option<&str>) -> Result<CheckRequest, &'static str> {
        let mut domains = Vec::new();
        let mut probes = Vec::new();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "domain" => domains.push(value.into_owned()),
                "probe_mx" => probes.push(value.into_owned()),
                _ => {}
            }
        }
        let domain = match domains.len() {
            0 => {
                return Err(
                    "missing query parameter `domain` (GET /v1/security/mta-sts?domain=example.com)",
                );
            }
            1 => domains.remove(0),
            _ => return Err("give the query parameter `domain` once"),
        };
        let probe_mx = match probes.as_slice() {
            [] => false,
            [value] => match value.as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => return Err("`probe_mx` must be true or false"),
            },
            _ => return Err("give the query parameter `probe_mx` at most once"),
        };
        Ok(CheckRequest { domain, probe_mx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(query: Option<&str>) -> Result<String, &'static str> {
        CheckRequest::parse(query).map(|request| request.domain)
    }

    #[test]
    fn domain_parameter_is_percent_decoded_and_required_once() {
        assert_eq!(domain(Some("domain=example.com")), Ok("example.com".into()));
        assert_eq!(
            domain(Some("x=1&domain=b%C3%BCcher.example")),
            Ok("bücher.example".into())
        );
        assert_eq!(
            domain(Some("domain=not%20a+domain")),
            Ok("not a domain".into())
        );
        assert_eq!(domain(Some("domain=")), Ok(String::new()));
        assert!(domain(None).is_err());
        assert!(domain(Some("domains=example.com")).is_err());
        assert!(domain(Some("domain=a.example&domain=b.example")).is_err());
    }

    #[test]
    fn probe_mx_is_a_boolean_given_at_most_once() {
        let probe = |query| CheckRequest::parse(Some(query)).map(|request| request.probe_mx);
        assert_eq!(probe("domain=a.example"), Ok(false));
        assert_eq!(probe("domain=a.example&probe_mx=true"), Ok(true));
        assert_eq!(probe("domain=a.example&probe_mx=false"), Ok(false));
        assert!(probe("domain=a.example&probe_mx=yes").is_err());
        assert!(probe("domain=a.example&probe_mx=true&probe_mx=true").is_err());
    }
}
