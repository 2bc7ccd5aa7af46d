//! Ethernet II frames, with one IEEE 802.1Q tag recognised.
//!
//! ```text
//!  0                   6                   12      14
//! +-------------------+-------------------+-------+-----------
//! | destination       | source            | type  | payload
//! +-------------------+-------------------+-------+-----------
//!                      802.1Q: type = 0x8100, then TCI (2), then the inner type (2)
//! ```
//! The frame check sequence is not part of what devices hand us and is not modelled.

use core::fmt;

use crate::{Error, Result};

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address from a six-byte slice.
    ///
    /// # Panics
    /// If `bytes` is not six bytes long.
    pub fn from_bytes(bytes: &[u8]) -> EthernetAddress {
        let mut address = [0u8; 6];
        address.copy_from_slice(bytes);
        EthernetAddress(address)
    }

    /// The six bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (broadcast or multicast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this can be a station's own address: not multicast, not all zeros.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The EtherType field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86dd.
    Ipv6,
    /// 0x8100, an IEEE 802.1Q tag.
    Vlan,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(raw: u16) -> Self {
        match raw {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(ethertype: EtherType) -> u16 {
        match ethertype {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::Unknown(raw) => write!(f, "0x{raw:04x}"),
        }
    }
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub(crate) const DESTINATION: Range<usize> = 0..6;
    pub(crate) const SOURCE: Range<usize> = 6..12;
    pub(crate) const ETHERTYPE: Range<usize> = 12..14;
    pub(crate) const PAYLOAD: RangeFrom<usize> = 14..;
    pub(crate) const VLAN_TCI: Range<usize> = 14..16;
    pub(crate) const VLAN_ETHERTYPE: Range<usize> = 16..18;
    pub(crate) const VLAN_PAYLOAD: RangeFrom<usize> = 18..;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::VLAN_PAYLOAD.start;

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer, checking that it holds the whole header (and the 802.1Q tag, when the
    /// outer EtherType announces one).
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that accessors will not panic.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.outer_ethertype() == EtherType::Vlan && len < VLAN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source address.
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType at offset 12, which is 802.1Q for a tagged frame.
    pub fn outer_ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The 802.1Q tag control information (priority, DEI, VLAN id), if the frame is tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.outer_ethertype() != EtherType::Vlan {
            return None;
        }
        let b = &self.buffer.as_ref()[field::VLAN_TCI];
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The EtherType of the payload, looking past an 802.1Q tag.
    pub fn ethertype(&self) -> EtherType {
        if self.outer_ethertype() != EtherType::Vlan {
            return self.outer_ethertype();
        }
        let b = &self.buffer.as_ref()[field::VLAN_ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The header length: 14, or 18 with an 802.1Q tag.
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == EtherType::Vlan {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload after the header (and tag), with the lifetime of the buffer.
    pub fn payload(&self) -> &'a [u8] {
        let start = self.header_len();
        &self.buffer.as_ref()[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, address: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&address.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, address: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&address.0);
    }

    /// Sets the EtherType at offset 12.
    pub fn set_outer_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Sets the 802.1Q TCI; the outer EtherType must already be 802.1Q.
    pub fn set_vlan_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[field::VLAN_TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the inner EtherType of a tagged frame.
    pub fn set_inner_ethertype(&mut self, ethertype: EtherType) {
        self.buffer.as_mut()[field::VLAN_ETHERTYPE]
            .copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The header of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// 802.1Q tag control information, when the frame carries a tag.
    pub vlan_tci: Option<u16>,
    /// EtherType of the payload.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan_tci: frame.vlan_tci(),
            ethertype: frame.ethertype(),
        })
    }

    /// The header length this repr emits.
    pub const fn buffer_len(&self) -> usize {
        if self.vlan_tci.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header into the front of `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        match self.vlan_tci {
            Some(tci) => {
                frame.set_outer_ethertype(EtherType::Vlan);
                frame.set_vlan_tci(tci);
                frame.set_inner_ethertype(self.ethertype);
            }
            None => frame.set_outer_ethertype(self.ethertype),
        }
    }
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ethernet src={} dst={}", self.src_addr, self.dst_addr)?;
        if let Some(tci) = self.vlan_tci {
            write!(f, " vlan={} pcp={}", tci & 0x0fff, tci >> 13)?;
        }
        write!(f, " type={}", self.ethertype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ARP_FRAME: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
    ];

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(&ARP_FRAME[..]).unwrap();
        assert_eq!(frame.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(frame.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame.ethertype(), EtherType::Arp);
        assert_eq!(frame.vlan_tci(), None);
        assert_eq!(frame.payload(), &[] as &[u8]);
    }

    #[test]
    fn construct_tagged_and_parse() {
        let repr = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            vlan_tci: Some(0x2064),
            ethertype: EtherType::Ipv4,
        };
        let mut bytes = [0u8; 20];
        repr.emit(&mut Frame::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[12..18], &[0x81, 0x00, 0x20, 0x64, 0x08, 0x00]);
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        assert_eq!(frame.payload().len(), 2);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            Frame::new_checked(&ARP_FRAME[..13]).unwrap_err(),
            Error::Truncated
        );
        let tagged = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 1, 8];
        assert_eq!(
            Frame::new_checked(&tagged[..]).unwrap_err(),
            Error::Truncated
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(frame) = Frame::new_checked(&bytes[..]) {
                let repr = EthernetRepr::parse(&frame).unwrap();
                prop_assert_eq!(frame.payload().len() + repr.buffer_len(), bytes.len());
            }
        }

        #[test]
        fn round_trip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), tci in any::<Option<u16>>(), ty in any::<u16>()) {
            prop_assume!(ty != 0x8100);
            let repr = EthernetRepr {
                src_addr: EthernetAddress(src), dst_addr: EthernetAddress(dst),
                vlan_tci: tci, ethertype: EtherType::from(ty),
            };
            let mut bytes = [0u8; 18];
            let len = repr.buffer_len();
            repr.emit(&mut Frame::new_unchecked(&mut bytes[..len]));
            prop_assert_eq!(EthernetRepr::parse(&Frame::new_checked(&bytes[..len]).unwrap()).unwrap(), repr);
        }
    }
}
