//! Bearer-token authentication for `serve` (`--api-key-file`): the keys a deployment accepts,
//! compared in constant time, and the middleware that answers 401 with a JSON error to any
//! other request. `/healthz` and `/openapi.json` stay open (probes and documentation).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::rest::error_body;
use super::{HEALTH_PATH, OPENAPI_PATH};

/// Shortest key accepted: shorter ones can be guessed.
pub const MIN_KEY_LENGTH: usize = 16;

/// The API keys a server accepts. Only their SHA-256 digests are kept, and a presented token is
/// hashed and compared with every digest in constant time, so neither a key's content nor its
/// length leaks through timing.
#[derive(Clone)]
pub struct ApiKeys {
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.digests.len())
    }
}

impl ApiKeys {
    /// Keys from their text. Fails when there is none, or one is shorter than
    /// [`MIN_KEY_LENGTH`] or holds whitespace (the message never shows a key).
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Result<ApiKeys, String> {
        let mut digests = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            let key = key.as_ref();
            if key.len() < MIN_KEY_LENGTH {
                return Err(format!(
                    "API key {} is shorter than {MIN_KEY_LENGTH} characters",
                    index + 1
                ));
            }
            if key.chars().any(char::is_whitespace) || !key.is_ascii() {
                return Err(format!(
                    "API key {} holds whitespace or non-ASCII characters",
                    index + 1
                ));
            }
            digests.push(Sha256::digest(key.as_bytes()).into());
        }
        if digests.is_empty() {
            return Err("no API key given".into());
        }
        Ok(ApiKeys {
            digests: Arc::new(digests),
        })
    }

    /// Keys from a file: one per line; blank lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> Result<ApiKeys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the API key file {}: {e}", path.display()))?;
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        ApiKeys::new(keys).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether `token` is one of the keys (constant time in the token and the keys).
    pub fn accepts(&self, token: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut found = subtle::Choice::from(0);
        for digest in self.digests.iter() {
            found |= digest.ct_eq(&presented);
        }
        found.into()
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme case-insensitive).
fn bearer_token(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value.get(7..)?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Paths served without a key.
fn is_open(path: &str) -> bool {
    path == HEALTH_PATH || path == OPENAPI_PATH
}

/// The middleware: passes open paths and requests with an accepted key; 401 otherwise.
pub async fn require_api_key(
    State(keys): State<ApiKeys>,
    request: Request,
    next: Next,
) -> Response {
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let (challenge, message) = match request.headers().get(AUTHORIZATION).map(bearer_token) {
        Some(Some(token)) if keys.accepts(token) => return next.run(request).await,
        Some(Some(_)) => (
            "Bearer realm=\"mta-sts-scan\", error=\"invalid_token\"",
            "the API key is not valid",
        ),
        Some(None) | None => (
            "Bearer realm=\"mta-sts-scan\"",
            "an API key is required: send Authorization: Bearer <key>",
        ),
    };
    let mut response = error_body(StatusCode::UNAUTHORIZED, message, None).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_matched_exactly() {
        let keys = ApiKeys::new(["0123456789abcdef", "another-key-of-ours"]).unwrap();
        assert!(keys.accepts(b"0123456789abcdef"));
        assert!(keys.accepts(b"another-key-of-ours"));
        for wrong in [
            &b"0123456789abcdeF"[..],
            b"0123456789abcde",
            b"0123456789abcdef0",
            b"",
        ] {
            assert!(!keys.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn unusable_keys_are_refused_without_showing_them() {
        assert!(ApiKeys::new(Vec::<String>::new()).is_err());
        let error = ApiKeys::new(["tiny-key"]).unwrap_err();
        assert!(!error.contains("tiny-key"), "{error}");
        assert!(ApiKeys::new(["0123456789 abcdef"]).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_parsed() {
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert_eq!(bearer_token(&header("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&header("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&header("Basic abc")), None);
        assert_eq!(bearer_token(&header("Bearer ")), None);
        assert_eq!(bearer_token(&header("Bear")), None);
    }
}
