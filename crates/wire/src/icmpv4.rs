//! ICMPv4 (RFC 792): echo, destination unreachable (with RFC 1191's next-hop MTU) and time
//! exceeded.
//!
//! ```text
//! +--------+--------+-----------------+
//! |  type  |  code  |    checksum     |
//! +--------+--------+-----------------+
//! | echo: identifier | sequence number |   unreachable: unused | next-hop MTU
//! +-----------------------------------+
//! | echo data, or the quoted IPv4 header + at least 8 bytes of its payload
//! ```
//! An error message quotes the datagram that caused it; [`Icmpv4Repr`] hands the quoted
//! header back as an [`Ipv4Repr`] with the quoted payload bytes, so the engine can find the
//! connection it concerns. Message types this crate does not model parse as
//! [`Error::Unsupported`]; the view still reads their type and code.

use core::fmt;

use crate::ipv4::{self, Ipv4Repr};
use crate::{Error, Result, RxChecksum, checksum};

/// The ICMP message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0.
    EchoReply,
    /// 3.
    DstUnreachable,
    /// 8.
    EchoRequest,
    /// 11.
    TimeExceeded,
    /// Any other type.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(raw: u8) -> Self {
        match raw {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(message: Message) -> u8 {
        match message {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::Unknown(other) => other,
        }
    }
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl TryFrom<u8> for $name {
            type Error = Error;
            fn try_from(raw: u8) -> Result<Self> {
                match raw {
                    $($value => Ok($name::$variant),)*
                    _ => Err(Error::Malformed),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(code: $name) -> u8 {
                match code {
                    $($name::$variant => $value,)*
                }
            }
        }
    };
}

code_enum! {
    /// The code of a destination-unreachable message (RFC 792, RFC 1122 §3.2.2.1,
    /// RFC 1812 §5.2.7.1).
    DstUnreachable {
        /// 0: network unreachable.
        NetUnreachable = 0,
        /// 1: host unreachable.
        HostUnreachable = 1,
        /// 2: protocol unreachable.
        ProtoUnreachable = 2,
        /// 3: port unreachable.
        PortUnreachable = 3,
        /// 4: fragmentation needed and DF set; carries the next-hop MTU (RFC 1191).
        FragRequired = 4,
        /// 5: source route failed.
        SrcRouteFailed = 5,
        /// 6: destination network unknown.
        DstNetUnknown = 6,
        /// 7: destination host unknown.
        DstHostUnknown = 7,
        /// 8: source host isolated.
        SrcHostIsolated = 8,
        /// 9: network administratively prohibited.
        NetProhibited = 9,
        /// 10: host administratively prohibited.
        HostProhibited = 10,
        /// 11: network unreachable for type of service.
        NetUnreachToS = 11,
        /// 12: host unreachable for type of service.
        HostUnreachToS = 12,
        /// 13: communication administratively prohibited.
        CommProhibited = 13,
        /// 14: host precedence violation.
        HostPrecedenceViolation = 14,
        /// 15: precedence cutoff in effect.
        PrecedenceCutoff = 15,
    }
}

code_enum! {
    /// The code of a time-exceeded message.
    TimeExceeded {
        /// 0: TTL exceeded in transit.
        TtlExpired = 0,
        /// 1: fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    use core::ops::{Range, RangeFrom};
    pub(crate) const TYPE: usize = 0;
    pub(crate) const CODE: usize = 1;
    pub(crate) const CHECKSUM: Range<usize> = 2..4;
    pub(crate) const ECHO_IDENT: Range<usize> = 4..6;
    pub(crate) const ECHO_SEQNO: Range<usize> = 6..8;
    pub(crate) const UNUSED: Range<usize> = 4..6;
    pub(crate) const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub(crate) const DATA: RangeFrom<usize> = 8..;
}

/// Length of the ICMP header.
pub const HEADER_LEN: usize = field::DATA.start;

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors will not panic.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn u16_at(&self, at: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[at];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The message type.
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum as written.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(field::ECHO_IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a fragmentation-needed message (RFC 1191 §4); 0 from routers that
    /// predate it.
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(field::NEXT_HOP_MTU)
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The bytes after the 8-byte header.
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::DATA]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, at: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the type.
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        self.set_u16_at(field::ECHO_IDENT, value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        self.set_u16_at(field::ECHO_SEQNO, value);
    }

    /// Sets the next-hop MTU, clearing the unused half-word before it.
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        self.set_u16_at(field::UNUSED, 0);
        self.set_u16_at(field::NEXT_HOP_MTU, value);
    }

    /// The data, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(checksum::finish(sum));
    }
}

