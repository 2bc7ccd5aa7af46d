//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! ```text
//!  0       2       4   5   6       8            14       18           24       28
//! +-------+-------+---+---+-------+------------+--------+------------+--------+
//! | htype | ptype |hln|pln| oper  | sender MAC | sender | target MAC | target |
//! |   1   | 0x0800| 6 | 4 | 1 / 2 |            | IPv4   |            | IPv4   |
//! +-------+-------+---+---+-------+------------+--------+------------+--------+
//! ```
//! The view reads any hardware and protocol lengths; [`ArpRepr`] models only the
//! Ethernet/IPv4 combination and reports the rest as [`Error::Unsupported`].

use core::fmt;
use core::net::Ipv4Addr;

use crate::ethernet::{EtherType, EthernetAddress};
use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub(crate) const HTYPE: Range<usize> = 0..2;
    pub(crate) const PTYPE: Range<usize> = 2..4;
    pub(crate) const HLEN: usize = 4;
    pub(crate) const PLEN: usize = 5;
    pub(crate) const OPER: Range<usize> = 6..8;
    pub(crate) const FIXED_END: usize = 8;
}

/// The hardware type for Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;
/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// An ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1: who has the target address?
    Request,
    /// 2: the sender has the sender address.
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(raw: u16) -> Self {
        match raw {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(operation: Operation) -> u16 {
        match operation {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

/// A zero-copy view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the fixed header and both address pairs of the
    /// lengths the header announces.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors will not panic.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::FIXED_END || len < self.target_protocol_range().end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.u16_at(field::PTYPE))
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        Operation::from(self.u16_at(field::OPER))
    }

    fn sender_hardware_range(&self) -> core::ops::Range<usize> {
        let start = field::FIXED_END;
        start..start + usize::from(self.hardware_len())
    }

    fn sender_protocol_range(&self) -> core::ops::Range<usize> {
        let start = self.sender_hardware_range().end;
        start..start + usize::from(self.protocol_len())
    }

    fn target_hardware_range(&self) -> core::ops::Range<usize> {
        let start = self.sender_protocol_range().end;
        start..start + usize::from(self.hardware_len())
    }

    fn target_protocol_range(&self) -> core::ops::Range<usize> {
        let start = self.target_hardware_range().end;
        start..start + usize::from(self.protocol_len())
    }

    /// Sender hardware address bytes.
    pub fn sender_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.sender_hardware_range()]
    }

    /// Sender protocol address bytes.
    pub fn sender_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.sender_protocol_range()]
    }

    /// Target hardware address bytes.
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.target_hardware_range()]
    }

    /// Target protocol address bytes.
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.target_protocol_range()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, at: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        self.set_u16_at(field::HTYPE, value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        self.set_u16_at(field::PTYPE, value.into());
    }

    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: Operation) {
        self.set_u16_at(field::OPER, value.into());
    }

    /// Sets the sender hardware address; its length must match the header's.
    pub fn set_sender_hardware_addr(&mut self, value: &[u8]) {
        let range = self.sender_hardware_range();
        self.buffer.as_mut()[range].copy_from_slice(value);
    }

    /// Sets the sender protocol address; its length must match the header's.
    pub fn set_sender_protocol_addr(&mut self, value: &[u8]) {
        let range = self.sender_protocol_range();
        self.buffer.as_mut()[range].copy_from_slice(value);
    }

    /// Sets the target hardware address; its length must match the header's.
    pub fn set_target_hardware_addr(&mut self, value: &[u8]) {
        let range = self.target_hardware_range();
        self.buffer.as_mut()[range].copy_from_slice(value);
    }

    /// Sets the target protocol address; its length must match the header's.
    pub fn set_target_protocol_addr(&mut self, value: &[u8]) {
        let range = self.target_protocol_range();
        self.buffer.as_mut()[range].copy_from_slice(value);
    }
}

/// An Ethernet/IPv4 ARP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: Operation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in a request).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

