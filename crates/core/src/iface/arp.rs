//! The ARP cache and the resolution of next hops (RFC 826), with datagrams waiting per
//! address in a bounded queue.
//!
//! An entry older than its time to live is stale, not gone (RFC 1122 §2.3.2.1 lets a host
//! choose how to validate): it is still used, and using it starts a background
//! re-resolution; only when that goes unanswered is the entry removed. This is Linux's
//! REACHABLE/STALE/PROBE cycle in small, and it keeps a busy connection from stalling on a
//! fresh resolution every minute.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;

use rawtcp_wire::ethernet::EthernetAddress;

use crate::Instant;
use crate::config::ArpConfig;

#[derive(Debug, Clone, Copy)]
struct Neighbor {
    mac: EthernetAddress,
    expires_at: Instant,
}

#[derive(Debug)]
struct Resolution {
    requests_sent: u8,
    /// When the next request is due (or, after the last one, when the address is given up).
    deadline: Instant,
    /// A request should go out on the next transmit.
    request_due: bool,
    waiting: VecDeque<Vec<u8>>,
}

/// What became of a datagram offered to [`ArpTable::wait`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    Waiting,
    /// The address's queue was full: the datagram was dropped.
    QueueFull,
    /// [`ArpConfig::max_resolving`] addresses were being resolved already: the datagram was
    /// dropped and no resolution started.
    ResolutionLimit,
}

/// The cache and the addresses being resolved. Ordered maps keep every walk deterministic.
#[derive(Debug)]
pub(crate) struct ArpTable {
    config: ArpConfig,
    cache: BTreeMap<Ipv4Addr, Neighbor>,
    resolving: BTreeMap<Ipv4Addr, Resolution>,
}

impl ArpTable {
    pub(crate) fn new(config: ArpConfig) -> ArpTable {
        ArpTable {
            config,
            cache: BTreeMap::new(),
            resolving: BTreeMap::new(),
        }
    }

    /// The MAC of `address`, if known. A stale entry is returned too, and starts a
    /// background re-resolution.
    pub(crate) fn lookup(&mut self, now: Instant, address: Ipv4Addr) -> Option<EthernetAddress> {
        let neighbor = *self.cache.get(&address)?;
        if neighbor.expires_at <= now && !self.resolving.contains_key(&address) {
            let resolution = Resolution {
                requests_sent: 0,
                deadline: now,
                request_due: true,
                waiting: VecDeque::new(),
            };
            self.resolving.insert(address, resolution);
        }
        Some(neighbor.mac)
    }

    /// Addresses being resolved now.
    pub(crate) fn resolving(&self) -> usize {
        self.resolving.len()
    }

    /// Whether `address` is already in the cache (RFC 826's merge test).
    pub(crate) fn knows(&self, address: Ipv4Addr) -> bool {
        self.cache.contains_key(&address)
    }

    /// Records `address` at `mac`. Returns the datagrams that were waiting for it.
    pub(crate) fn learn(
        &mut self,
        now: Instant,
        address: Ipv4Addr,
        mac: EthernetAddress,
    ) -> VecDeque<Vec<u8>> {
        if !self.cache.contains_key(&address) && self.cache.len() >= self.config.cache_capacity {
            // Evict the entry that expires first.
            if let Some((&oldest, _)) = self.cache.iter().min_by_key(|(_, n)| n.expires_at) {
                self.cache.remove(&oldest);
            }
        }
        if self.config.cache_capacity > 0 {
            self.cache.insert(
                address,
                Neighbor {
                    mac,
                    expires_at: now + self.config.cache_ttl,
                },
            );
        }
        self.resolving
            .remove(&address)
            .map(|r| r.waiting)
            .unwrap_or_default()
    }

    /// Queues a datagram for `address`, starting its resolution if none is under way.
    pub(crate) fn wait(&mut self, now: Instant, address: Ipv4Addr, datagram: Vec<u8>) -> Queued {
        let limit = self.config.queue_per_neighbor;
        if !self.resolving.contains_key(&address)
            && self.resolving.len() >= self.config.max_resolving
        {
            return Queued::ResolutionLimit;
        }
        let resolution = self.resolving.entry(address).or_insert_with(|| Resolution {
            requests_sent: 0,
            deadline: now,
            request_due: true,
            waiting: VecDeque::new(),
        });
        if resolution.waiting.len() >= limit {
            return Queued::QueueFull;
        }
        resolution.waiting.push_back(datagram);
        Queued::Waiting
    }

    /// Addresses a request should be sent for now; marks them sent.
    pub(crate) fn take_due_requests(&mut self, now: Instant) -> Vec<Ipv4Addr> {
        let interval = self.config.request_interval;
        let mut due = Vec::new();
        for (&address, resolution) in &mut self.resolving {
            if resolution.request_due {
                resolution.request_due = false;
                resolution.requests_sent += 1;
                resolution.deadline = now + interval;
                due.push(address);
            }
        }
        due
    }

