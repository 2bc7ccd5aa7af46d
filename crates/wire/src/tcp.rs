//! TCP headers and options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 7413).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-------------------------------+-------------------------------+
//! |          Source Port          |       Destination Port        |
//! +-------------------------------+-------------------------------+
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! +-------+-----+-+-+-+-+-+-+-+-+-+-------------------------------+
//! |  Data | Rsv |N|C|E|U|A|P|R|S|F|                               |
//! | Offset|     |S|W|C|R|C|S|S|Y|I|            Window             |
//! +-------+-----+-+-+-+-+-+-+-+-+-+-------------------------------+
//! |           Checksum            |         Urgent Pointer        |
//! +-------------------------------+-------------------------------+
//! |                    Options (data offset − 5 words)            |
//! ```
//! [`Packet::new_checked`] validates the data offset; [`TcpRepr::parse`] validates the
//! options and the checksum over the IPv4 pseudo-header. Option parsing follows RFC 9293
//! §3.2: unknown kinds are skipped by their length, end-of-list stops the scan, and a length
//! of 0 or 1, a length wrong for a known kind, or one overrunning the options area is an
//! error (MUST-64: handle an illegal option length without crashing).

use core::fmt;
use core::net::Ipv4Addr;

use crate::ipv4::IpProtocol;
use crate::{Error, Result, RxChecksum, SeqNum, TxChecksum, checksum};