/// An ICMPv4 message this crate models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, echoed back in the reply.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier of the request.
        ident: u16,
        /// Sequence number of the request.
        seq_no: u16,
        /// The request's data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Why.
        reason: DstUnreachable,
        /// Next-hop MTU, meaningful for [`DstUnreachable::FragRequired`] and emitted only
        /// with it.
        next_hop_mtu: u16,
        /// The quoted IPv4 header; its `payload_len` is the original datagram's.
        header: Ipv4Repr<'a>,
        /// The quoted bytes after that header (at least the first 8: the transport ports).
        data: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// Why.
        reason: TimeExceeded,
        /// The quoted IPv4 header.
        header: Ipv4Repr<'a>,
        /// The quoted bytes after that header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a message: the checksum unless trusted ([`Error::Checksum`]), an unknown type
    /// ([`Error::Unsupported`]), an unknown code ([`Error::Malformed`]), and for errors the
    /// quoted header ([`Ipv4Repr::parse_quoted`]'s errors).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        checksum: RxChecksum,
    ) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if checksum == RxChecksum::Verify && !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        match packet.msg_type() {
            Message::EchoRequest | Message::EchoReply if packet.msg_code() != 0 => {
                Err(Error::Malformed)
            }
            Message::EchoRequest => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            Message::EchoReply => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            Message::DstUnreachable => {
                let reason = DstUnreachable::try_from(packet.msg_code())?;
                let (header, data) = Ipv4Repr::parse_quoted(packet.data())?;
                let next_hop_mtu = match reason {
                    DstUnreachable::FragRequired => packet.next_hop_mtu(),
                    _ => 0,
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu,
                    header,
                    data,
                })
            }
            Message::TimeExceeded => {
                let reason = TimeExceeded::try_from(packet.msg_code())?;
                let (header, data) = Ipv4Repr::parse_quoted(packet.data())?;
                Ok(Icmpv4Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                })
            }
            Message::Unknown(_) => Err(Error::Unsupported),
        }
    }

    /// The message length this repr emits.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Icmpv4Repr::DstUnreachable { header, data, .. }
            | Icmpv4Repr::TimeExceeded { header, data, .. } => {
                HEADER_LEN + header.header_len() + data.len()
            }
        }
    }

    /// Writes the message, checksum included, into `packet`, which must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes long (the checksum covers the whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let message = match self {
                    Icmpv4Repr::EchoRequest { .. } => Message::EchoRequest,
                    _ => Message::EchoReply,
                };
                packet.set_msg_type(message);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                data,
            } => {
                packet.set_msg_type(Message::DstUnreachable);
                packet.set_msg_code(reason.into());
                let mtu = if reason == DstUnreachable::FragRequired {
                    next_hop_mtu
                } else {
                    0
                };
                packet.set_next_hop_mtu(mtu);
                emit_quote(packet.data_mut(), &header, data);
            }
            Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            } => {
                packet.set_msg_type(Message::TimeExceeded);
                packet.set_msg_code(reason.into());
                packet.set_next_hop_mtu(0);
                emit_quote(packet.data_mut(), &header, data);
            }
        }
        packet.fill_checksum();
    }
}

fn emit_quote(out: &mut [u8], header: &Ipv4Repr<'_>, data: &[u8]) {
    let header_len = header.header_len();
    header.emit(&mut ipv4::Packet::new_unchecked(&mut out[..header_len]));
    out[header_len..header_len + data.len()].copy_from_slice(data);
}

