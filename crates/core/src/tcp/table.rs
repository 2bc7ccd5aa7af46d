//! The 4-tuple table: from a segment's (local, remote) addresses to the slab slot of its
//! connection, in O(1).
//!
//! It holds slot indices only, and reads each entry's 4-tuple from the connection in that
//! slot when it must compare or rehash: 4 bytes a bucket plus the control byte, where a map
//! from 4-tuple to [`ConnectionId`](super::ConnectionId) took 21. That matters because the
//! table's buckets are a power of two at most seven-eighths full: at 8000 connections it
//! has 16 384 of them (43 B per connection as a map, 10 B now), at 100 000 it has 131 072.
//! A lookup that finds its connection touches that connection anyway; a probe that meets
//! another connection's index first is rare, since the control byte's 7-bit tag of the
//! hash must match as well.
//!
//! The hash is SipHash-2-4 keyed from the seed: deterministic per seed, and a peer that
//! does not know the key cannot choose tuples that collide.

use std::net::SocketAddrV4;

use hashbrown::HashTable;

use super::isn::{siphash24, tuple_bytes};

/// A connection's (local, remote) addresses.
pub(crate) type Tuple = (SocketAddrV4, SocketAddrV4);

fn keyed_hash(key: [u64; 2], tuple: Tuple) -> u64 {
    siphash24(key, &tuple_bytes(tuple.0, tuple.1))
}

/// Slot indices by the 4-tuple of the connection in the slot. Every call is given
/// `tuple_of`, which reads the 4-tuple of the connection in a slot (`None` for an empty
/// one): the table holds only slots with a connection, each under that connection's tuple.
#[derive(Debug)]
pub(crate) struct TupleTable {
    slots: HashTable<u32>,
    key: [u64; 2],
}

impl TupleTable {
    pub(crate) fn new(key: [u64; 2]) -> TupleTable {
        TupleTable {
            slots: HashTable::new(),
            key,
        }
    }

    fn hash(&self, tuple: Tuple) -> u64 {
        keyed_hash(self.key, tuple)
    }

    /// Connections in the table.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The slot holding the connection of `tuple`.
    pub(crate) fn find(
        &self,
        tuple: Tuple,
        tuple_of: impl Fn(u32) -> Option<Tuple>,
    ) -> Option<u32> {
        self.slots
            .find(self.hash(tuple), |&slot| tuple_of(slot) == Some(tuple))
            .copied()
    }

    /// Files `slot`, whose connection has `tuple` (and which `tuple_of` reads already);
    /// no other connection of the table may have it.
    pub(crate) fn insert(
        &mut self,
        slot: u32,
        tuple: Tuple,
        tuple_of: impl Fn(u32) -> Option<Tuple>,
    ) {
        let hash = self.hash(tuple);
        // Growing rehashes every entry through its connection; an empty slot (which the
        // table never holds) would hash as 0 rather than fail.
        let key = self.key;
        let rehash = |&slot: &u32| tuple_of(slot).map_or(0, |tuple| keyed_hash(key, tuple));
        self.slots.insert_unique(hash, slot, rehash);
    }

    /// Takes `slot` out, filed under `tuple`; false if it was not there.
    pub(crate) fn remove(&mut self, slot: u32, tuple: Tuple) -> bool {
        match self
            .slots
            .find_entry(self.hash(tuple), |&filed| filed == slot)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every filed slot, in no particular order.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn tuple(port: u16) -> Tuple {
        (
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), port),
        )
    }

    #[test]
    fn slots_are_found_by_the_tuple_of_their_connection_through_growth_and_removal() {
        // The "slab": slot i holds the connection from port 1000 + i, or nothing.
        let mut slab: Vec<Option<Tuple>> = Vec::new();
        let mut table = TupleTable::new([1, 2]);
        for i in 0..5000u16 {
            slab.push(Some(tuple(1000 + i)));
            table.insert(u32::from(i), tuple(1000 + i), |s| slab[s as usize]);
        }
        assert_eq!(table.len(), 5000);
        for i in (0..5000u16).step_by(2) {
            assert!(table.remove(u32::from(i), tuple(1000 + i)));
            slab[usize::from(i)] = None;
        }
        assert!(!table.remove(0, tuple(1000)), "gone already");
        assert_eq!(table.len(), 2500);
        for i in 0..5000u16 {
            let found = table.find(tuple(1000 + i), |s| slab[s as usize]);
            assert_eq!(found, (i % 2 == 1).then_some(u32::from(i)));
        }
        // A slot taken again by another connection is found under the new tuple only.
        slab[0] = Some(tuple(9999));
        table.insert(0, tuple(9999), |s| slab[s as usize]);
        assert_eq!(table.find(tuple(9999), |s| slab[s as usize]), Some(0));
        assert_eq!(table.find(tuple(1000), |s| slab[s as usize]), None);
    }

    #[test]
    fn the_table_holds_four_bytes_a_bucket() {
        let mut slab: Vec<Option<Tuple>> = Vec::new();
        let mut table = TupleTable::new([3, 4]);
        for i in 0..8000u16 {
            slab.push(Some(tuple(i)));
            table.insert(u32::from(i), tuple(i), |s| slab[s as usize]);
        }
        // 8000 entries take 16 384 buckets (at most 7/8 full): 4 bytes and a control byte
        // each, about 10 bytes per connection.
        let bytes = table.slots.allocation_size();
        assert!(bytes <= 16_384 * 5 + 64, "{bytes} B");
    }
}
