//! A whole received frame, parsed from Ethernet down to the TCP options in one call.
//!
//! For printing a conversation, for captures and for the fuzz target; the engine parses
//! layer by layer itself so that it can act between layers. A non-first IPv4 fragment, or a
//! first one with More Fragments set, is not parsed past IPv4: its transport header may be
//! incomplete until reassembly.

use core::fmt;

use crate::arp::{self, ArpRepr};
use crate::ethernet::{EtherType, EthernetRepr, Frame};
use crate::icmpv4::{self, Icmpv4Repr};
use crate::ipv4::{self, IpProtocol, Ipv4Repr};
use crate::tcp::{self, TcpRepr};
use crate::{Result, RxChecksum};

/// A parsed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dissection<'a> {
    /// The Ethernet header.
    pub ethernet: EthernetRepr,
    /// What the frame carries.
    pub network: Network<'a>,
}

/// The network layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    /// An ARP packet.
    Arp(ArpRepr),
    /// An IPv4 datagram.
    Ipv4 {
        /// Its header.
        header: Ipv4Repr<'a>,
        /// Its payload.
        transport: Transport<'a>,
    },
    /// Another EtherType, unparsed.
    Other(&'a [u8]),
}

/// The transport layer of an IPv4 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// An ICMP message.
    Icmp(Icmpv4Repr<'a>),
    /// A fragment, left for reassembly.
    Fragment(&'a [u8]),
    /// Another protocol, unparsed.
    Other(&'a [u8]),
}

/// Parses a whole Ethernet frame, verifying checksums as `checksum` says.
///
/// # Examples
/// ```
/// use rawtcp_wire::{RxChecksum, dissect};
/// let garbage = [0u8; 10];
/// assert!(dissect::dissect(&garbage, RxChecksum::Verify).is_err());
/// ```
pub fn dissect(bytes: &[u8], checksum: RxChecksum) -> Result<Dissection<'_>> {
    let frame = Frame::new_checked(bytes)?;
    let ethernet = EthernetRepr::parse(&frame)?;
    let payload = frame.payload();
    let network = match ethernet.ethertype {
        EtherType::Arp => Network::Arp(ArpRepr::parse(&arp::Packet::new_checked(payload)?)?),
        EtherType::Ipv4 => {
            let packet = ipv4::Packet::new_checked(payload)?;
            let header = Ipv4Repr::parse(&packet, checksum)?;
            let data = packet.payload();
            let transport = if header.more_frags || header.frag_offset != 0 {
                Transport::Fragment(data)
            } else {
                match header.protocol {
                    IpProtocol::Tcp => Transport::Tcp(TcpRepr::parse(
                        &tcp::Packet::new_checked(data)?,
                        header.src_addr,
                        header.dst_addr,
                        checksum,
                    )?),
                    IpProtocol::Icmp => Transport::Icmp(Icmpv4Repr::parse(
                        &icmpv4::Packet::new_checked(data)?,
                        checksum,
                    )?),
                    _ => Transport::Other(data),
                }
            };
            Network::Ipv4 { header, transport }
        }
        _ => Network::Other(payload),
    };
    Ok(Dissection { ethernet, network })
}

/// One line per layer.
impl fmt::Display for Dissection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.ethernet)?;
        match &self.network {
            Network::Arp(arp) => write!(f, "  {arp}"),
            Network::Ipv4 { header, transport } => {
                writeln!(f, "  {header}")?;
                match transport {
                    Transport::Tcp(tcp) => write!(f, "    {tcp}"),
                    Transport::Icmp(icmp) => write!(f, "    {icmp}"),
                    Transport::Fragment(data) => write!(f, "    fragment, {} bytes", data.len()),
                    Transport::Other(data) => write!(f, "    {} bytes", data.len()),
                }
            }
            Network::Other(data) => write!(f, "  {} bytes", data.len()),
        }
    }
}
