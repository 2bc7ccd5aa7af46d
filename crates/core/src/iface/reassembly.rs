//! IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) with bounded memory.
//!
//! Fragments are keyed by (source, destination, protocol, identification). A datagram is
//! dropped whole when a fragment overlaps another with different bytes or contradicts the
//! known total length (overlaps are how fragment attacks work; RFC 5722 makes the same rule
//! for IPv6), when its timeout passes, or when the memory or datagram limit would be exceeded.
//! An exact duplicate of a fragment already held is dropped alone.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::Instant;
use crate::config::ReassemblyConfig;
use crate::iface::stats::DropReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FragmentKey {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) protocol: u8,
    pub(crate) ident: u16,
}

#[derive(Debug)]
struct Partial {
    data: Vec<u8>,
    /// Sorted, disjoint byte ranges received.
    ranges: Vec<(usize, usize)>,
    total_len: Option<usize>,
    /// The first fragment's IPv4 header and first 8 data bytes, for an ICMP time-exceeded.
    first: Option<Vec<u8>>,
    expires_at: Instant,
    /// Dropped after an overlap: later fragments of it are dropped until the timeout.
    poisoned: bool,
}

/// One fragment, as the interface layer hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fragment<'a> {
    pub(crate) key: FragmentKey,
    /// Offset of the payload in the datagram, in bytes.
    pub(crate) offset: usize,
    pub(crate) more: bool,
    pub(crate) payload: &'a [u8],
    /// The fragment's IPv4 header followed by its payload (for quoting).
    pub(crate) raw: &'a [u8],
    pub(crate) header_len: usize,
}

/// An expired datagram whose first fragment arrived: the quote for ICMP time exceeded.
#[derive(Debug)]
pub(crate) struct Expired {
    pub(crate) first: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Reassembly {
    config: ReassemblyConfig,
    partials: BTreeMap<FragmentKey, Partial>,
    bytes: usize,
}

impl Reassembly {
    pub(crate) fn new(config: ReassemblyConfig) -> Reassembly {
        Reassembly {
            config,
            partials: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Adds a fragment; returns the whole payload when this one completes the datagram.
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        fragment: Fragment<'_>,
    ) -> Result<Option<Vec<u8>>, DropReason> {
        let start = fragment.offset;
        let end = start + fragment.payload.len();
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        if (fragment.more && !fragment.payload.len().is_multiple_of(8))
            || end > usize::from(u16::MAX)
            || (fragment.more && fragment.payload.is_empty())
        {
            return Err(DropReason::FragmentMalformed);
        }
        if !self.partials.contains_key(&fragment.key) {
            if self.partials.len() >= self.config.max_datagrams {
                return Err(DropReason::FragmentLimit);
            }
            self.partials.insert(
                fragment.key,
                Partial {
                    data: Vec::new(),
                    ranges: Vec::new(),
                    total_len: None,
                    first: None,
                    expires_at: now + self.config.timeout,
                    poisoned: false,
                },
            );
        }
        let partial = self
            .partials
            .get_mut(&fragment.key)
            .expect("inserted above");
        if partial.poisoned {
            return Err(DropReason::FragmentOverlap);
        }
        // An exact duplicate is harmless; any other overlap poisons the datagram.
        if let Some(&(s, e)) = partial.ranges.iter().find(|&&(s, e)| s < end && start < e) {
            if (s, e) == (start, end) && partial.data[s..e] == *fragment.payload {
                return Err(DropReason::FragmentOverlap);
            }
            Self::poison(&mut self.bytes, partial);
            return Err(DropReason::FragmentOverlap);
        }
        let contradicts_total = match (partial.total_len, fragment.more) {
            (Some(total), more) => end > total || (!more && end != total),
            (None, false) => partial.ranges.last().is_some_and(|&(_, e)| e > end),
            (None, true) => false,
        };
        if contradicts_total {
            Self::poison(&mut self.bytes, partial);
            return Err(DropReason::FragmentMalformed);
        }
        let growth = end.saturating_sub(partial.data.len());
        if self.bytes + growth > self.config.max_bytes {
            return Err(DropReason::FragmentLimit);
        }
        if growth > 0 {
            partial.data.resize(end, 0);
            self.bytes += growth;
        }
        partial.data[start..end].copy_from_slice(fragment.payload);
        let at = partial.ranges.partition_point(|&(s, _)| s < start);
        partial.ranges.insert(at, (start, end));
        if !fragment.more {
            partial.total_len = Some(end);
        }
        if start == 0 {
            let quote = (fragment.header_len + 8).min(fragment.raw.len());
            partial.first = Some(fragment.raw[..quote].to_vec());
        }
        let complete = partial.total_len.is_some_and(|total| {
            let mut covered = 0;
            for &(s, e) in &partial.ranges {
                if s != covered {
                    return false;
                }
                covered = e;
            }
            covered == total
        });
        if !complete {
            return Ok(None);
        }
        let partial = self.partials.remove(&fragment.key).expect("present");
        self.bytes -= partial.data.len();
        Ok(Some(partial.data))
    }

    fn poison(bytes: &mut usize, partial: &mut Partial) {
        *bytes -= partial.data.len();
        partial.data = Vec::new();
        partial.ranges.clear();
        partial.first = None;
        partial.poisoned = true;
    }

    /// Drops datagrams past their timeout; returns them (with the first fragment's quote when
    /// it arrived) and how many were dropped.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> (Vec<Expired>, usize) {
        let mut expired = Vec::new();
        let mut count = 0;
        let bytes = &mut self.bytes;
        self.partials.retain(|_, partial| {
            if partial.expires_at > now {
                return true;
            }
            *bytes -= partial.data.len();
            if !partial.poisoned {
                count += 1;
                if let Some(first) = partial.first.take() {
                    expired.push(Expired { first });
                }
            }
            false
        });
        (expired, count)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.partials.values().map(|p| p.expires_at).min()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use proptest::prelude::*;

    const KEY: FragmentKey = FragmentKey {
        src: Ipv4Addr::new(10, 9, 0, 1),
        dst: Ipv4Addr::new(10, 9, 0, 2),
        protocol: 1,
        ident: 7,
    };

    fn fragment(offset: usize, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            key: KEY,
            offset,
            more,
            payload,
            raw: payload,
            header_len: 0,
        }
    }

