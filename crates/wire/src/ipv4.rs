//! IPv4 headers (RFC 791).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------+-------+-----------+---+-------------------------------+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! +-------+-------+-----------+---+-+-+-+-------------------------+
//! |         Identification        |R|D|M|     Fragment Offset     |
//! +---------------+---------------+-+-+-+-------------------------+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +---------------+---------------+-------------------------------+
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! |                    Options (IHL - 5 words)                    |
//! +---------------------------------------------------------------+
//! ```
//! [`Packet::new_checked`] validates IHL and total length against the buffer, so a frame
//! padded to Ethernet's minimum (a buffer longer than the total length) is accepted and
//! [`Packet::payload`] excludes the padding. [`Ipv4Repr::parse`] also checks the version and
//! the header checksum.

use core::fmt;
use core::net::Ipv4Addr;

use crate::{Error, Result, RxChecksum, checksum};

/// The IP protocol number (the "Protocol" field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(raw: u8) -> Self {
        match raw {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(protocol: IpProtocol) -> u8 {
        match protocol {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(other) => other,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Icmp => f.write_str("ICMP"),
            IpProtocol::Tcp => f.write_str("TCP"),
            IpProtocol::Udp => f.write_str("UDP"),
            IpProtocol::Unknown(raw) => write!(f, "protocol {raw}"),
        }
    }
}

mod field {
    use core::ops::Range;
    pub(crate) const VER_IHL: usize = 0;
    pub(crate) const DSCP_ECN: usize = 1;
    pub(crate) const TOTAL_LEN: Range<usize> = 2..4;
    pub(crate) const IDENT: Range<usize> = 4..6;
    pub(crate) const FLAGS_FRAG: Range<usize> = 6..8;
    pub(crate) const TTL: usize = 8;
    pub(crate) const PROTOCOL: usize = 9;
    pub(crate) const CHECKSUM: Range<usize> = 10..12;
    pub(crate) const SRC_ADDR: Range<usize> = 12..16;
    pub(crate) const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Longest IPv4 header: IHL 15.
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DONT_FRAG: u16 = 0x4000;
const FLAG_MORE_FRAGS: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking the header length and total length against it.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors will not panic, in this order: the fixed header is present
    /// ([`Error::Truncated`]); IHL is at least 5 ([`Error::HeaderLenTooSmall`]); the header
    /// fits ([`Error::HeaderLenPastBuffer`]); the total length covers the header
    /// ([`Error::TotalLenTooSmall`]) and fits in the buffer ([`Error::TotalLenPastBuffer`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::HeaderLenTooSmall);
        }
        if header_len > len {
            return Err(Error::HeaderLenPastBuffer);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::TotalLenTooSmall);
        }
        if total_len > len {
            return Err(Error::TotalLenPastBuffer);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length of header and payload.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::TOTAL_LEN)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// The reserved flag bit (must be zero; RFC 3514 notwithstanding).
    pub fn reserved_flag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_RESERVED != 0
    }

    /// Don't Fragment.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_DONT_FRAG != 0
    }

    /// More Fragments.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLAGS_FRAG) & FLAG_MORE_FRAGS != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as written.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options bytes (IHL − 5 words).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.header()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: from the end of the header to the total length, excluding any link-layer
    /// padding after it.
    pub fn payload(&self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, at: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | (header_len / 4) as u8;
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        self.set_u16_at(field::TOTAL_LEN, value);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        self.set_u16_at(field::IDENT, value);
    }

    /// Sets the flags (reserved bit clear) and the fragment offset in bytes (a multiple of 8).
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut raw = (offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            raw |= FLAG_DONT_FRAG;
        }
        if more_frags {
            raw |= FLAG_MORE_FRAGS;
        }
        self.set_u16_at(field::FLAGS_FRAG, raw);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.header());
        self.set_checksum(checksum::finish(sum));
    }

    /// The options, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, mutable (up to the total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An IPv4 header, every field but the checksum, which `emit` computes and `parse` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr<'a> {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Length of the payload (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Differentiated services code point (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of 8.
    pub frag_offset: u16,
    /// Raw option bytes: at most 40, emitted padded with end-of-options to a multiple of 4.
    pub options: &'a [u8],
}