    /// Advances retries: a request is due again after each interval; after the last one goes
    /// unanswered for an interval, the address is given up (a stale entry for it removed).
    /// Returns the given-up addresses with how many datagrams were dropped for each.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<(Ipv4Addr, usize)> {
        let max = self.config.max_requests;
        let mut failed = Vec::new();
        self.resolving.retain(|&address, resolution| {
            if resolution.request_due || resolution.deadline > now {
                return true;
            }
            if resolution.requests_sent >= max {
                failed.push((address, resolution.waiting.len()));
                self.cache.remove(&address);
                return false;
            }
            resolution.request_due = true;
            true
        });
        failed
    }

    /// The earliest ARP deadline (cache entries have none: they go stale in place).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.resolving
            .values()
            .filter(|r| !r.request_due)
            .map(|r| r.deadline)
            .min()
    }

    /// Whether a request is waiting to be sent.
    pub(crate) fn has_due_requests(&self) -> bool {
        self.resolving.values().any(|r| r.request_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    #[test]
    fn three_requests_one_second_apart_then_give_up() {
        let mut table = ArpTable::new(ArpConfig::default());
        let t0 = Instant::ZERO;
        assert_eq!(table.wait(t0, ADDRESS, vec![1]), Queued::Waiting);
        assert_eq!(table.take_due_requests(t0), vec![ADDRESS]);
        assert!(table.take_due_requests(t0).is_empty());
        for second in 1..3 {
            let now = t0 + Duration::from_secs(second);
            assert!(
                table
                    .handle_timeout(now - Duration::from_millis(1))
                    .is_empty()
            );
            assert!(!table.has_due_requests());
            assert!(table.handle_timeout(now).is_empty());
            assert_eq!(table.take_due_requests(now), vec![ADDRESS]);
        }
        assert_eq!(
            table.handle_timeout(t0 + Duration::from_secs(3)),
            vec![(ADDRESS, 1)]
        );
        assert_eq!(table.poll_timeout(), None);
    }

    #[test]
    fn learning_releases_the_queue_and_stale_entries_are_revalidated() {
        let mut table = ArpTable::new(ArpConfig {
            queue_per_neighbor: 2,
            ..ArpConfig::default()
        });
        let t0 = Instant::ZERO;
        assert_eq!(table.wait(t0, ADDRESS, vec![1]), Queued::Waiting);
        assert_eq!(table.wait(t0, ADDRESS, vec![2]), Queued::Waiting);
        assert_eq!(table.wait(t0, ADDRESS, vec![3]), Queued::QueueFull);
        let released = table.learn(t0, ADDRESS, MAC);
        assert_eq!(released, vec![vec![1], vec![2]]);
        assert_eq!(
            table.lookup(t0 + Duration::from_secs(59), ADDRESS),
            Some(MAC)
        );
        assert!(!table.has_due_requests());
        // Stale: still used, and revalidated in the background.
        let mut now = t0 + Duration::from_secs(60);
        assert_eq!(table.lookup(now, ADDRESS), Some(MAC));
        assert!(table.has_due_requests());
        for _ in 0..3 {
            assert_eq!(table.take_due_requests(now), vec![ADDRESS]);
            now += Duration::from_secs(1);
            table.handle_timeout(now);
        }
        // Unanswered: the entry goes.
        assert!(!table.knows(ADDRESS));
        assert_eq!(table.lookup(now, ADDRESS), None);
    }

    #[test]
    fn resolutions_beyond_the_limit_are_refused_until_one_ends() {
        let mut table = ArpTable::new(ArpConfig {
            max_resolving: 2,
            ..ArpConfig::default()
        });
        let t0 = Instant::ZERO;
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let c = Ipv4Addr::new(10, 0, 0, 3);
        assert_eq!(table.wait(t0, a, vec![1]), Queued::Waiting);
        assert_eq!(table.wait(t0, b, vec![2]), Queued::Waiting);
        assert_eq!(table.wait(t0, c, vec![3]), Queued::ResolutionLimit);
        // An address already being resolved still queues.
        assert_eq!(table.wait(t0, a, vec![4]), Queued::Waiting);
        assert_eq!(table.take_due_requests(t0), vec![a, b]);
        table.learn(t0, a, MAC);
        assert_eq!(table.wait(t0, c, vec![3]), Queued::Waiting);
    }

    #[test]
    fn a_full_cache_evicts_the_entry_expiring_first() {
        let mut table = ArpTable::new(ArpConfig {
            cache_capacity: 2,
            ..ArpConfig::default()
        });
        let t0 = Instant::ZERO;
        table.learn(t0, Ipv4Addr::new(10, 0, 0, 1), MAC);
        table.learn(t0 + Duration::from_secs(1), Ipv4Addr::new(10, 0, 0, 2), MAC);
        table.learn(t0 + Duration::from_secs(2), Ipv4Addr::new(10, 0, 0, 3), MAC);
        assert!(!table.knows(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(table.knows(Ipv4Addr::new(10, 0, 0, 2)) && table.knows(Ipv4Addr::new(10, 0, 0, 3)));
    }
}
