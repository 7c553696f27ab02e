//! Per-client rate limiting for `serve` (`--client-rate`): a keyed GCRA limiter (governor) over
//! the client's address, answering 429 with `Retry-After` when a client goes over its rate.
//! IPv6 clients are keyed by their /64, which one subscriber usually holds whole. `/healthz` is
//! not limited, so a load balancer's probes never see 429.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::rest::error_body;
use super::{ClientAddress, HEALTH_PATH};

/// Requests a client may make: `requests` per `period`, all of them at once if it likes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientRate {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl ClientRate {
    /// Parses `N/s`, `N/min` or `N/h` (`N` alone: per second).
    pub fn parse(text: &str) -> Result<ClientRate, String> {
        let (count, unit) = text.trim().split_once('/').unwrap_or((text.trim(), "s"));
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "unknown rate unit {other:?}: write N/s, N/min or N/h"
                ));
            }
        };
        let requests = count
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| format!("{text:?} is not a rate: write N/s, N/min or N/h with N ≥ 1"))?;
        Ok(ClientRate { requests, period })
    }

    fn quota(self) -> Quota {
        let per_request = self.period / self.requests.get();
        Quota::with_period(per_request.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.requests)
    }
}

/// The limiter shared by every connection.
#[derive(Clone)]
pub struct ClientLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl ClientLimiter {
    pub fn new(rate: ClientRate) -> ClientLimiter {
        ClientLimiter {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(rate.quota())),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` when `client` may make a request now; otherwise how long until it may.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&client_key(client))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose state has returned to full (bounds the memory held per client);
    /// the server calls this periodically.
    pub fn forget_idle_clients(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients currently remembered.
    pub fn clients(&self) -> usize {
        self.limiter.len()
    }
}

/// The key of a client: its IPv4 address, or the /64 of its IPv6 address.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

/// Whole seconds for `Retry-After`, rounded up (at least 1).
fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// The middleware: 429 with `Retry-After` for a client over its rate.
pub async fn limit_clients(
    State(limiter): State<ClientLimiter>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == HEALTH_PATH {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|ClientAddress(address)| *address);
    let Some(client) = client else {
        return next.run(request).await;
    };
    match limiter.check(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = retry_after_seconds(wait);
            let mut response = error_body(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many requests from {client}: try again in {seconds} s"),
                None,
            )
            .into_response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_parsed() {
        let rate = |text| ClientRate::parse(text).ok();
        let per = |n, secs| {
            Some(ClientRate {
                requests: NonZeroU32::new(n).unwrap(),
                period: Duration::from_secs(secs),
            })
        };
        assert_eq!(rate("10/s"), per(10, 1));
        assert_eq!(rate("60/min"), per(60, 60));
        assert_eq!(rate("1000 / h"), per(1000, 3600));
        assert_eq!(rate("5"), per(5, 1));
        for bad in ["0/s", "ten/s", "5/day", "", "-1/s"] {
            assert_eq!(rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limiter = ClientLimiter::new(ClientRate::parse("3/min").unwrap());
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check(client), Ok(()));
        }
        let wait = limiter.check(client).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(retry_after_seconds(wait), wait.as_secs() + 1);
        assert_eq!(limiter.check("192.0.2.2".parse().unwrap()), Ok(()));
        assert_eq!(limiter.clients(), 2);
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limiter = ClientLimiter::new(ClientRate::parse("1/min").unwrap());
        assert_eq!(limiter.check("2001:db8:1:2::1".parse().unwrap()), Ok(()));
        assert!(
            limiter
                .check("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        assert_eq!(limiter.check("2001:db8:1:3::1".parse().unwrap()), Ok(()));
        assert_eq!(
            client_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }
}
