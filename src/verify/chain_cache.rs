//! The verified-chain cache: chains that verified before, with the time window in which that
//! verdict stands.
//!
//! PostgreSQL never resumes a TLS session, so every connection to the same server presents the
//! same chain and pays for path building, the extension checks and every signature of the chain
//! again. A chain's verdict against one [`super::TrustStore`] (immutable: roots and CRLs never
//! change inside it) depends only on the presented DER bytes and on the verification time, and
//! the time enters only through comparisons with a finite set of instants: notBefore/notAfter of
//! every certificate (presented or in the store) and thisUpdate/nextUpdate of every CRL of the
//! store (validity checks, OpenSSL's preference for an issuer valid now, CRL scoring and CRL
//! validity). Between two consecutive instants of that set the verdict cannot change, so a success
//! is cached with the half-open window `[from, until)` around the verification time that no such
//! instant splits.
//!
//! The window is deliberately that narrow, not just the intersection of the verified path's
//! validity periods: a store holding two issuers of the same name, or a newer CRL that becomes
//! valid later, can change the verdict at an instant inside the path's own validity.
//!
//! Only successes are cached; a failure is recomputed every time, so every error message is the
//! one a full verification gives. A lookup outside the entry's window (the clock moved past a
//! boundary, in either direction) drops the entry and verifies in full. Entries are keyed by the
//! SHA-256 of the chain (each certificate's length and bytes, leaf first, in the order sent).
//! The host name (verify-full) and the handshake signature are not cached: the verifier checks
//! them on every connection.
//!
//! Memory is bounded: at most `capacity` entries of a fixed size; a new chain when full replaces
//! the least recently used one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

/// The default capacity of [`VerifiedChainCache`]: far more distinct server chains than one
/// `Config` (one host, or a few of a multi-host list) normally meets, at about 64 bytes each.
pub(crate) const DEFAULT_CAPACITY: usize = 64;

/// The key of a presented chain: SHA-256 over each certificate's length and bytes.
pub(crate) type ChainKey = [u8; 32];

/// The key of `end_entity` followed by `intermediates`.
pub(crate) fn chain_key(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> ChainKey {
    let mut hasher = Sha256::new();
    for cert in std::iter::once(end_entity).chain(intermediates) {
        let bytes = cert.as_ref();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    hasher.finalize().into()
}

/// Verification time in seconds, converted as the chain verifier converts it.
pub(crate) fn seconds(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// The half-open interval of times `[from, until)` in which a verdict holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// First second of the window.
    pub(crate) from: i64,
    /// First second after the window.
    pub(crate) until: i64,
}

impl Window {
    /// The widest window around `now` that none of `boundaries` splits: from the latest
    /// boundary at or before `now` to the earliest one after it. Every time comparison of the
    /// verifier has the form `now >= b` or `now < b`, whose value only changes at `b`.
    pub(crate) fn around(now: i64, boundaries: impl IntoIterator<Item = i64>) -> Window {
        let mut window = Window {
            from: i64::MIN,
            until: i64::MAX,
        };
        for boundary in boundaries {
            if boundary <= now {
                window.from = window.from.max(boundary);
            } else {
                window.until = window.until.min(boundary);
            }
        }
        window
    }

    /// Whether `now` lies in the window.
    pub(crate) fn contains(&self, now: i64) -> bool {
        self.from <= now && now < self.until
    }
}

/// What a `Config`'s verified-chain cache has done so far
/// ([`crate::Config::verified_chain_cache_stats`], [`crate::ConfigBuilder::verified_chain_cache`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedChainCacheStats {
    /// Chains accepted from the cache, without path building or chain signatures.
    pub hits: u64,
    /// Chains verified in full (not cached, or cached for another time window).
    pub misses: u64,
    /// Chains cached now.
    pub entries: usize,
    /// Most chains the cache holds.
    pub capacity: usize,
}

/// One cached success.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When the verdict holds.
    window: Window,
    /// The lookup tick of its last use (for eviction).
    last_used: u64,
}

/// The mutable part, behind the mutex.
#[derive(Debug, Default)]
struct Entries {
    /// Cached successes by chain key.
    by_key: HashMap<ChainKey, Entry>,
    /// Counts lookups and insertions; orders entries by last use.
    tick: u64,
    /// Lookups answered from the cache.
    hits: u64,
    /// Lookups that needed a full verification.
    misses: u64,
}

/// Successful chain verifications of one trust store, shared by every connection of a
/// `Config` (and of its [`crate::Config::with_host`] copies).
#[derive(Debug)]
pub(crate) struct VerifiedChainCache {
    /// Most entries held (at least 1).
    capacity: usize,
    /// The entries and counters; each critical section is one map operation.
    entries: Mutex<Entries>,
}

