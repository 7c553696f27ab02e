//! The per-scan MX probe cache and the politeness of SMTP probing (spec §7, issue 10): each MX
//! host is probed at most once per scan, concurrent domains sharing a host wait for the first
//! probe instead of opening their own connection (single-flight), and every connection passes
//! [`Politeness`]: at most `smtp_per_ip` at once to one address and a global `smtp_rate`.
//!
//! Memory: the cache holds one result per distinct MX host, never per-domain data. An entry
//! costs the host name twice, about 150 bytes of bookkeeping and the [`MxProbe`] itself
//! (`MxProbe::approximate_bytes`: about 1 KiB with a certificate, at most about 6 KiB: banner
//! ≤ 200 characters, at most 16 SAN names kept). A scan of 1M domains whose MX sets name
//! 500k distinct hosts (Microsoft 365 gives each customer domain its own host) holds about
//! 0.5–0.6 GB; shared providers cost one entry for all their domains.
//! The per-address semaphores are weak references, pruned as the table grows, so only addresses
//! with a connection open or waiting cost memory.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::net::smtp::{ConnectGate, MxProbe, MxProber};

/// Default `--smtp-per-ip`: connections open at once to one address.
pub const DEFAULT_SMTP_PER_IP: usize = 2;

/// One cached host.
#[derive(Default)]
struct Entry {
    result: OnceCell<Arc<MxProbe>>,
    /// Lookups of this host (the MX table's `domains` column when each domain asks once).
    uses: AtomicU64,
}

/// Results of one scan, keyed by lower-case MX host name without trailing dot.
pub struct MxProbeCache<P> {
    prober: P,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// Most hosts kept: past it, finished results are forgotten (a long-running server
    /// re-probes them later); `None` keeps every host (a scan's MX table needs them all).
    capacity: Option<usize>,
}

impl<P: MxProber> MxProbeCache<P> {
    pub fn new(prober: P) -> Self {
        MxProbeCache {
            prober,
            entries: Mutex::new(HashMap::new()),
            capacity: None,
        }
    }

    /// Keeps at most `hosts` results: when full, the finished ones are dropped (probes in
    /// flight stay, so single flight holds). For `serve`, whose cache lives as long as it runs.
    pub fn with_capacity(mut self, hosts: usize) -> Self {
        self.capacity = Some(hosts.max(1));
        self
    }

    /// The result for `host`, probing `addresses` only if no probe of it has run or is
    /// running; concurrent callers share that one probe. If the probing caller is cancelled, the
    /// next waiter probes instead.
    pub async fn probe(&self, host: &str, addresses: &[IpAddr]) -> Arc<MxProbe> {
        let entry = self.entry(host);
        entry
            .result
            .get_or_init(|| async { Arc::new(self.prober.probe(host, addresses).await) })
            .await
            .clone()
    }

    /// Like [`Self::probe`], but the addresses are looked up by `resolve` inside the single
    /// flight, so domains sharing a host do not resolve it again. A failed lookup (its message)
    /// makes an `unreachable` result; an empty list one with "no address".
    pub async fn probe_resolving<F, Fut>(&self, host: &str, resolve: F) -> Arc<MxProbe>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<std::net::IpAddr>, String>>,
    {
        let entry = self.entry(host);
        entry
            .result
            .get_or_init(|| async {
                Arc::new(match resolve().await {
                    Ok(addresses) => self.prober.probe(host, &addresses).await,
                    Err(failure) => {
                        MxProbe::unreachable(host, format!("address lookup: {failure}"))
                    }
                })
            })
            .await
            .clone()
    }