    fn datagram(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn out_of_order_fragments_reassemble() {
        let data = datagram(3000);
        let mut r = Reassembly::new(ReassemblyConfig::default());
        let now = Instant::ZERO;
        assert_eq!(
            r.insert(now, fragment(2400, false, &data[2400..])),
            Ok(None)
        );
        assert_eq!(r.insert(now, fragment(0, true, &data[..1200])), Ok(None));
        assert_eq!(
            r.insert(now, fragment(1200, true, &data[1200..2400])),
            Ok(Some(data.clone()))
        );
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn overlap_discards_the_datagram_but_a_duplicate_does_not() {
        let data = datagram(1600);
        let mut r = Reassembly::new(ReassemblyConfig::default());
        let now = Instant::ZERO;
        assert_eq!(r.insert(now, fragment(0, true, &data[..800])), Ok(None));
        assert_eq!(
            r.insert(now, fragment(0, true, &data[..800])),
            Err(DropReason::FragmentOverlap)
        );
        assert_eq!(
            r.insert(now, fragment(400, true, &data[400..1200])),
            Err(DropReason::FragmentOverlap)
        );
        // Poisoned: even the fragment that would have completed it is dropped.
        assert_eq!(
            r.insert(now, fragment(800, false, &data[800..])),
            Err(DropReason::FragmentOverlap)
        );
        assert_eq!(r.bytes(), 0);
        let (expired, count) = r.handle_timeout(now + Duration::from_secs(30));
        assert!(expired.is_empty() && count == 0);
    }

    #[test]
    fn timeout_limits_and_malformed() {
        let data = datagram(4000);
        let config = ReassemblyConfig {
            max_datagrams: 1,
            max_bytes: 2000,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembly::new(config);
        let now = Instant::ZERO;
        assert_eq!(r.insert(now, fragment(0, true, &data[..1000])), Ok(None));
        assert_eq!(
            r.insert(now, fragment(1000, true, &data[1000..3000])),
            Err(DropReason::FragmentLimit)
        );
        let other = Fragment {
            key: FragmentKey { ident: 8, ..KEY },
            ..fragment(0, true, &data[..8])
        };
        assert_eq!(r.insert(now, other), Err(DropReason::FragmentLimit));
        assert_eq!(
            r.insert(now, fragment(1000, true, &data[1000..1001])),
            Err(DropReason::FragmentMalformed)
        );
        assert_eq!(r.poll_timeout(), Some(now + Duration::from_secs(30)));
        let (expired, count) = r.handle_timeout(now + Duration::from_secs(30));
        assert_eq!((expired.len(), count), (1, 1));
        assert_eq!(r.bytes(), 0);
    }

    proptest! {
        #[test]
        fn any_arrival_order_with_duplicates_reassembles(len in 9usize..5000, cut in 1usize..64, seed in any::<u64>()) {
            let data = datagram(len);
            let step = cut * 8;
            let mut pieces: Vec<(usize, bool)> = (0..len).step_by(step).map(|o| (o, o + step < len)).collect();
            // A deterministic shuffle with one duplicate.
            let mut state = seed | 1;
            for i in (1..pieces.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                pieces.swap(i, (state % (i as u64 + 1)) as usize);
            }
            pieces.insert(0, pieces[pieces.len() - 1]);
            let mut r = Reassembly::new(ReassemblyConfig::default());
            let mut result = None;
            for (offset, more) in pieces {
                let end = (offset + step).min(len);
                if let Ok(Some(done)) = r.insert(Instant::ZERO, fragment(offset, more, &data[offset..end])) {
                    result = Some(done);
                }
            }
            prop_assert_eq!(result, Some(data));
        }
    }
}