/// The nine TCP control bits.
///
/// # Examples
/// ```
/// use rawtcp_wire::tcp::TcpFlags;
/// let flags = TcpFlags::SYN | TcpFlags::ACK;
/// assert!(flags.contains(TcpFlags::SYN));
/// assert_eq!(flags.to_string(), "S.");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// ECN nonce (RFC 3540, historic).
    pub const NS: TcpFlags = TcpFlags(0x100);
    /// No flags.
    pub const EMPTY: TcpFlags = TcpFlags(0);

    const ALL: u16 = 0x1ff;

    /// The flags from the low nine bits of `bits`; other bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> TcpFlags {
        TcpFlags(bits & Self::ALL)
    }

    /// The nine bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: TcpFlags, value: bool) {
        if value {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }

    /// FIN is set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// SYN is set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// RST is set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// PSH is set.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// ACK is set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// URG is set.
    pub const fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    /// ECE is set.
    pub const fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    /// CWR is set.
    pub const fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
    /// NS is set.
    pub const fn ns(self) -> bool {
        self.contains(Self::NS)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// tcpdump's notation: `S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK, `U` URG, `E` ECE,
/// `W` CWR, `N` NS; `none` when empty.
impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(TcpFlags, char); 9] = [
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::NS, 'N'),
            (TcpFlags::ACK, '.'),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (flag, letter) in LETTERS {
            if self.contains(flag) {
                fmt::Write::write_char(f, letter)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

mod field {
    use core::ops::Range;
    pub(crate) const SRC_PORT: Range<usize> = 0..2;
    pub(crate) const DST_PORT: Range<usize> = 2..4;
    pub(crate) const SEQ_NUM: Range<usize> = 4..8;
    pub(crate) const ACK_NUM: Range<usize> = 8..12;
    pub(crate) const OFFSET_FLAGS: Range<usize> = 12..14;
    pub(crate) const WINDOW: Range<usize> = 14..16;
    pub(crate) const CHECKSUM: Range<usize> = 16..18;
    pub(crate) const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Longest TCP header: data offset 15.
pub const MAX_HEADER_LEN: usize = 60;
/// Most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// A zero-copy view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer holding exactly one segment (the IPv4 payload), checking the data
    /// offset.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that accessors will not panic: the fixed header is present
    /// ([`Error::Truncated`]), the data offset is at least 5
    /// ([`Error::DataOffsetTooSmall`]) and the header fits ([`Error::HeaderLenPastBuffer`]).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::DataOffsetTooSmall);
        }
        if header_len > len {
            return Err(Error::HeaderLenPastBuffer);
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

    fn u32_at(&self, at: core::ops::Range<usize>) -> u32 {
        let b = &self.buffer.as_ref()[at];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum::new(self.u32_at(field::SEQ_NUM))
    }

    /// Acknowledgment number, as written whether or not ACK is set.
    pub fn ack_number(&self) -> SeqNum {
        SeqNum::new(self.u32_at(field::ACK_NUM))
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFFSET_FLAGS.start] >> 4) * 4
    }

    /// The three reserved bits between the data offset and NS.
    pub fn reserved(&self) -> u8 {
        (self.buffer.as_ref()[field::OFFSET_FLAGS.start] >> 1) & 0x07
    }

    /// The control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(self.u16_at(field::OFFSET_FLAGS))
    }

    /// Window, unscaled.
    pub fn window_len(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }

    /// Checksum as written.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_pointer(&self) -> u16 {
        self.u16_at(field::URGENT)
    }

    /// The raw option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// Whether the checksum over the IPv4 pseudo-header and the whole buffer is correct.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        let segment = self.buffer.as_ref();
        let Ok(len) = u16::try_from(segment.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::Tcp.into(), len);
        checksum::combine(&[pseudo, checksum::data(segment)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// An iterator over the options, with the lifetime of the buffer.
    pub fn options_iter(&self) -> OptionsIter<'a> {
        OptionsIter {
            rest: &self.buffer.as_ref()[HEADER_LEN..self.header_len()],
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, at: core::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[at].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        self.set_u16_at(field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        self.set_u16_at(field::DST_PORT, value);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: SeqNum) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&value.raw().to_be_bytes());
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: SeqNum) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&value.raw().to_be_bytes());
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60) and the flags, clearing the
    /// reserved bits.
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: TcpFlags) {
        let raw = ((header_len as u16 / 4) << 12) | flags.bits();
        self.set_u16_at(field::OFFSET_FLAGS, raw);
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, value: u16) {
        self.set_u16_at(field::WINDOW, value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, value: u16) {
        self.set_u16_at(field::URGENT, value);
    }

    /// The option bytes, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Writes the checksum field over the pseudo-header and the whole buffer, as `mode` says.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr, mode: TxChecksum) {
        // The segment length fits: an IPv4 payload is below 65536 bytes.
        let len = self.buffer.as_ref().len() as u16;
        let pseudo = checksum::pseudo_header_v4(src_addr, dst_addr, IpProtocol::Tcp.into(), len);
        let value = match mode {
            TxChecksum::Full => {
                self.set_checksum(0);
                checksum::finish(checksum::combine(&[
                    pseudo,
                    checksum::data(self.buffer.as_ref()),
                ]))
            }
            TxChecksum::Partial => pseudo,
            TxChecksum::Offloaded => 0,
        };
        self.set_checksum(value);
    }
}