impl VerifiedChainCache {
    /// An empty cache holding at most `capacity` chains; `None` for 0 (no cache).
    pub(crate) fn new(capacity: usize) -> Option<Self> {
        (capacity > 0).then(|| VerifiedChainCache {
            capacity,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// The entries; a thread that panicked while holding the lock leaves them consistent (every
    /// update is a single map operation), so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `key` verified before with a window holding `now` (a hit). An entry whose window
    /// does not hold `now` is dropped: the caller verifies in full.
    pub(crate) fn lookup(&self, key: &ChainKey, now: i64) -> bool {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let hit = match entries.by_key.get_mut(key) {
            Some(entry) if entry.window.contains(now) => {
                entry.last_used = tick;
                true
            }
            Some(_) => {
                entries.by_key.remove(key);
                false
            }
            None => false,
        };
        if hit {
            entries.hits += 1;
        } else {
            entries.misses += 1;
        }
        hit
    }

    /// Records that `key` verified, with the window of that verdict. When the cache is full
    /// and `key` is new, the least recently used entry makes room.
    pub(crate) fn insert(&self, key: ChainKey, window: Window) {
        let mut entries = self.lock();
        entries.tick += 1;
        let last_used = entries.tick;
        if entries.by_key.len() >= self.capacity && !entries.by_key.contains_key(&key) {
            let oldest = entries
                .by_key
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                entries.by_key.remove(&oldest);
            }
        }
        entries.by_key.insert(key, Entry { window, last_used });
    }

    /// The counters and size.
    pub(crate) fn stats(&self) -> VerifiedChainCacheStats {
        let entries = self.lock();
        VerifiedChainCacheStats {
            hits: entries.hits,
            misses: entries.misses,
            entries: entries.by_key.len(),
            capacity: self.capacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> ChainKey {
        [n; 32]
    }

    const ALWAYS: Window = Window {
        from: i64::MIN,
        until: i64::MAX,
    };

    #[test]
    fn the_window_is_bounded_by_the_nearest_instants_on_each_side() {
        let w = Window::around(100, [50, 200, 100, 10, 150, 300]);
        assert_eq!(
            w,
            Window {
                from: 100,
                until: 150
            }
        );
        assert!(w.contains(100) && w.contains(149));
        assert!(!w.contains(99) && !w.contains(150));
        assert_eq!(Window::around(0, []), ALWAYS);
        assert_eq!(
            Window::around(5, [1]),
            Window {
                from: 1,
                until: i64::MAX
            }
        );
        assert_eq!(
            Window::around(5, [6]),
            Window {
                from: i64::MIN,
                until: 6
            }
        );
    }

    #[test]
    fn a_hit_needs_the_same_key_within_its_window() {
        let cache = VerifiedChainCache::new(4).unwrap();
        assert!(!cache.lookup(&key(1), 10));
        cache.insert(key(1), Window { from: 5, until: 20 });
        assert!(cache.lookup(&key(1), 10));
        assert!(cache.lookup(&key(1), 19));
        assert!(!cache.lookup(&key(2), 10));
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 2, 1));
    }

    #[test]
    fn a_lookup_outside_the_window_in_either_direction_drops_the_entry() {
        let cache = VerifiedChainCache::new(4).unwrap();
        cache.insert(key(1), Window { from: 5, until: 20 });
        assert!(!cache.lookup(&key(1), 20));
        assert_eq!(cache.stats().entries, 0);
        assert!(!cache.lookup(&key(1), 10), "dropped, not just skipped");
        cache.insert(key(1), Window { from: 5, until: 20 });
        assert!(!cache.lookup(&key(1), 4));
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used_entry() {
        let cache = VerifiedChainCache::new(3).unwrap();
        for n in 1..=3 {
            cache.insert(key(n), ALWAYS);
        }
        assert!(cache.lookup(&key(1), 0));
        cache.insert(key(4), ALWAYS);
        assert_eq!(cache.stats().entries, 3);
        assert!(!cache.lookup(&key(2), 0), "the least recently used went");
        for n in [1, 3, 4] {
            assert!(cache.lookup(&key(n), 0), "{n}");
        }
        // Re-inserting a cached key neither grows the cache nor evicts another entry.
        cache.insert(key(4), ALWAYS);
        assert_eq!(cache.stats().entries, 3);
        assert!(cache.lookup(&key(1), 0) && cache.lookup(&key(3), 0));
        for n in 10..200 {
            cache.insert(key(n), ALWAYS);
            assert!(cache.stats().entries <= 3);
        }
    }

    #[test]
    fn capacity_zero_is_no_cache_and_keys_frame_each_certificate() {
        assert!(VerifiedChainCache::new(0).is_none());
        let a = CertificateDer::from(vec![1, 2, 3]);
        let b = CertificateDer::from(vec![4]);
        let ab = CertificateDer::from(vec![1, 2, 3, 4]);
        let a_then_b = chain_key(&a, std::slice::from_ref(&b));
        assert_ne!(a_then_b, chain_key(&ab, &[]));
        assert_ne!(a_then_b, chain_key(&b, std::slice::from_ref(&a)));
        assert_eq!(a_then_b, chain_key(&a, &[b]));
    }
}