impl fmt::Display for Icmpv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                write!(
                    f,
                    "ICMP echo request id={ident} seq={seq_no} len={}",
                    data.len()
                )
            }
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                write!(
                    f,
                    "ICMP echo reply id={ident} seq={seq_no} len={}",
                    data.len()
                )
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                ..
            } => {
                write!(
                    f,
                    "ICMP unreachable {reason:?} for {} -> {}",
                    header.src_addr, header.dst_addr
                )?;
                if *reason == DstUnreachable::FragRequired {
                    write!(f, " mtu={next_hop_mtu}")?;
                }
                Ok(())
            }
            Icmpv4Repr::TimeExceeded { reason, header, .. } => {
                write!(
                    f,
                    "ICMP time exceeded {reason:?} for {} -> {}",
                    header.src_addr, header.dst_addr
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::IpProtocol;
    use core::net::Ipv4Addr;
    use proptest::prelude::*;

    /// `ping -c1 -p 61 -s 4`: echo request id 0x1234 seq 1, data "aaaa".
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x23, 0x08, 0x12, 0x34, 0x00, 0x01, 0x61, 0x61, 0x61, 0x61,
    ];

    fn quoted_tcp() -> Ipv4Repr<'static> {
        Ipv4Repr {
            ident: 7,
            ..Ipv4Repr::new(
                Ipv4Addr::new(10, 9, 0, 2),
                Ipv4Addr::new(10, 9, 0, 1),
                IpProtocol::Tcp,
                1480,
            )
        }
    }

    #[test]
    fn echo_deconstruct_and_construct() {
        let packet = Packet::new_checked(&ECHO[..]).unwrap();
        assert!(
            packet.verify_checksum(),
            "checksum {:#06x}",
            packet.checksum()
        );
        let repr = Icmpv4Repr::parse(&packet, RxChecksum::Verify).unwrap();
        assert_eq!(
            repr,
            Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"aaaa"
            }
        );
        let mut bytes = [0u8; 12];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, ECHO);
    }

    #[test]
    fn every_unreachable_code_round_trips() {
        let ports = [0xc0, 0x01, 0x00, 0x50, 0, 0, 0, 1];
        for code in 0..=15u8 {
            let reason = DstUnreachable::try_from(code).unwrap();
            let repr = Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu: if code == 4 { 1400 } else { 0 },
                header: quoted_tcp(),
                data: &ports,
            };
            let mut bytes = [0u8; 36];
            assert_eq!(repr.buffer_len(), 36);
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            assert_eq!(bytes[1], code);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&packet, RxChecksum::Verify).unwrap(),
                repr
            );
        }
        assert_eq!(DstUnreachable::try_from(16), Err(Error::Malformed));
    }

    #[test]
    fn frag_needed_carries_mtu_and_quote() {
        let ports = [0xc0, 0x01, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44];
        let repr = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1280,
            header: quoted_tcp(),
            data: &ports,
        };
        let mut bytes = [0u8; 36];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(&bytes[4..8], &[0, 0, 0x05, 0x00]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let Icmpv4Repr::DstUnreachable {
            next_hop_mtu,
            header,
            data,
            ..
        } = Icmpv4Repr::parse(&packet, RxChecksum::Verify).unwrap()
        else {
            panic!("not an unreachable");
        };
        assert_eq!(next_hop_mtu, 1280);
        assert_eq!(header.payload_len, 1480);
        assert_eq!(header.protocol, IpProtocol::Tcp);
        assert_eq!(data, &ports);
    }

    #[test]
    fn time_exceeded_round_trips() {
        for reason in [TimeExceeded::TtlExpired, TimeExceeded::FragExpired] {
            let repr = Icmpv4Repr::TimeExceeded {
                reason,
                header: quoted_tcp(),
                data: &[1; 8],
            };
            let mut bytes = [0u8; 36];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                Icmpv4Repr::parse(&packet, RxChecksum::Verify).unwrap(),
                repr
            );
        }
    }

    #[test]
    fn rejects() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = ECHO;
        bad[8] = b'b';
        let packet = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, RxChecksum::Verify),
            Err(Error::Checksum)
        );
        let mut unknown = [13u8, 0, 0, 0, 0, 0, 0, 0]; // timestamp request
        Packet::new_unchecked(&mut unknown[..]).fill_checksum();
        let packet = Packet::new_checked(&unknown[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, RxChecksum::Verify),
            Err(Error::Unsupported)
        );
        // An unreachable quoting a truncated header.
        let mut short = [3u8, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 40];
        Packet::new_unchecked(&mut short[..]).fill_checksum();
        let packet = Packet::new_checked(&short[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet, RxChecksum::Verify),
            Err(Error::Truncated)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = Icmpv4Repr::parse(&packet, RxChecksum::Verify);
                let _ = Icmpv4Repr::parse(&packet, RxChecksum::Trusted);
            }
        }

        #[test]
        fn echo_round_trip(request in any::<bool>(), ident in any::<u16>(), seq_no in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let repr = if request {
                Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
            } else {
                Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
            };
            let mut bytes = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Icmpv4Repr::parse(&packet, RxChecksum::Verify).unwrap(), repr);
        }
    }
}