/// Up to four SACK blocks (RFC 2018 §3), each `[left, right)`.
#[derive(Clone, Copy, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// Most blocks an option can hold.
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> SackBlocks {
        SackBlocks {
            blocks: [(SeqNum::new(0), SeqNum::new(0)); 4],
            len: 0,
        }
    }

    /// Appends a block; false (and nothing added) when four are there already.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        let Some(slot) = self.blocks.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = (left, right);
        self.len += 1;
        true
    }

    /// Keeps the first `len` blocks.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len as u8);
    }

    /// The blocks.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..usize::from(self.len)]
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Equal when the blocks in use are; slots past `len` do not count.
impl PartialEq for SackBlocks {
    fn eq(&self, other: &SackBlocks) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The timestamps option (RFC 7323 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    /// The sender's clock.
    pub tsval: u32,
    /// The TSval echoed back, meaningful when ACK is set.
    pub tsecr: u32,
}

/// Option kinds.
pub mod kind {
    /// End of option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
    /// TCP Fast Open cookie (RFC 7413).
    pub const TFO_COOKIE: u8 = 34;
}

/// Longest TFO cookie (RFC 7413 §4.1.1).
pub const TFO_COOKIE_MAX: usize = 16;
/// Shortest non-empty TFO cookie.
pub const TFO_COOKIE_MIN: usize = 4;

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// Kind 0: end of the list.
    EndOfList,
    /// Kind 1: padding.
    NoOperation,
    /// Kind 2: the largest segment the sender can receive.
    MaxSegmentSize(u16),
    /// Kind 3: the window shift count (RFC 7323 §2).
    WindowScale(u8),
    /// Kind 4: SACK may be used (RFC 2018 §2).
    SackPermitted,
    /// Kind 5: selective acknowledgment blocks.
    Sack(SackBlocks),
    /// Kind 8: timestamps.
    Timestamps(Timestamps),
    /// Kind 34: a Fast Open cookie, or a request for one when empty.
    TfoCookie(&'a [u8]),
    /// Any other kind, skipped by its length.
    Unknown {
        /// The kind.
        kind: u8,
        /// Its data after kind and length.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Reads one option from the front of `buffer`, returning it and the rest.
    pub fn parse(buffer: &'a [u8]) -> Result<(TcpOption<'a>, &'a [u8])> {
        let (&kind, after_kind) = buffer.split_first().ok_or(Error::Truncated)?;
        match kind {
            kind::END => return Ok((TcpOption::EndOfList, &[])),
            kind::NOP => return Ok((TcpOption::NoOperation, after_kind)),
            _ => {}
        }
        let &len = after_kind.first().ok_or(Error::OptionOverrun)?;
        let len = usize::from(len);
        if len < 2 {
            return Err(Error::OptionLen);
        }
        if len > buffer.len() {
            return Err(Error::OptionOverrun);
        }
        let data = &buffer[2..len];
        let rest = &buffer[len..];
        let u16_of = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let u32_of = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let option = match (kind, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(u16_of(data)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, _) if len >= 10 && (len - 2) % 8 == 0 && len <= 34 => {
                let mut blocks = SackBlocks::new();
                for block in data.chunks_exact(8) {
                    blocks.push(
                        SeqNum::new(u32_of(&block[..4])),
                        SeqNum::new(u32_of(&block[4..])),
                    );
                }
                TcpOption::Sack(blocks)
            }
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps(Timestamps {
                tsval: u32_of(&data[..4]),
                tsecr: u32_of(&data[4..]),
            }),
            (kind::TFO_COOKIE, _)
                if data.is_empty() || (TFO_COOKIE_MIN..=TFO_COOKIE_MAX).contains(&data.len()) =>
            {
                TcpOption::TfoCookie(data)
            }
            (
                kind::MSS
                | kind::WINDOW_SCALE
                | kind::SACK_PERMITTED
                | kind::SACK
                | kind::TIMESTAMPS
                | kind::TFO_COOKIE,
                _,
            ) => {
                return Err(Error::OptionLen);
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Ok((option, rest))
    }

    /// The bytes this option takes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(blocks) => 2 + 8 * blocks.len(),
            TcpOption::Timestamps(_) => 10,
            TcpOption::TfoCookie(cookie) => 2 + cookie.len(),
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the front of `buffer` and returns the rest.
    pub fn emit<'b>(&self, buffer: &'b mut [u8]) -> &'b mut [u8] {
        let len = self.buffer_len();
        let (out, rest) = buffer.split_at_mut(len);
        match self {
            TcpOption::EndOfList => out[0] = kind::END,
            TcpOption::NoOperation => out[0] = kind::NOP,
            _ => {
                out[1] = len as u8;
                match self {
                    TcpOption::MaxSegmentSize(mss) => {
                        out[0] = kind::MSS;
                        out[2..4].copy_from_slice(&mss.to_be_bytes());
                    }
                    TcpOption::WindowScale(shift) => {
                        out[0] = kind::WINDOW_SCALE;
                        out[2] = *shift;
                    }
                    TcpOption::SackPermitted => out[0] = kind::SACK_PERMITTED,
                    TcpOption::Sack(blocks) => {
                        out[0] = kind::SACK;
                        for (chunk, (left, right)) in
                            out[2..].chunks_exact_mut(8).zip(blocks.as_slice())
                        {
                            chunk[..4].copy_from_slice(&left.raw().to_be_bytes());
                            chunk[4..].copy_from_slice(&right.raw().to_be_bytes());
                        }
                    }
                    TcpOption::Timestamps(ts) => {
                        out[0] = kind::TIMESTAMPS;
                        out[2..6].copy_from_slice(&ts.tsval.to_be_bytes());
                        out[6..10].copy_from_slice(&ts.tsecr.to_be_bytes());
                    }
                    TcpOption::TfoCookie(cookie) => {
                        out[0] = kind::TFO_COOKIE;
                        out[2..].copy_from_slice(cookie);
                    }
                    TcpOption::Unknown { kind, data } => {
                        out[0] = *kind;
                        out[2..].copy_from_slice(data);
                    }
                    TcpOption::EndOfList | TcpOption::NoOperation => {}
                }
            }
        }
        rest
    }
}

/// Iterates over the options of a header; stops after an error or at end-of-list.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionsIter<'a> {
    /// Iterates over raw option bytes.
    pub fn new(options: &'a [u8]) -> OptionsIter<'a> {
        OptionsIter { rest: options }
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((option, rest)) => {
                self.rest = rest;
                Some(Ok(option))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// The options of one segment that TCP acts on, gathered from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions<'a> {
    /// MSS (SYN only).
    pub max_seg_size: Option<u16>,
    /// Window shift count (SYN only).
    pub window_scale: Option<u8>,
    /// SACK-permitted (SYN only).
    pub sack_permitted: bool,
    /// SACK blocks.
    pub sack_blocks: SackBlocks,
    /// Timestamps.
    pub timestamps: Option<Timestamps>,
    /// TFO cookie; `Some(&[])` requests one.
    pub tfo_cookie: Option<&'a [u8]>,
}

impl<'a> TcpOptions<'a> {
    /// Gathers options from raw bytes; a later duplicate overrides an earlier one and unknown
    /// kinds are skipped.
    pub fn parse(options: &'a [u8]) -> Result<TcpOptions<'a>> {
        let mut parsed = TcpOptions::default();
        // RFC 7323 Appendix A: the layout every Linux data segment uses, NOP NOP TS,
        // recognised in one comparison before the general scan.
        if let [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10, tsval @ ..] = options
            && let [a, b, c, d, e, f, g, h] = *tsval
        {
            parsed.timestamps = Some(Timestamps {
                tsval: u32::from_be_bytes([a, b, c, d]),
                tsecr: u32::from_be_bytes([e, f, g, h]),
            });
            return Ok(parsed);
        }
        for option in OptionsIter::new(options) {
            match option? {
                TcpOption::MaxSegmentSize(mss) => parsed.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => parsed.window_scale = Some(shift),
                TcpOption::SackPermitted => parsed.sack_permitted = true,
                TcpOption::Sack(blocks) => parsed.sack_blocks = blocks,
                TcpOption::Timestamps(ts) => parsed.timestamps = Some(ts),
                TcpOption::TfoCookie(cookie) => parsed.tfo_cookie = Some(cookie),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(parsed)
    }

    /// How many SACK blocks fit beside the other options in 40 bytes.
    fn sack_blocks_that_fit(&self) -> usize {
        let others = self.len_without_sack();
        let room = MAX_OPTIONS_LEN.saturating_sub(others + 4) / 8;
        self.sack_blocks.len().min(room)
    }

    fn len_without_sack(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4;
        }
        len += match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            len += 4;
        }
        if let Some(cookie) = self.tfo_cookie {
            len += (2 + cookie.len()).div_ceil(4) * 4;
        }
        len
    }

    /// The option bytes `emit` writes, a multiple of 4.
    ///
    /// SACK blocks that do not fit in 40 bytes beside the other options are left out, the
    /// last ones first (RFC 2018 §3: the first block reports the most recent data).
    pub fn buffer_len(&self) -> usize {
        let sack = self.sack_blocks_that_fit();
        self.len_without_sack() + if sack > 0 { 4 + 8 * sack } else { 0 }
    }

    /// Writes the options in the order and padding Linux uses (MSS; SACK-permitted with
    /// timestamps; NOP, window scale; NOP, NOP, SACK; Fast Open), NOP-padded to 4-byte
    /// boundaries. `buffer` must be [`buffer_len`](Self::buffer_len) bytes long.
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut out = buffer;
        if let Some(mss) = self.max_seg_size {
            out = TcpOption::MaxSegmentSize(mss).emit(out);
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(ts)) => {
                out = TcpOption::SackPermitted.emit(out);
                out = TcpOption::Timestamps(ts).emit(out);
            }
            (false, Some(ts)) => {
                out = TcpOption::NoOperation.emit(out);
                out = TcpOption::NoOperation.emit(out);
                out = TcpOption::Timestamps(ts).emit(out);
            }
            (true, None) => {
                out = TcpOption::NoOperation.emit(out);
                out = TcpOption::NoOperation.emit(out);
                out = TcpOption::SackPermitted.emit(out);
            }
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            out = TcpOption::NoOperation.emit(out);
            out = TcpOption::WindowScale(shift).emit(out);
        }
        let sack = self.sack_blocks_that_fit();
        if sack > 0 {
            let mut blocks = self.sack_blocks;
            blocks.truncate(sack);
            out = TcpOption::NoOperation.emit(out);
            out = TcpOption::NoOperation.emit(out);
            out = TcpOption::Sack(blocks).emit(out);
        }
        if let Some(cookie) = self.tfo_cookie {
            let option = TcpOption::TfoCookie(cookie);
            for _ in option.buffer_len()..option.buffer_len().div_ceil(4) * 4 {
                out = TcpOption::NoOperation.emit(out);
            }
            out = option.emit(out);
        }
        out.fill(kind::END);
    }
}

/// A TCP segment header with its options and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first byte (of the SYN, if set).
    pub seq_number: SeqNum,
    /// Acknowledgment number, significant when [`TcpFlags::ACK`] is set; 0 otherwise.
    pub ack_number: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window, unscaled, as on the wire.
    pub window_len: u16,
    /// Urgent pointer, significant when [`TcpFlags::URG`] is set.
    pub urgent_pointer: u16,
    /// Options.
    pub options: TcpOptions<'a>,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Reads a segment: data offset ([`Packet::check_len`]); zero ports
    /// ([`Error::Malformed`]); the checksum over the IPv4 pseudo-header unless trusted
    /// ([`Error::Checksum`]); the options ([`TcpOption::parse`]'s errors). The acknowledgment
    /// number is kept as written.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: RxChecksum,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if packet.src_port() == 0 || packet.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if checksum == RxChecksum::Verify && !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum);
        }
        let options = TcpOptions::parse(&packet.buffer.as_ref()[HEADER_LEN..packet.header_len()])?;
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_pointer(),
            options,
            payload: packet.payload(),
        })
    }

    /// Header length with options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Header plus payload: the buffer `emit` fills.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space the segment occupies: payload, plus one each for SYN and FIN
    /// (RFC 9293 §3.4).
    pub fn segment_len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }

    /// Writes the header and options, leaving the payload bytes as they are, then the
    /// checksum over the whole buffer as `checksum` says. For callers that wrote the payload
    /// in place; `packet` must be exactly `header_len() + payload length` bytes.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: TxChecksum,
    ) {
        self.write_header(packet, self.header_len());
        packet.fill_checksum(src_addr, dst_addr, checksum);
    }

    /// Writes the whole segment, payload included; `packet` must be exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: TxChecksum,
    ) {
        let header_len = self.header_len();
        packet.buffer.as_mut()[header_len..].copy_from_slice(self.payload);
        self.write_header(packet, header_len);
        packet.fill_checksum(src_addr, dst_addr, checksum);
    }

    fn write_header<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        header_len: usize,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len_and_flags(header_len, self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_pointer(self.urgent_pointer);
        self.options
            .emit(&mut packet.buffer.as_mut()[HEADER_LEN..header_len]);
    }
}