impl Ipv4Repr<'static> {
    /// A header as this stack sends one: TTL 64, Don't Fragment, no options, DSCP, ECN and
    /// identification 0. Set other fields with struct update syntax.
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use rawtcp_wire::ipv4::{IpProtocol, Ipv4Repr};
    ///
    /// let repr = Ipv4Repr {
    ///     ttl: 1,
    ///     ..Ipv4Repr::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), IpProtocol::Tcp, 20)
    /// };
    /// // The header alone: 20 bytes without options.
    /// assert_eq!(repr.buffer_len(), 20);
    /// assert!(repr.dont_frag);
    /// ```
    pub fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Ipv4Repr<'static> {
        Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: &[],
        }
    }
}

impl<'a> Ipv4Repr<'a> {
    /// Reads a header: the lengths ([`Packet::check_len`]), the version
    /// ([`Error::Version`]), the checksum unless `checksum` is [`RxChecksum::Trusted`]
    /// ([`Error::Checksum`]), and a fragment that would end past 65535 bytes
    /// ([`Error::Malformed`], the "ping of death").
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        checksum: RxChecksum,
    ) -> Result<Ipv4Repr<'a>> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Version);
        }
        if checksum == RxChecksum::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let payload_len = packet.payload().len();
        if usize::from(packet.frag_offset()) + payload_len > usize::from(u16::MAX) {
            return Err(Error::Malformed);
        }
        let options = &packet.buffer.as_ref()[HEADER_LEN..packet.header_len()];
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
        })
    }

    /// Reads the IPv4 header that an ICMP error quotes (RFC 792): the header and the first
    /// bytes of the original datagram, whose total length is longer than the quote. Checks
    /// the lengths and the version but not the checksum, which routers need not keep intact.
    /// Returns the header, with `payload_len` as the original datagram's, and the quoted
    /// payload bytes.
    pub fn parse_quoted(quote: &'a [u8]) -> Result<(Ipv4Repr<'a>, &'a [u8])> {
        let packet = Packet::new_unchecked(quote);
        if quote.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = packet.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::HeaderLenTooSmall);
        }
        if header_len > quote.len() {
            return Err(Error::HeaderLenPastBuffer);
        }
        if packet.version() != 4 {
            return Err(Error::Version);
        }
        let total_len = usize::from(packet.total_len());
        if total_len < header_len {
            return Err(Error::TotalLenTooSmall);
        }
        let repr = Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: total_len - header_len,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options: &quote[HEADER_LEN..header_len],
        };
        Ok((repr, &quote[header_len..]))
    }

    /// The header length this repr emits: 20 plus the options rounded up to 4 bytes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len().div_ceil(4) * 4
    }

    /// The bytes the header takes (the payload is the caller's).
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the header, checksum included, into the front of `packet`. The buffer must hold
    /// at least [`header_len`](Self::header_len) bytes and the options at most 40.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let header_len = self.header_len();
        debug_assert!(
            header_len <= MAX_HEADER_LEN,
            "IPv4 options longer than 40 bytes"
        );
        packet.set_version_and_header_len(header_len);
        packet.set_dscp_ecn(self.dscp, self.ecn);
        packet.set_total_len((header_len + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        let options = &mut packet.buffer.as_mut()[HEADER_LEN..header_len];
        options[..self.options.len()].copy_from_slice(self.options);
        options[self.options.len()..].fill(0);
        packet.fill_checksum();
    }
}