fn ipv4_from(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

impl ArpRepr {
    /// An ARP Probe for `address` from `mac` (RFC 5227 §2.1.1): a request with sender IP
    /// 0.0.0.0, so that no other host's cache learns a mapping from it, and target MAC zero.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_wire::arp::ArpRepr;
    /// use rawtcp_wire::ethernet::EthernetAddress;
    /// use std::net::Ipv4Addr;
    ///
    /// let probe = ArpRepr::probe(EthernetAddress([2, 0, 0, 0, 0, 2]), Ipv4Addr::new(10, 9, 0, 2));
    /// assert!(probe.is_probe() && !probe.is_announcement());
    /// assert_eq!(probe.source_protocol_addr, Ipv4Addr::UNSPECIFIED);
    /// ```
    pub const fn probe(mac: EthernetAddress, address: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: Ipv4Addr::UNSPECIFIED,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: address,
        }
    }

    /// An ARP Announcement of `address` at `mac` (RFC 5227 §2.3): a probe whose sender and
    /// target IP are both the address, a gratuitous ARP that refreshes other hosts' caches.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_wire::arp::ArpRepr;
    /// use rawtcp_wire::ethernet::EthernetAddress;
    /// use std::net::Ipv4Addr;
    ///
    /// let ours = Ipv4Addr::new(10, 9, 0, 2);
    /// let announcement = ArpRepr::announcement(EthernetAddress([2, 0, 0, 0, 0, 2]), ours);
    /// assert!(announcement.is_announcement());
    /// assert_eq!(announcement.source_protocol_addr, ours);
    /// ```
    pub const fn announcement(mac: EthernetAddress, address: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            source_protocol_addr: address,
            ..ArpRepr::probe(mac, address)
        }
    }

    /// Whether this is an ARP Probe (RFC 5227 §2.1.1): a request from sender IP 0.0.0.0.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_wire::arp::ArpRepr;
    /// use std::net::Ipv4Addr;
    ///
    /// assert!(ArpRepr::probe(Default::default(), Ipv4Addr::new(10, 0, 0, 1)).is_probe());
    /// ```
    pub fn is_probe(&self) -> bool {
        self.operation == Operation::Request && self.source_protocol_addr.is_unspecified()
    }

    /// Whether this is an ARP Announcement (RFC 5227 §2.3): a request whose sender and
    /// target IP are the same address.
    ///
    /// # Examples
    /// ```
    /// use rawtcp_wire::arp::ArpRepr;
    /// use std::net::Ipv4Addr;
    ///
    /// assert!(ArpRepr::announcement(Default::default(), Ipv4Addr::new(10, 0, 0, 1)).is_announcement());
    /// ```
    pub fn is_announcement(&self) -> bool {
        self.operation == Operation::Request
            && !self.source_protocol_addr.is_unspecified()
            && self.source_protocol_addr == self.target_protocol_addr
    }

    /// Reads an Ethernet/IPv4 request or reply.
    ///
    /// Other hardware or protocol types are [`Error::Unsupported`]; an operation other than
    /// request or reply is [`Error::Malformed`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let operation = packet.operation();
        if let Operation::Unknown(_) = operation {
            return Err(Error::Malformed);
        }
        Ok(ArpRepr {
            operation,
            source_hardware_addr: EthernetAddress::from_bytes(packet.sender_hardware_addr()),
            source_protocol_addr: ipv4_from(packet.sender_protocol_addr()),
            target_hardware_addr: EthernetAddress::from_bytes(packet.target_hardware_addr()),
            target_protocol_addr: ipv4_from(packet.target_protocol_addr()),
        })
    }

    /// The packet length this repr emits: 28.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the packet into `packet`, which holds at least [`buffer_len`](Self::buffer_len)
    /// bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.source_hardware_addr.as_bytes());
        packet.set_sender_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(self.target_hardware_addr.as_bytes());
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

impl fmt::Display for ArpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Operation::Request => write!(
                f,
                "ARP who-has {} tell {} ({})",
                self.target_protocol_addr, self.source_protocol_addr, self.source_hardware_addr
            ),
            Operation::Reply => write!(
                f,
                "ARP reply {} is-at {}",
                self.source_protocol_addr, self.source_hardware_addr
            ),
            Operation::Unknown(op) => write!(f, "ARP operation {op}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A request captured from Linux: who has 10.9.0.2, tell 10.9.0.1.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 9,
        0, 1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 9, 0, 2,
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: Ipv4Addr::new(10, 9, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(10, 9, 0, 2),
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(ArpRepr::parse(&packet).unwrap(), request_repr());
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 28];
        request_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, REQUEST);
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut other = REQUEST;
        other[1] = 6; // IEEE 802 hardware type
        assert_eq!(
            ArpRepr::parse(&Packet::new_checked(&other[..]).unwrap()),
            Err(Error::Unsupported)
        );
        let mut other = REQUEST;
        other[7] = 3; // RARP request
        assert_eq!(
            ArpRepr::parse(&Packet::new_checked(&other[..]).unwrap()),
            Err(Error::Malformed)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = packet.target_protocol_addr();
                let _ = ArpRepr::parse(&packet);
            }
        }

        #[test]
        fn round_trip(reply in any::<bool>(), smac in any::<[u8; 6]>(), sip in any::<[u8; 4]>(), tmac in any::<[u8; 6]>(), tip in any::<[u8; 4]>()) {
            let repr = ArpRepr {
                operation: if reply { Operation::Reply } else { Operation::Request },
                source_hardware_addr: EthernetAddress(smac),
                source_protocol_addr: sip.into(),
                target_hardware_addr: EthernetAddress(tmac),
                target_protocol_addr: tip.into(),
            };
            let mut bytes = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            prop_assert_eq!(ArpRepr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap(), repr);
        }
    }
}