/// tcpdump-like: `49152 > 80 [S] seq 1000 win 64240 len 0 <mss 1460,sackOK,TS 1:0,wscale 7>`.
impl fmt::Display for TcpRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP {} > {} [{}] seq {}",
            self.src_port, self.dst_port, self.flags, self.seq_number
        )?;
        if self.flags.ack() {
            write!(f, " ack {}", self.ack_number)?;
        }
        write!(f, " win {} len {}", self.window_len, self.payload.len())?;
        let o = &self.options;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            let s = if first { " <" } else { "," };
            first = false;
            f.write_str(s)
        };
        if let Some(mss) = o.max_seg_size {
            sep(f)?;
            write!(f, "mss {mss}")?;
        }
        if o.sack_permitted {
            sep(f)?;
            f.write_str("sackOK")?;
        }
        if let Some(ts) = o.timestamps {
            sep(f)?;
            write!(f, "TS val {} ecr {}", ts.tsval, ts.tsecr)?;
        }
        if let Some(shift) = o.window_scale {
            sep(f)?;
            write!(f, "wscale {shift}")?;
        }
        for (left, right) in o.sack_blocks.as_slice() {
            sep(f)?;
            write!(f, "sack {left}:{right}")?;
        }
        if let Some(cookie) = o.tfo_cookie {
            sep(f)?;
            write!(f, "tfo cookie len {}", cookie.len())?;
        }
        if !first {
            f.write_str(">")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

    fn segment_with_options(options: &[u8]) -> Vec<u8> {
        let mut bytes = std::vec![0u8; HEADER_LEN + options.len()];
        bytes[0..4].copy_from_slice(&[0xc0, 0x00, 0x1f, 0x90]);
        bytes[12] = (((HEADER_LEN + options.len()) / 4) as u8) << 4;
        bytes[13] = 0x02;
        bytes[HEADER_LEN..].copy_from_slice(options);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(SRC, DST, TxChecksum::Full);
        bytes
    }

    fn parse(bytes: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(&Packet::new_checked(bytes)?, SRC, DST, RxChecksum::Verify)
    }

    #[test]
    fn data_offset_errors() {
        let good = segment_with_options(&[]);
        assert_eq!(parse(&good[..19]).unwrap_err(), Error::Truncated);
        let mut small = good.clone();
        small[12] = 4 << 4;
        assert_eq!(
            Packet::new_checked(&small[..]).unwrap_err(),
            Error::DataOffsetTooSmall
        );
        let mut past = good.clone();
        past[12] = 6 << 4;
        assert_eq!(
            Packet::new_checked(&past[..]).unwrap_err(),
            Error::HeaderLenPastBuffer
        );
        let mut zero_port = good.clone();
        zero_port[2..4].copy_from_slice(&[0, 0]);
        Packet::new_unchecked(&mut zero_port[..]).fill_checksum(SRC, DST, TxChecksum::Full);
        assert_eq!(parse(&zero_port).unwrap_err(), Error::Malformed);
        let mut corrupt = good;
        corrupt[5] ^= 0x10;
        assert_eq!(parse(&corrupt).unwrap_err(), Error::Checksum);
    }

    #[test]
    fn option_length_zero_one_and_overrun() {
        // An unknown kind with length 0, then 1.
        assert_eq!(
            parse(&segment_with_options(&[30, 0, 1, 1])).unwrap_err(),
            Error::OptionLen
        );
        assert_eq!(
            parse(&segment_with_options(&[30, 1, 1, 1])).unwrap_err(),
            Error::OptionLen
        );
        // MSS claiming 8 bytes in a 4-byte area.
        assert_eq!(
            parse(&segment_with_options(&[2, 8, 5, 0xb4])).unwrap_err(),
            Error::OptionOverrun
        );
        // A kind with no room for its length byte.
        assert_eq!(
            parse(&segment_with_options(&[1, 1, 1, 2])).unwrap_err(),
            Error::OptionOverrun
        );
        // A known kind with the wrong length for it.
        assert_eq!(
            parse(&segment_with_options(&[2, 3, 5, 1])).unwrap_err(),
            Error::OptionLen
        );
        assert_eq!(
            parse(&segment_with_options(&[3, 4, 7, 0])).unwrap_err(),
            Error::OptionLen
        );
        assert_eq!(
            parse(&segment_with_options(&[5, 6, 0, 0, 0, 0, 0, 0])).unwrap_err(),
            Error::OptionLen
        );
        assert_eq!(
            parse(&segment_with_options(&[34, 3, 0, 1])).unwrap_err(),
            Error::OptionLen
        );
    }

    #[test]
    fn unknown_options_skipped_and_end_of_list_stops() {
        // Unknown kind 30 of length 4, MSS, EOL, then garbage that must not be read.
        let bytes = segment_with_options(&[30, 4, 9, 9, 2, 4, 5, 0xb4, 0, 0xff, 0xff, 0xff]);
        let repr = parse(&bytes).unwrap();
        assert_eq!(repr.options.max_seg_size, Some(1460));
        let collected: Vec<_> = OptionsIter::new(&[30, 4, 9, 9, 1, 0, 7]).collect();
        assert_eq!(
            collected,
            [
                Ok(TcpOption::Unknown {
                    kind: 30,
                    data: &[9, 9]
                }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::EndOfList),
            ]
        );
    }

    #[test]
    fn sack_one_to_four_blocks_and_tfo() {
        for n in 1..=4u32 {
            let mut blocks = SackBlocks::new();
            for i in 0..n {
                assert!(blocks.push(SeqNum::new(1000 * i), SeqNum::new(1000 * i + 500)));
            }
            let option = TcpOption::Sack(blocks);
            let mut bytes = [0u8; 34];
            let len = option.buffer_len();
            assert_eq!(len, 2 + 8 * n as usize);
            option.emit(&mut bytes[..len]);
            assert_eq!(TcpOption::parse(&bytes[..len]).unwrap(), (option, &[][..]));
        }
        let mut full = SackBlocks::new();
        for _ in 0..4 {
            full.push(SeqNum::new(1), SeqNum::new(2));
        }
        assert!(!full.push(SeqNum::new(3), SeqNum::new(4)));
        let cookie = [0xab; 8];
        let mut bytes = [0u8; 10];
        TcpOption::TfoCookie(&cookie).emit(&mut bytes);
        assert_eq!(
            TcpOption::parse(&bytes).unwrap().0,
            TcpOption::TfoCookie(&cookie)
        );
        assert_eq!(
            TcpOption::parse(&[34, 2]).unwrap().0,
            TcpOption::TfoCookie(&[])
        );
    }

    #[test]
    fn sack_blocks_beyond_40_bytes_are_dropped() {
        let mut blocks = SackBlocks::new();
        for i in 0..4 {
            blocks.push(SeqNum::new(i), SeqNum::new(i + 1));
        }
        let options = TcpOptions {
            timestamps: Some(Timestamps { tsval: 1, tsecr: 2 }),
            sack_blocks: blocks,
            ..TcpOptions::default()
        };
        // 12 for timestamps, 4 + 3 × 8 for three blocks; the fourth does not fit.
        assert_eq!(options.buffer_len(), 40);
        let mut bytes = [0u8; 40];
        options.emit(&mut bytes);
        let parsed = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(parsed.sack_blocks.as_slice(), &blocks.as_slice()[..3]);
    }

    /// MSS, window scale, SACK-permitted, SACK blocks, timestamps, TFO cookie.
    type ArbOptions = (
        Option<u16>,
        Option<u8>,
        bool,
        Vec<(u32, u32)>,
        Option<(u32, u32)>,
        Option<Vec<u8>>,
    );

    fn arb_options() -> impl Strategy<Value = ArbOptions> {
        (
            any::<Option<u16>>(),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
            any::<Option<(u32, u32)>>(),
            proptest::option::of(prop_oneof![
                Just(Vec::new()),
                proptest::collection::vec(any::<u8>(), 4..=16)
            ]),
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = (packet.payload(), packet.options(), packet.flags(), packet.verify_checksum(SRC, DST));
                let _ = TcpRepr::parse(&packet, SRC, DST, RxChecksum::Verify);
                if let Ok(repr) = TcpRepr::parse(&packet, SRC, DST, RxChecksum::Trusted) {
                    let _ = std::format!("{repr}");
                }
                for option in packet.options_iter() {
                    let _ = option;
                }
            }
        }

        #[test]
        fn arbitrary_option_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = TcpOptions::parse(&bytes);
        }

        #[test]
        fn round_trip(
            ports in (1u16.., 1u16..), seq in any::<u32>(), ack in any::<u32>(), flags in 0u16..0x200,
            window in any::<u16>(), urgent in any::<u16>(), opts in arb_options(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (mss, ws, sack_perm, sack, ts, cookie) = opts;
            let mut sack_blocks = SackBlocks::new();
            for (l, r) in sack {
                sack_blocks.push(SeqNum::new(l), SeqNum::new(r));
            }
            let options = TcpOptions {
                max_seg_size: mss,
                window_scale: ws,
                sack_permitted: sack_perm,
                sack_blocks,
                timestamps: ts.map(|(tsval, tsecr)| Timestamps { tsval, tsecr }),
                tfo_cookie: cookie.as_deref(),
            };
            let repr = TcpRepr {
                src_port: ports.0, dst_port: ports.1, seq_number: SeqNum::new(seq), ack_number: SeqNum::new(ack),
                flags: TcpFlags::from_bits_truncate(flags), window_len: window, urgent_pointer: urgent,
                options, payload: &payload,
            };
            prop_assert!(repr.header_len() <= MAX_HEADER_LEN);
            prop_assert_eq!(repr.header_len() % 4, 0);
            let mut bytes = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, TxChecksum::Full);
            let parsed = TcpRepr::parse(&Packet::new_checked(&bytes[..]).unwrap(), SRC, DST, RxChecksum::Verify).unwrap();
            let mut expected = repr;
            expected.options.sack_blocks.truncate(repr.options.sack_blocks_that_fit());
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn partial_checksum_completes_to_full(payload in proptest::collection::vec(any::<u8>(), 0..64), seq in any::<u32>()) {
            let repr = TcpRepr {
                src_port: 1, dst_port: 2, seq_number: SeqNum::new(seq), ack_number: SeqNum::new(0),
                flags: TcpFlags::ACK, window_len: 1, urgent_pointer: 0, options: TcpOptions::default(), payload: &payload,
            };
            let mut bytes = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, TxChecksum::Partial);
            // What a device does with CHECKSUM_PARTIAL: sum from the TCP header on, the
            // pseudo-header sum already in the field, and write the complement.
            let completed = checksum::finish(checksum::data(&bytes));
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_checksum(completed);
            prop_assert!(packet.verify_checksum(SRC, DST));
        }
    }
}