    /// The finished result for `host`, without probing.
    pub fn get(&self, host: &str) -> Option<Arc<MxProbe>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&normalise(host))?.result.get().cloned()
    }

    /// Lookups of `host` so far.
    pub fn uses(&self, host: &str) -> u64 {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&normalise(host))
            .map_or(0, |entry| entry.uses.load(Ordering::Relaxed))
    }

    /// Every finished result with its lookup count, for the MX table (unordered).
    pub fn results(&self) -> Vec<(Arc<MxProbe>, u64)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .values()
            .filter_map(|entry| {
                let result = entry.result.get()?.clone();
                Some((result, entry.uses.load(Ordering::Relaxed)))
            })
            .collect()
    }

    /// Hosts in the cache (probed or being probed).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An estimate of the memory the cache holds, in bytes.
    pub fn approximate_bytes(&self) -> usize {
        const BOOKKEEPING: usize = std::mem::size_of::<String>()
            + std::mem::size_of::<Arc<Entry>>()
            + std::mem::size_of::<Entry>()
            + 2 * std::mem::size_of::<usize>()
            + 16;
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|(host, entry)| {
                BOOKKEEPING
                    + host.capacity()
                    + entry
                        .result
                        .get()
                        .map_or(0, |probe| probe.approximate_bytes())
            })
            .sum()
    }

    pub fn prober(&self) -> &P {
        &self.prober
    }

    fn entry(&self, host: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(capacity) = self.capacity
            && entries.len() >= capacity
        {
            entries.retain(|_, entry| entry.result.get().is_none());
        }
        let entry = entries.entry(normalise(host)).or_default().clone();
        entry.uses.fetch_add(1, Ordering::Relaxed);
        entry
    }
}

/// The cache is itself a prober: where the validator takes an [`MxProber`], the cached one
/// plugs in (each call clones the shared result).
impl<P: MxProber> MxProber for MxProbeCache<P> {
    async fn probe(&self, host: &str, addresses: &[IpAddr]) -> MxProbe {
        MxProbeCache::probe(self, host, addresses)
            .await
            .as_ref()
            .clone()
    }
}

