//! rawtcp-netio: devices that move Ethernet frames in and out of the stack.
//!
//! Every device implements [`Device`]: it moves whole [`FrameBatch`]es, so that one syscall
//! can carry many frames, and the engine writes outgoing frames in place in the batch's slots.
//! Received frames land in a small buffer per slot and leave as [`bytes::Bytes`]
//! ([`FrameBatch::take_frame`]) that the engine may keep without a copy; each pins only its
//! own buffer, which the batch takes back once nobody holds it.
//! Received frames come with a [`FrameMeta`]: a timestamp and the kernel's checksum status,
//! so the stack neither drops frames whose checksum the local kernel has not finished nor
//! verifies twice what the kernel already verified.
//!
//! * [`AfPacket`]: the production driver, an AF_PACKET raw socket on one interface
//!   (CAP_NET_RAW), batched with recvmmsg/sendmmsg, optionally with virtio-net headers for
//!   GSO/GRO and with PACKET_FANOUT.
//! * [`Tap`]: a TAP device (IFF_TAP | IFF_NO_PI).
//! * [`MemLink`]: two connected in-memory ends with seeded fault injection (rawtcp-core's
//!   [`link`](rawtcp_core::link) model, the same the engine's simulation uses); no privileges.
//! * [`forward::Forwarder`]: not a device but a bridge between two interfaces with the
//!   same fault model, for a lossy path between real hosts (`tc netem` in userspace).
//! * [`Pcap`]: wraps any device and writes a libpcap capture, or keeps a flight recorder.
//!
//! Readiness comes from tokio (`AsyncFd`, timers): call [`Device::poll_recv_ready`] and
//! [`Device::poll_send_ready`] from a task. `recv` and `send` themselves never block.
//! All `unsafe` code lives in the private `sys` module.
#![deny(unsafe_code)]

use std::io;
use std::task::{Context, Poll};

mod afpacket;
mod batch;
pub mod forward;
mod inspect;
mod memlink;
pub mod netns;
mod pcap;
mod readiness;
mod sys;
mod tap;
pub mod testbed;
pub mod vnet;

pub use afpacket::{
    AfPacket, AfPacketConfig, AfPacketStats, DEFAULT_RECV_BUFFER, DEFAULT_RING_FRAMES, IoMethod,
    RxRingConfig,
};
pub use batch::{ChecksumStatus, FrameBatch, FrameMeta, Gso};
pub use inspect::{Flow, Inspect};
pub use memlink::{MemLink, MemLinkCounters, MemLinkEnd};
pub use pcap::{FlightRecorder, Pcap, PcapWriter};
pub use tap::Tap;

/// What a device can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The IP MTU: the largest IPv4 datagram in one frame.
    pub mtu: usize,
    /// The largest frame `send` accepts and `recv` may return (a GSO/GRO super-segment can be
    /// larger than the MTU).
    pub max_frame_len: usize,
    /// `send` accepts frames whose TCP checksum is [`rawtcp_wire::TxChecksum::Partial`].
    pub tx_checksum_offload: bool,
    /// `send` accepts TCP super-segments with [`FrameMeta::gso`] set.
    pub gso: bool,
    /// Other hosts may be on the link (an Ethernet, a bridge, a veth, the kernel behind a
    /// TAP), so a stack should probe its address before using it (RFC 5227). False for an
    /// in-memory link, whose two ends the program made itself.
    pub shared_link: bool,
}

/// A device that moves Ethernet frames in batches.
///
/// `recv` and `send` never block; the `poll_*_ready` methods wait (from a tokio task) until
/// calling them again can make progress.
pub trait Device {
    /// What the device can do.
    fn capabilities(&self) -> Capabilities;

    /// Appends the frames that have arrived to `batch`, up to its free slots, and returns how
    /// many; 0 when none is waiting.
    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize>;

    /// Sends the frames queued in `batch`, front first, removing each one sent, and returns
    /// how many; fewer than queued when the device is full (wait with `poll_send_ready`). A
    /// frame the device refuses is removed and its error returned; one the kernel drops for
    /// congestion (a full device queue) is removed and counted, as a NIC counts tx drops.
    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize>;

    /// Ready when `recv` may find frames.
    fn poll_recv_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Ready when `send` may accept frames.
    fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Whether frames are waiting that `recv` would return, asked of the kernel directly
    /// (not of the cached readiness); `None` when the device cannot tell.
    ///
    /// A watchdog for lost wakeups: the driver asks before it sleeps, and frames still
    /// waiting after a grace period in which `poll_recv_ready` stayed pending mean a
    /// readiness edge was lost.
    fn recv_pending(&self) -> Option<bool> {
        None
    }

    /// Frames lost on receive before `recv` could take them (a full kernel socket queue),
    /// since the device was opened; `None` when the device cannot tell. May make a syscall.
    fn rx_dropped(&mut self) -> Option<u64> {
        None
    }
}
