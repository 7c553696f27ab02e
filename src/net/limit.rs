//! Rate limits for the network traits: a decorator that waits for a shared governor limiter
//! before each DNS query or policy fetch. All tasks share one limiter per kind of work, so the
//! rate holds for the whole scan whatever the concurrency.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::{
    AddressAnswer, Dns, DnsFailure, FetchFailure, FetchedPolicy, MxAnswer, PolicyFetch, TxtAnswer,
};

/// A shared limiter, or none (unlimited).
#[derive(Clone, Default)]
pub struct Limit(Option<Arc<Paced>>);

/// The limiter behind a FIFO gate: only the first waiter sleeps on the limiter, the others queue
/// on the gate and are woken one at a time. Without it every waiter would wake at each refill
/// (governor's `until_ready` herd), find no token, and go back to sleep.
struct Paced {
    limiter: DefaultDirectRateLimiter,
    gate: tokio::sync::Mutex<()>,
}

impl Limit {
    /// `per_second` operations per second (bursts up to one second's worth); `None` = unlimited.
    pub fn per_second(per_second: Option<NonZeroU32>) -> Self {
        Limit(per_second.map(|rate| {
            Arc::new(Paced {
                limiter: RateLimiter::direct(Quota::per_second(rate)),
                gate: tokio::sync::Mutex::new(()),
            })
        }))
    }

    async fn wait(&self) {
        if let Some(paced) = &self.0 {
            // A token now: no queueing (the common case below the rate).
            if paced.limiter.check().is_ok() {
                return;
            }
            let _turn = paced.gate.lock().await;
            paced.limiter.until_ready().await;
        }
    }
}

/// `T` with every operation paced by a [`Limit`].
#[derive(Clone)]
pub struct RateLimited<T> {
    inner: T,
    limit: Limit,
}

impl<T> RateLimited<T> {
    pub fn new(inner: T, limit: Limit) -> Self {
        RateLimited { inner, limit }
    }
}

impl<T: Dns> Dns for RateLimited<T> {
    async fn txt(&self, name: &str) -> Result<TxtAnswer, DnsFailure> {
        self.limit.wait().await;
        self.inner.txt(name).await
    }

    async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsFailure> {
        self.limit.wait().await;
        self.inner.mx(domain).await
    }

    async fn addresses(&self, host: &str) -> Result<AddressAnswer, DnsFailure> {
        self.limit.wait().await;
        self.inner.addresses(host).await
    }
}

impl<T: PolicyFetch> PolicyFetch for RateLimited<T> {
    async fn fetch(&self, host: &str, addresses: &[IpAddr]) -> Result<FetchedPolicy, FetchFailure> {
        self.limit.wait().await;
        self.inner.fetch(host, addresses).await
    }
}