fn normalise(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Politeness limits for SMTP connections, shared by every probe of a scan.
pub struct Politeness {
    per_address: usize,
    slots: Mutex<AddressSlots>,
    rate: Option<DefaultDirectRateLimiter>,
}

struct AddressSlots {
    semaphores: HashMap<IpAddr, Weak<Semaphore>>,
    /// Table size at which dead entries are next pruned.
    prune_at: usize,
}

/// Entries kept before the first pruning of the per-address table.
const PRUNE_FLOOR: usize = 64;

/// Held while one connection is open: releases its address's slot when dropped.
pub struct PolitePass {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Politeness {
    /// At most `per_address` connections at once to one address (at least 1), and at most
    /// `rate` new connections per second over the whole scan (`None`: no rate limit).
    pub fn new(per_address: usize, rate: Option<NonZeroU32>) -> Self {
        Politeness {
            per_address: per_address.max(1),
            slots: Mutex::new(AddressSlots {
                semaphores: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
            rate: rate.map(|rate| RateLimiter::direct(Quota::per_second(rate))),
        }
    }

    /// Addresses in the per-address table (live or not yet pruned).
    pub fn tracked_addresses(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .semaphores
            .len()
    }

    fn semaphore_for(&self, address: IpAddr) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(live) = slots.semaphores.get(&address).and_then(Weak::upgrade) {
            return live;
        }
        let semaphore = Arc::new(Semaphore::new(self.per_address));
        slots.semaphores.insert(address, Arc::downgrade(&semaphore));
        if slots.semaphores.len() >= slots.prune_at {
            slots.semaphores.retain(|_, weak| weak.strong_count() > 0);
            slots.prune_at = (slots.semaphores.len() * 2).max(PRUNE_FLOOR);
        }
        semaphore
    }
}

impl Default for Politeness {
    fn default() -> Self {
        Politeness::new(DEFAULT_SMTP_PER_IP, None)
    }
}

impl ConnectGate for Politeness {
    type Pass = PolitePass;

    /// Waits for a slot at `address`, then for the global rate.
    async fn admit(&self, address: IpAddr) -> PolitePass {
        let semaphore = self.semaphore_for(address);
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = semaphore.acquire_owned().await.ok();
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        PolitePass { _permit: permit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::smtp::MxStatus;
    use std::sync::atomic::AtomicUsize;

    /// Counts probes and waits for the test's go before answering.
    struct GatedProber {
        calls: AtomicUsize,
        go: Semaphore,
    }

    impl MxProber for GatedProber {
        async fn probe(&self, host: &str, addresses: &[IpAddr]) -> MxProbe {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(permit) = self.go.acquire().await {
                permit.forget();
            }
            let mut probe = MxProbe::unreachable(host, "fake");
            probe.address = addresses.first().copied();
            probe.status = MxStatus::Valid;
            probe
        }
    }

    #[tokio::test]
    async fn a_bounded_cache_forgets_finished_hosts_and_probes_them_again() {
        let cache = MxProbeCache::new(GatedProber {
            calls: AtomicUsize::new(0),
            go: Semaphore::new(100),
        })
        .with_capacity(2);
        for host in ["a.test", "b.test", "c.test", "a.test"] {
            cache.probe(host, &[]).await;
            assert!(cache.len() <= 2, "{} hosts kept", cache.len());
        }
        // a.test was forgotten when c.test came in, so it was probed again.
        assert_eq!(cache.prober().calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_host_share_one_probe() {
        let cache = MxProbeCache::new(GatedProber {
            calls: AtomicUsize::new(0),
            go: Semaphore::new(0),
        });
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let lookups = (0..20).map(|i| {
            let host = if i % 2 == 0 {
                "MX.Example.com."
            } else {
                "mx.example.com"
            };
            cache.probe(host, std::slice::from_ref(&address))
        });
        let all = futures::future::join_all(lookups);
        let release = async {
            cache.prober().go.add_permits(100);
        };
        let (results, ()) = tokio::join!(all, release);
        assert_eq!(cache.prober().calls.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
        assert_eq!(results[0].host, "mx.example.com");
        assert_eq!(cache.uses("mx.example.com"), 20);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("MX.EXAMPLE.COM").is_some());
        let other = cache.probe("mx2.example.com", &[address]).await;
        assert_eq!(other.host, "mx2.example.com");
        assert_eq!(cache.prober().calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.results().len(), 2);
        assert!(cache.approximate_bytes() > 2 * std::mem::size_of::<MxProbe>());
    }

    #[tokio::test]
    async fn resolving_inside_the_flight_resolves_once_and_reports_lookup_failures() {
        let cache = MxProbeCache::new(GatedProber {
            calls: AtomicUsize::new(0),
            go: Semaphore::new(100),
        });
        let resolutions = AtomicUsize::new(0);
        for _ in 0..3 {
            let probe = cache
                .probe_resolving("mx.example.com", || async {
                    resolutions.fetch_add(1, Ordering::SeqCst);
                    Ok(vec!["192.0.2.1".parse().unwrap()])
                })
                .await;
            assert_eq!(probe.status, MxStatus::Valid);
        }
        assert_eq!(resolutions.load(Ordering::SeqCst), 1);
        let failed = cache
            .probe_resolving("gone.example.com", || async { Err("SERVFAIL".to_owned()) })
            .await;
        assert_eq!(failed.status, MxStatus::Unreachable);
        assert_eq!(failed.error.as_deref(), Some("address lookup: SERVFAIL"));
        assert_eq!(cache.prober().calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_global_rate_paces_new_connections() {
        // 10 per second, a burst of 10: 15 connections need at least 5 further tenths.
        let politeness = Politeness::new(100, NonZeroU32::new(10));
        let started = std::time::Instant::now();
        for i in 0..15u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(politeness.admit(address).await);
        }
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn per_address_slots_limit_and_are_pruned() {
        let politeness = Politeness::new(2, None);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let first = politeness.admit(one).await;
        let second = politeness.admit(one).await;
        // A third pass to the same address waits; another address does not.
        let third = politeness.admit(one);
        tokio::pin!(third);
        assert!(futures::poll!(third.as_mut()).is_pending());
        let _elsewhere = politeness.admit("192.0.2.2".parse().unwrap()).await;
        drop(first);
        let _third = third.await;
        drop(second);
        // Thousands of addresses used once and released do not stay in the table.
        for i in 0..5000u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(politeness.admit(address).await);
        }
        assert!(
            politeness.tracked_addresses() <= 2 * PRUNE_FLOOR,
            "{}",
            politeness.tracked_addresses()
        );
    }
}