impl fmt::Display for Ipv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 src={} dst={} proto={} len={} ttl={} id={:#06x}",
            self.src_addr, self.dst_addr, self.protocol, self.payload_len, self.ttl, self.ident
        )?;
        if self.dont_frag {
            f.write_str(" DF")?;
        }
        if self.more_frags || self.frag_offset != 0 {
            write!(
                f,
                " frag={}{}",
                self.frag_offset,
                if self.more_frags { "+" } else { "" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An ICMP echo request from Linux: 10.9.0.1 -> 10.9.0.2, DF, TTL 64, 8 bytes of ICMP.
    const PACKET: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x14, 0x99, 10, 9, 0, 1, 10, 9,
        0, 2, 0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
    ];

    fn repr() -> Ipv4Repr<'static> {
        Ipv4Repr {
            ident: 0x1234,
            ..Ipv4Repr::new(
                Ipv4Addr::new(10, 9, 0, 1),
                Ipv4Addr::new(10, 9, 0, 2),
                IpProtocol::Icmp,
                8,
            )
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 28);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload().len(), 8);
        assert_eq!(
            Ipv4Repr::parse(&packet, RxChecksum::Verify).unwrap(),
            repr()
        );
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 28];
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes[20..].copy_from_slice(&PACKET[20..]);
        assert_eq!(bytes, PACKET);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&PACKET);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload().len(), 8);
    }

    #[test]
    fn options_round_trip() {
        let options = [0x94, 0x04, 0x00, 0x00, 0x01]; // router alert, then a NOP
        let repr = Ipv4Repr {
            options: &options,
            ..repr()
        };
        assert_eq!(repr.header_len(), 28);
        let mut bytes = [0u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00, 0x01, 0, 0, 0]);
        assert_eq!(
            Ipv4Repr::parse(&packet, RxChecksum::Verify)
                .unwrap()
                .payload_len,
            8
        );
    }

    #[test]
    fn each_malformation_has_its_error() {
        let check = |bytes: &[u8]| Packet::new_checked(bytes).map(|_| ());
        assert_eq!(check(&PACKET[..19]), Err(Error::Truncated));
        let mut b = PACKET;
        b[0] = 0x44; // IHL 4
        assert_eq!(check(&b), Err(Error::HeaderLenTooSmall));
        b[0] = 0x4f; // IHL 15: 60 bytes in a 28-byte buffer
        assert_eq!(check(&b), Err(Error::HeaderLenPastBuffer));
        let mut b = PACKET;
        b[3] = 19; // total length below the header
        assert_eq!(check(&b), Err(Error::TotalLenTooSmall));
        b[3] = 29; // total length one past the buffer
        assert_eq!(check(&b), Err(Error::TotalLenPastBuffer));
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..]), RxChecksum::Verify),
            Err(Error::Version)
        );
        let mut b = PACKET;
        b[8] = 63; // TTL changed, checksum not
        let packet = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&packet, RxChecksum::Verify),
            Err(Error::Checksum)
        );
        assert!(Ipv4Repr::parse(&packet, RxChecksum::Trusted).is_ok());
    }

    #[test]
    fn ping_of_death_is_malformed() {
        let mut bytes = [0u8; 28];
        Ipv4Repr {
            frag_offset: 65528,
            more_frags: false,
            ..repr()
        }
        .emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&packet, RxChecksum::Verify),
            Err(Error::Malformed)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.payload(), packet.options(), packet.verify_checksum());
                let _ = Ipv4Repr::parse(&packet, RxChecksum::Verify);
                let _ = Ipv4Repr::parse(&packet, RxChecksum::Trusted);
            }
        }

        #[test]
        fn round_trip(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(),
            payload_len in 0usize..1480, ttl in any::<u8>(), dscp in 0u8..64, ecn in 0u8..4,
            ident in any::<u16>(), df in any::<bool>(), mf in any::<bool>(), frag in 0u16..4096,
            options in proptest::collection::vec(any::<u8>(), 0..=10).prop_map(|v| { let mut v = v; v.resize(v.len().div_ceil(4) * 4, 0); v }),
        ) {
            let repr = Ipv4Repr {
                src_addr: src.into(), dst_addr: dst.into(), protocol: proto.into(), payload_len, ttl,
                dscp, ecn, ident, dont_frag: df, more_frags: mf, frag_offset: frag * 8, options: &options,
            };
            let mut bytes = std::vec![0u8; repr.header_len() + payload_len];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&packet, RxChecksum::Verify).unwrap(), repr);
        }
    }
}
