//! The production driver: an AF_PACKET raw socket bound to one interface.
//!
//! The socket is created receiving nothing, given a classic BPF filter (IPv4 and ARP frames
//! addressed to our MAC or broadcast, and of the frames other senders on this host transmit
//! through the interface only their ARP), and only then bound, so no foreign frame is ever
//! queued. The kernel never hands a packet socket the frames it sent itself; the ARP of other
//! programs on the same interface (another rawtcp stack, the kernel) is what lets address
//! conflict detection (RFC 5227) see them, since they share the interface's MAC and their
//! frames never come back from the wire. Frames move in batches through recvmmsg/sendmmsg (or,
//! on request, a TPACKET_V3 receive ring or a TPACKET_V2 transmit ring: [`IoMethod`]). Each
//! received frame carries the kernel's checksum status from PACKET_AUXDATA: on a veth, frames
//! the peer kernel built arrive with unfinished checksums (`TP_STATUS_CSUMNOTREADY`), which a
//! stack must accept, not drop. With [`AfPacketConfig::vnet_hdr`] the socket speaks the
//! virtio-net header instead: GSO super-segments out, GRO-merged frames in.

use std::io;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll};
use std::time::Instant;

use rawtcp_wire::TxChecksum;
use rawtcp_wire::ethernet::{self, EthernetAddress};

use crate::batch::{ChecksumStatus, FrameBatch, FrameMeta};
use crate::readiness::FdIo;
use crate::sys::{self, MAX_BATCH, Received};
use crate::vnet::{self, VnetHeader};
use crate::{Capabilities, Device};

/// How frames cross the user/kernel boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMethod {
    /// recvmmsg/sendmmsg: up to 64 frames per syscall. The default until the frame ring
    /// measured faster: the receiving thread spends about three times the CPU per frame.
    Batched,
    /// One recvmsg/send per frame, for comparison.
    Single,
    /// Send through a PACKET_TX_RING (TPACKET_V2) shared with the kernel, one `send()` per
    /// batch; receive with recvmmsg. Not combinable with `vnet_hdr`. On veth it is slower
    /// than `Batched` (measured by the `afpacket` bench): the kernel still builds and copies
    /// one socket buffer per frame, and the ring adds a copy of its own.
    TxRing,
    /// Receive through a PACKET_RX_RING (TPACKET_V3, [`AfPacketConfig::rx_ring`]) shared with
    /// the kernel: it fills blocks of frames and hands each over whole, and frames are read
    /// without a syscall while blocks wait; send with sendmmsg.
    ///
    /// Not the default. It costs the receiving thread half or less of recvmmsg's CPU per
    /// frame (the `afpacket` bench), but the kernel wakes the reader only when a block is
    /// full or its retire timer fires, never per frame: a lone frame (a handshake, a
    /// request, an ACK) waits up to [`RxRingConfig::retire_timeout_ms`], which turns a
    /// 1-byte request/response from ~80 µs into ~1 ms. For a receive-mostly bulk load
    /// (capture, a sink) it is the cheaper choice.
    RxRing,
    /// Receive through a PACKET_RX_RING of [`AfPacketConfig::ring_frames`] frame slots
    /// (TPACKET_V2) shared with the kernel; send with sendmmsg. The default.
    ///
    /// The kernel copies each frame into a slot of its own and wakes the reader per frame,
    /// as for a plain socket, so a lone frame waits for nothing (unlike [`IoMethod::RxRing`]),
    /// and frames already in the ring are read without a syscall. The copy into the ring
    /// happens where the frame is delivered (on a veth, in the sender's syscall, on its
    /// CPU), not in the reader's receive syscall, and no socket buffer waits in a queue.
    /// Slots hold an MTU-sized frame with a VLAN tag; a longer one (a GRO super-frame of a
    /// peer kernel with offloads on) is also queued whole on the socket (PACKET_COPY_THRESH)
    /// and read from there in its turn with one more syscall.
    ///
    /// Why the default: the `afpacket` bench's receiving thread spends 731 ns per 1514-byte
    /// frame against recvmmsg's 2184, and against the kernel (`rawtcp-bench --compare kernel`)
    /// echo, proxy and bulk receive were as fast or faster (echo at 16 connections 1.0× the
    /// kernel application against 0.84–0.87×), `rr` the same. Its cost: the ring is mapped
    /// at once (16 MiB at MTU 1500), where a socket buffer takes memory only as frames wait.
    #[default]
    FrameRing,
}

/// The TPACKET_V3 receive ring of [`IoMethod::RxRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRingConfig {
    /// Bytes per block, a multiple of 4096. A frame must fit a block with its headers (a
    /// longer one is cut and dropped as truncated), so with `vnet_hdr` (GRO frames up to
    /// 64 KiB) it must exceed 64 KiB.
    pub block_size: usize,
    /// Blocks in the ring.
    pub block_count: usize,
    /// Milliseconds after which the kernel hands over a block that is not full yet (at
    /// least 1).
    pub retire_timeout_ms: u32,
}

impl Default for RxRingConfig {
    /// 64 blocks of 128 KiB: 8 MiB, as [`DEFAULT_RECV_BUFFER`]; a block is retired after
    /// 1 ms at the latest.
    fn default() -> RxRingConfig {
        RxRingConfig {
            block_size: 128 << 10,
            block_count: 64,
            retire_timeout_ms: 1,
        }
    }
}

/// The receive buffer an [`AfPacket`] asks for by default, bytes.
///
/// A bandwidth-delay product at 10 Gbit/s: 8 MiB is 6.7 ms of frames at that rate, time for
/// the driver to be busy sending (or the runtime busy elsewhere) without the kernel dropping
/// a frame. The kernel doubles the figure for its bookkeeping and charges each frame its
/// whole buffer (about 2.3 KB for a 1514-byte frame), so it holds some 7000 full frames.
/// The kernel's default (`net.core.rmem_default`, 208 KiB) holds fewer than a hundred, and
/// a kernel sender's window overruns it whenever the stack is busy.
pub const DEFAULT_RECV_BUFFER: usize = 8 << 20;

/// The frames an [`IoMethod::FrameRing`] holds by default: 8192, 16 MiB of slots at MTU 1500,
/// about as many full frames as the [`DEFAULT_RECV_BUFFER`] of recvmmsg holds (the kernel
/// doubles that figure and charges each frame some 2.3 KB of it).
pub const DEFAULT_RING_FRAMES: usize = 8192;

/// Options for [`AfPacket::open_with`].
#[derive(Debug, Clone)]
pub struct AfPacketConfig {
    /// Put the interface in promiscuous mode and accept frames for any destination MAC.
    pub promiscuous: bool,
    /// A MAC address of the stack's own, in place of the interface's: the socket accepts
    /// frames for it (and broadcasts), [`AfPacket::mac`] returns it, and it joins the
    /// interface's unicast address list (PACKET_MR_UNICAST) for the socket's life, so a NIC
    /// that filters by address delivers it (one without a unicast list goes promiscuous).
    ///
    /// Why: for frames addressed to the interface's own MAC the kernel of the namespace runs
    /// its IPv4 input on every one, beside the copy it hands us: it routes each towards an
    /// address it does not own and drops it (ip_route_input_slow, about 5 % of all CPU time
    /// in a 6 Gbit/s receive over veth, by `perf`). A frame for another address is marked
    /// PACKET_OTHERHOST, and IPv4 drops it at its first check. The kernel then also never
    /// answers ARP, ICMP or TCP on the stack's behalf, whatever addresses it has.
    /// `None` (the default) answers to the interface's MAC.
    pub mac: Option<EthernetAddress>,
    /// Use the virtio-net header (PACKET_VNET_HDR): TCP checksum offload and GSO on send,
    /// GRO-sized frames on receive.
    pub vnet_hdr: bool,
    /// Join this PACKET_FANOUT group (hash mode), for one engine per core.
    pub fanout: Option<u16>,
    /// The socket's receive buffer, bytes: set with SO_RCVBUFFORCE, or where that is not
    /// permitted (no CAP_NET_ADMIN) with SO_RCVBUF, which the kernel caps at
    /// `net.core.rmem_max`, and a logged warning. `None` keeps the kernel's default.
    /// [`DEFAULT_RECV_BUFFER`] by default.
    pub recv_buffer: Option<usize>,
    /// SO_SNDBUFFORCE, bytes.
    pub send_buffer: Option<usize>,
    /// Batched or single-frame syscalls, or a ring.
    pub io: IoMethod,
    /// The receive ring's shape, for [`IoMethod::RxRing`].
    pub rx_ring: RxRingConfig,
    /// Frames the receive ring of [`IoMethod::FrameRing`] holds, in slots of 2 KiB at MTU
    /// 1500. [`DEFAULT_RING_FRAMES`] by default.
    pub ring_frames: usize,
    /// Send straight to the driver, skipping the interface's queueing discipline
    /// (PACKET_QDISC_BYPASS). Faster, but traffic shaping no longer applies and other packet
    /// sockets on the interface (tcpdump) no longer see what we send.
    pub qdisc_bypass: bool,
}

impl Default for AfPacketConfig {
    fn default() -> AfPacketConfig {
        AfPacketConfig {
            promiscuous: false,
            mac: None,
            vnet_hdr: false,
            fanout: None,
            recv_buffer: Some(DEFAULT_RECV_BUFFER),
            send_buffer: None,
            io: IoMethod::default(),
            rx_ring: RxRingConfig::default(),
            ring_frames: DEFAULT_RING_FRAMES,
            qdisc_bypass: false,
        }
    }
}

/// Counters of an [`AfPacket`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames received and handed up.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Receive syscalls that returned frames.
    pub rx_syscalls: u64,
    /// Send syscalls made.
    pub tx_syscalls: u64,
    /// Received frames dropped: longer than a batch slot.
    pub rx_truncated: u64,
    /// Received frames dropped: outgoing frames of other senders on the interface, other than
    /// ARP, that got past the filter.
    pub rx_outgoing: u64,
    /// Received frames dropped: a virtio-net header this driver does not handle.
    pub rx_bad_vnet: u64,
    /// Frames the kernel dropped on the way out because the device's queue was full
    /// (ENOBUFS): lost under congestion, as a NIC's tx_dropped.
    pub tx_dropped: u64,
    /// Frames the kernel queued for this socket (PACKET_STATISTICS `tp_packets`, which counts
    /// the dropped ones too), as of the last [`AfPacket::refresh_kernel_stats`].
    pub rx_kernel_packets: u64,
    /// Frames the kernel dropped before this socket could read them, its receive buffer
    /// being full (PACKET_STATISTICS `tp_drops`; with [`IoMethod::RxRing`], no block free):
    /// the losses no other counter shows.
    pub rx_kernel_drops: u64,
    /// Times the kernel found every block of the receive ring in our hands and froze it
    /// (PACKET_STATISTICS `tp_freeze_q_cnt`, [`IoMethod::RxRing`] only).
    pub rx_kernel_freezes: u64,
}

/// An AF_PACKET socket bound to one interface.
///
/// # Examples
/// ```no_run
/// use rawtcp_netio::{AfPacket, Device, FrameBatch};
///
/// let mut device = AfPacket::open("eth0")?;
/// let mut batch = FrameBatch::new(64, device.capabilities().max_frame_len);
/// let received = device.recv(&mut batch)?;
/// println!("{received} frames from {}", device.mac());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AfPacket {
    // Declared first: the rings are unmapped before the socket closes.
    tx_ring: Option<sys::TxRing>,
    rx_ring: Option<RxRing>,
    io: FdIo<OwnedFd>,
    name: String,
    index: u32,
    mac: EthernetAddress,
    mtu: usize,
    config: AfPacketConfig,
    stats: AfPacketStats,
    /// Frames sit in the TX ring marked for sending but the last kick found the socket busy.
    ring_kick_pending: bool,
}

const ETH_P_ALL: u16 = 0x0003;

impl AfPacket {
    /// Opens interface `name` in the current network namespace with the default options.
    ///
    /// Errors: `PermissionDenied` without CAP_NET_RAW (checked first); `NotFound` for an
    /// unknown interface; `InvalidInput` for one without an Ethernet address.
    pub fn open(name: &str) -> io::Result<AfPacket> {
        Self::open_with(name, AfPacketConfig::default())
    }

    /// Opens interface `name` with `config`.
    pub fn open_with(name: &str, config: AfPacketConfig) -> io::Result<AfPacket> {
        let fd = sys::packet_socket().map_err(|error| match error.kind() {
            io::ErrorKind::PermissionDenied => io::Error::new(
                io::ErrorKind::PermissionDenied,
                "opening an AF_PACKET socket needs CAP_NET_RAW: run as root or grant the capability",
            ),
            _ => error,
        })?;
        let interface = pnet_datalink::interfaces()
            .into_iter()
            .find(|interface| interface.name == name)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no network interface named {name:?}"),
                )
            })?;
        let interface_mac = interface
            .mac
            .map(|mac| EthernetAddress(mac.octets()))
            .filter(EthernetAddress::is_unicast)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("interface {name:?} has no Ethernet address"),
                )
            })?;
        let mac = match config.mac {
            Some(own) if !own.is_unicast() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{own} is not a unicast address"),
                ));
            }
            Some(own) => own,
            None => interface_mac,
        };
        let mtu = sys::interface_mtu(&fd, name)? as usize;
        // Not PACKET_IGNORE_OUTGOING: it would hide the ARP of other senders on this
        // interface too. Our own transmissions never come back (the kernel skips the sending
        // socket, and every socket of its fanout group); the filter drops others' IPv4.
        sys::attach_filter(&fd, &frame_filter(mac, config.promiscuous))?;
        if config.vnet_hdr {
            sys::set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
        } else {
            sys::set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        }
        let tx_ring = match config.io {
            IoMethod::TxRing if config.vnet_hdr => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a TX ring cannot be combined with vnet_hdr",
                ));
            }
            IoMethod::TxRing => {
                // At most 256 slots and about 4 MiB of ring.
                let frame_len = mtu + ethernet::HEADER_LEN;
                let slots = (4 << 20) / frame_len.next_multiple_of(4096);
                Some(sys::TxRing::new(&fd, frame_len, slots.clamp(16, 256))?)
            }
            _ => None,
        };
        let rx_ring = match config.io {
            IoMethod::RxRing => Some(RxRing::Blocks(sys::RxRing::new(
                &fd,
                config.rx_ring.block_size,
                config.rx_ring.block_count,
                config.rx_ring.retire_timeout_ms,
                config.vnet_hdr,
            )?)),
            IoMethod::FrameRing => Some(RxRing::Frames(sys::RxFrameRing::new(
                &fd,
                // An MTU-sized frame with a VLAN tag (the kernel strips it mostly).
                mtu + ethernet::HEADER_LEN + 4,
                config.ring_frames,
                config.vnet_hdr,
            )?)),
            _ => None,
        };
        if config.qdisc_bypass {
            sys::set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)?;
        }
        if let Some(bytes) = config.recv_buffer {
            set_recv_buffer(&fd, name, bytes)?;
        }
        if let Some(bytes) = config.send_buffer {
            sys::set_int_option(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, clamp(bytes))?;
        }
        sys::bind_packet(&fd, interface.index, ETH_P_ALL)?;
        if config.promiscuous {
            sys::add_promiscuous(&fd, interface.index)?;
        }
        if mac != interface_mac {
            sys::add_unicast(&fd, interface.index, mac)?;
        }
        if let Some(group) = config.fanout {
            let value = i32::from(group) | ((libc::PACKET_FANOUT_HASH as i32) << 16);
            sys::set_int_option(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, value)?;
        }
        Ok(AfPacket {
            tx_ring,
            rx_ring,
            io: FdIo::new(fd),
            name: name.to_string(),
            index: interface.index,
            mac,
            mtu,
            config,
            stats: AfPacketStats::default(),
            ring_kick_pending: false,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The MAC address frames for this device carry: [`AfPacketConfig::mac`] if given, else
    /// the interface's.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Counters since opening.
    pub fn stats(&self) -> AfPacketStats {
        self.stats
    }

    /// Reads the kernel's receive counters (PACKET_STATISTICS) into
    /// [`AfPacketStats::rx_kernel_packets`] and [`AfPacketStats::rx_kernel_drops`]. The kernel
    /// resets them on each read, so they are summed here.
    pub fn refresh_kernel_stats(&mut self) -> io::Result<()> {
        let counted = sys::packet_statistics(self.io.get_ref())?;
        self.stats.rx_kernel_packets += u64::from(counted.tp_packets);
        self.stats.rx_kernel_drops += u64::from(counted.tp_drops);
        self.stats.rx_kernel_freezes += u64::from(counted.tp_freeze_q_cnt);
        Ok(())
    }

    /// Copies the frames of the ring's blocks in our hands into the batch's free slots,
    /// returning blocks to the kernel as they empty: the frames kept, or `None` when no
    /// block was ready.
    fn recv_ring(&mut self, batch: &mut FrameBatch) -> io::Result<Option<usize>> {
        let offset = self.recv_offset();
        let Some(ring) = self.rx_ring.as_mut() else {
            return Ok(None);
        };
        let vnet_hdr = self.config.vnet_hdr;
        let stats = &mut self.stats;
        let now = Instant::now();
        let max_len = batch.max_frame_len();
        let mut kept = 0;
        let handed = self.io.read_with(|fd| {
            let handed = ring.drain(batch.free(), |frame| {
                if frame.copied {
                    // Too long for its slot: the socket holds it whole, next in its queue. It
                    // is read even to be dropped, so that the queue stays in step with the ring.
                    if recv_whole(fd, batch, offset, vnet_hdr, frame.pkttype, now, stats) {
                        kept += 1;
                    }
                    return;
                }
                let ethertype = frame
                    .data
                    .get(ethernet::HEADER_LEN - 2..ethernet::HEADER_LEN);
                if others_outgoing(frame.pkttype, ethertype) {
                    stats.rx_outgoing += 1;
                    return;
                }
                if frame.data.len() < frame.len || frame.data.len() > max_len {
                    stats.rx_truncated += 1;
                    return;
                }
                let Some(meta) = frame_meta(
                    now,
                    frame.vlan_tci,
                    vnet_hdr,
                    frame.vnet,
                    Some(frame.status),
                    stats,
                ) else {
                    return;
                };
                // One copy out of the ring, which goes back to the kernel: into the slot's
                // head when the frame fits it.
                if batch.push_received(frame.data, meta) {
                    kept += 1;
                }
            });
            if handed == 0 {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            } else {
                Ok(handed)
            }
        })?;
        if handed.is_none() {
            return Ok(None);
        }
        stats.rx_frames += kept as u64;
        Ok(Some(kept))
    }

    /// Frames one receive or send syscall moves at most: one with [`IoMethod::Single`].
    fn frames_per_call(&self) -> usize {
        if self.config.io == IoMethod::Single {
            1
        } else {
            MAX_BATCH
        }
    }

    /// Where in a slot the kernel writes: the frame itself starts at the headroom's end.
    fn recv_offset(&self) -> usize {
        if self.config.vnet_hdr {
            FrameBatch::HEADROOM - vnet::LEN
        } else {
            FrameBatch::HEADROOM
        }
    }

    /// One receive syscall into the batch's free slots (there must be one): the frames kept,
    /// or `None` when the socket was empty.
    fn recv_into(&mut self, batch: &mut FrameBatch) -> io::Result<Option<usize>> {
        let want = batch.free().min(self.frames_per_call());
        debug_assert!(want > 0, "recv_into needs a free slot");
        let offset = self.recv_offset();
        let mut received = [Received::default(); MAX_BATCH];
        let got = {
            let mut slots: Vec<_> = batch.recv_slots(want, offset).collect();
            let single = self.config.io == IoMethod::Single;
            self.io.read_with(|fd| {
                if single {
                    sys::recv_one(fd, &mut slots[0], &mut received[0])
                } else {
                    sys::recv_batch(fd, &mut slots, &mut received)
                }
            })?
        };
        let Some(got) = got else {
            return Ok(None);
        };
        self.stats.rx_syscalls += 1;
        let now = Instant::now();
        let first = batch.next_free();
        let mut kept = 0;
        for (i, frame) in received[..got].iter().enumerate() {
            // The slot's head holds at least the headers (it is never shorter than 64 bytes).
            let head = batch.received_head(first + i);
            let Some((frame_len, meta)) = received_frame(
                head,
                frame,
                offset,
                self.config.vnet_hdr,
                now,
                &mut self.stats,
            ) else {
                continue;
            };
            // A dropped frame leaves a hole: move later frames down so slots stay in order.
            if kept != i {
                batch.move_received(first + i, first + kept, offset + frame.len);
            }
            batch.commit(FrameBatch::HEADROOM, frame_len, meta);
            kept += 1;
        }
        self.stats.rx_frames += kept as u64;
        Ok(Some(kept))
    }

    /// Writes the virtio-net header in front of each queued frame.
    fn prepare_vnet(&self, batch: &mut FrameBatch, count: usize) -> io::Result<()> {
        for index in 0..count {
            let meta = *batch.meta(index);
            let partial = match meta.tx_checksum {
                TxChecksum::Full => None,
                TxChecksum::Partial | TxChecksum::Offloaded => {
                    Some(tcp_checksum_position(batch.frame(index))?)
                }
            };
            VnetHeader::emit(batch.headroom_mut(index, vnet::LEN), partial, meta.gso);
        }
        Ok(())
    }

    /// Sends through the TX ring: copy as many frames as there are free slots, one kick.
    fn send_ring(&mut self, batch: &mut FrameBatch) -> io::Result<Progress> {
        let ring = self.tx_ring.as_mut().expect("a TX ring in TxRing mode");
        if let Some(index) = (0..batch.len())
            .find(|&i| batch.meta(i).gso.is_some() || batch.meta(i).tx_checksum != TxChecksum::Full)
        {
            batch.consume(index + 1);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "checksum offload and GSO need an AfPacket opened with vnet_hdr",
            ));
        }
        let mut queued = 0;
        while queued < batch.len() && ring.push(batch.frame(queued)) {
            queued += 1;
        }
        // Frames in the ring belong to the kernel now: they count as sent.
        batch.consume(queued);
        self.stats.tx_frames += queued as u64;
        self.kick_ring()?;
        // Nothing queued means a full ring: the caller waits for POLLOUT (a slot freed).
        Ok(Progress {
            sent: queued,
            dropped: 0,
        })
    }

    /// Asks the kernel to send what the ring holds; remembers to ask again if it could not.
    fn kick_ring(&mut self) -> io::Result<()> {
        let Some(ring) = &self.tx_ring else {
            return Ok(());
        };
        self.stats.tx_syscalls += 1;
        self.ring_kick_pending = self.io.write_with(|fd| ring.flush(fd))?.is_none();
        Ok(())
    }

    fn send_from(&mut self, batch: &mut FrameBatch) -> io::Result<Progress> {
        if self.tx_ring.is_some() {
            return self.send_ring(batch);
        }
        let count = batch.len().min(self.frames_per_call());
        if count == 0 {
            return Ok(Progress {
                sent: 0,
                dropped: 0,
            });
        }
        if self.config.vnet_hdr {
            self.prepare_vnet(batch, count)?;
        } else if let Some(index) = (0..count)
            .find(|&i| batch.meta(i).gso.is_some() || batch.meta(i).tx_checksum != TxChecksum::Full)
        {
            batch.consume(index + 1);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "checksum offload and GSO need an AfPacket opened with vnet_hdr",
            ));
        }
        let headroom = if self.config.vnet_hdr { vnet::LEN } else { 0 };
        let frames: Vec<&[u8]> = (0..count)
            .map(|i| batch.frame_with_headroom(i, headroom))
            .collect();
        let single = self.config.io == IoMethod::Single;
        let result = self.io.write_with(|fd| {
            if single {
                sys::send_one(fd, frames[0])
            } else {
                sys::send_batch(fd, &frames)
            }
        });
        self.stats.tx_syscalls += 1;
        match result {
            // The socket buffer is full: wait for room (poll_send_ready).
            Ok(None) => Ok(Progress {
                sent: 0,
                dropped: 0,
            }),
            Ok(Some(sent)) => {
                batch.consume(sent);
                self.stats.tx_frames += sent as u64;
                Ok(Progress { sent, dropped: 0 })
            }
            Err(error) if error.raw_os_error() == Some(libc::ENOBUFS) => {
                // The device queue dropped the first frame (the rest were not tried): loss
                // under congestion, which the transport recovers from. Move on.
                batch.consume(1);
                self.stats.tx_dropped += 1;
                Ok(Progress {
                    sent: 0,
                    dropped: 1,
                })
            }
            Err(error) => {
                // The first frame was refused (e.g. EMSGSIZE): drop it so the queue moves on.
                batch.consume(1);
                Err(error)
            }
        }
    }
}

/// The frame a receive syscall wrote into a batch slot's head (from `offset` on, its
/// virtio-net header first with `vnet_hdr`): its length and what it came with, or `None`
/// when it is dropped (and counted in `stats`).
fn received_frame(
    head: &[u8],
    frame: &Received,
    offset: usize,
    vnet_hdr: bool,
    now: Instant,
    stats: &mut AfPacketStats,
) -> Option<(usize, FrameMeta)> {
    let vnet_len = if vnet_hdr { vnet::LEN } else { 0 };
    let ethertype_at = offset + vnet_len + ethernet::HEADER_LEN - 2;
    if others_outgoing(frame.pkttype, head.get(ethertype_at..ethertype_at + 2)) {
        stats.rx_outgoing += 1;
        return None;
    }
    if frame.truncated {
        stats.rx_truncated += 1;
        return None;
    }
    let vnet = head
        .get(offset..offset + vnet::LEN)
        .filter(|_| vnet_hdr && frame.len >= vnet::LEN);
    let meta = frame_meta(now, frame.vlan_tci, vnet_hdr, vnet, frame.status, stats)?;
    Some((frame.len - vnet_len, meta))
}

/// Another sender's frame on this interface (outgoing, by `pkttype`), other than ARP (by its
/// `ethertype` bytes): only ARP of theirs concerns us.
fn others_outgoing(pkttype: u8, ethertype: Option<&[u8]>) -> bool {
    pkttype == libc::PACKET_OUTGOING && ethertype != Some(&[0x08, 0x06][..])
}

/// What a received frame came with: with `vnet_hdr`, the checksum status and GSO of its
/// virtio-net header (`vnet`; `None`, or one this driver does not handle, drops the frame,
/// counted in `stats`); else the checksum status in the kernel's tp_status.
fn frame_meta(
    now: Instant,
    vlan_tci: Option<u16>,
    vnet_hdr: bool,
    vnet: Option<&[u8]>,
    status: Option<u32>,
    stats: &mut AfPacketStats,
) -> Option<FrameMeta> {
    let mut meta = FrameMeta::new(now);
    meta.vlan_tci = vlan_tci;
    if vnet_hdr {
        let header = vnet
            .and_then(|bytes| <&[u8; vnet::LEN]>::try_from(bytes).ok())
            .and_then(VnetHeader::parse);
        let Some(header) = header else {
            stats.rx_bad_vnet += 1;
            return None;
        };
        meta.checksum = header.checksum;
        meta.gso = header.gso;
    } else {
        meta.checksum = checksum_status(status);
    }
    Some(meta)
}

/// Reads the frame a frame ring could not hold from the socket's queue, where the kernel
/// put it whole (TP_STATUS_COPY), into the batch's next free slot; whether it was kept. The
/// queued copy lost its address: `pkttype` is the one the ring's slot recorded.
fn recv_whole(
    fd: &OwnedFd,
    batch: &mut FrameBatch,
    offset: usize,
    vnet_hdr: bool,
    pkttype: u8,
    now: Instant,
    stats: &mut AfPacketStats,
) -> bool {
    // The ring hands over no more frames than the batch has free slots.
    debug_assert!(batch.free() > 0, "a slot for the frame");
    if batch.free() == 0 {
        stats.rx_truncated += 1;
        return false;
    }
    let mut received = Received::default();
    let got = {
        let mut slots: Vec<_> = batch.recv_slots(1, offset).collect();
        sys::recv_one(fd, &mut slots[0], &mut received)
    };
    stats.rx_syscalls += 1;
    if !matches!(got, Ok(1)) {
        // The kernel found no room to queue it after all (its receive buffer was full).
        stats.rx_truncated += 1;
        return false;
    }
    received.pkttype = pkttype;
    let head = batch.received_head(batch.next_free());
    match received_frame(head, &received, offset, vnet_hdr, now, stats) {
        Some((frame_len, meta)) => {
            batch.commit(FrameBatch::HEADROOM, frame_len, meta);
            true
        }
        None => false,
    }
}

/// A receive ring of either kind.
#[derive(Debug)]
enum RxRing {
    /// TPACKET_V3 ([`IoMethod::RxRing`]).
    Blocks(sys::RxRing),
    /// TPACKET_V2 ([`IoMethod::FrameRing`]).
    Frames(sys::RxFrameRing),
}

impl RxRing {
    fn has_frames(&self) -> bool {
        match self {
            RxRing::Blocks(ring) => ring.has_frames(),
            RxRing::Frames(ring) => ring.has_frames(),
        }
    }

    fn drain(&mut self, max: usize, take: impl FnMut(sys::RingFrame<'_>)) -> usize {
        match self {
            RxRing::Blocks(ring) => ring.drain(max, take),
            RxRing::Frames(ring) => ring.drain(max, take),
        }
    }
}

/// What one send syscall did.
struct Progress {
    sent: usize,
    dropped: usize,
}

/// Sets the receive buffer to `bytes`: beyond `rmem_max` where permitted (SO_RCVBUFFORCE),
/// else as far as `rmem_max` allows, with a warning that frames may be dropped.
fn set_recv_buffer(fd: &OwnedFd, name: &str, bytes: usize) -> io::Result<()> {
    match sys::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, clamp(bytes)) {
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => {
            sys::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, clamp(bytes))?;
            // The kernel reports twice what it grants (its bookkeeping share included).
            let granted = sys::get_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)? / 2;
            if (granted as usize) < bytes {
                tracing::warn!(
                    interface = name,
                    wanted = bytes,
                    granted,
                    "no CAP_NET_ADMIN to raise the AF_PACKET receive buffer past \
                     net.core.rmem_max: the kernel will drop frames under load"
                );
            }
            Ok(())
        }
        result => result,
    }
}

/// What the kernel's tp_status (PACKET_AUXDATA, or a ring frame's header) says of a
/// received frame's checksum.
fn checksum_status(status: Option<u32>) -> ChecksumStatus {
    match status {
        Some(status) if status & libc::TP_STATUS_CSUMNOTREADY != 0 => ChecksumStatus::Partial,
        Some(status) if status & libc::TP_STATUS_CSUM_VALID != 0 => ChecksumStatus::Valid,
        _ => ChecksumStatus::Unverified,
    }
}

fn clamp(bytes: usize) -> libc::c_int {
    bytes.min(libc::c_int::MAX as usize) as libc::c_int
}

/// Where a partial TCP checksum starts (the TCP header) and where its field sits within it.
fn tcp_checksum_position(frame: &[u8]) -> io::Result<(u16, u16)> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "checksum offload needs a TCP/IPv4 frame",
        )
    };
    let ihl = frame.get(ethernet::HEADER_LEN).ok_or_else(invalid)? & 0x0f;
    if frame.get(ethernet::HEADER_LEN + 9) != Some(&6) {
        return Err(invalid());
    }
    Ok(((ethernet::HEADER_LEN + usize::from(ihl) * 4) as u16, 16))
}

impl Device for AfPacket {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.mtu,
            max_frame_len: if self.config.vnet_hdr {
                65_536 + ethernet::HEADER_LEN
            } else {
                self.mtu + ethernet::HEADER_LEN
            },
            tx_checksum_offload: self.config.vnet_hdr,
            gso: self.config.vnet_hdr,
            shared_link: true,
        }
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        if self.rx_ring.is_some() {
            // Until no block is in our hands or the batch is full; readiness as below.
            return Ok(self.recv_ring(batch)?.unwrap_or(0));
        }
        let mut total = 0;
        // Until the socket is empty or the batch is full. A full batch leaves the socket's
        // readiness as it is, so the driver's next poll_recv_ready is ready at once.
        while batch.free() > 0 {
            match self.recv_into(batch)? {
                Some(kept) => total += kept,
                None => break,
            }
        }
        Ok(total)
    }

    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        if self.ring_kick_pending {
            self.kick_ring()?;
        }
        let mut total = 0;
        while !batch.is_empty() {
            let progress = self.send_from(batch)?;
            total += progress.sent;
            if progress.sent == 0 && progress.dropped == 0 {
                break;
            }
        }
        Ok(total)
    }

    fn poll_recv_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_read(cx)
    }

    fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write(cx)
    }

    fn recv_pending(&self) -> Option<bool> {
        match &self.rx_ring {
            Some(ring) => Some(ring.has_frames()),
            None => sys::readable_now(self.io.get_ref()).ok(),
        }
    }

    fn rx_dropped(&mut self) -> Option<u64> {
        self.refresh_kernel_stats().ok()?;
        Some(self.stats.rx_kernel_drops)
    }
}

/// The classic BPF program: keep ARP, and IPv4 unless it is outgoing (another sender's on
/// this interface); of those, keep frames for `mac` or broadcast (any destination when
/// promiscuous).
fn frame_filter(mac: EthernetAddress, promiscuous: bool) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const PKTTYPE: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;
    const KEEP: u32 = 0x40000;
    let load_word = |k| libc::sock_filter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k,
    };
    let load_half = |k| libc::sock_filter {
        code: LD_H_ABS,
        jt: 0,
        jf: 0,
        k,
    };
    let ret = |k| libc::sock_filter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k,
    };
    // A jump at `at` to absolute targets: classic BPF offsets count from the next instruction.
    let jeq = |at: u8, k: u32, on_true: u8, on_false: u8| libc::sock_filter {
        code: JEQ_K,
        jt: on_true - at - 1,
        jf: on_false - at - 1,
        k,
    };
    let outgoing = u32::from(libc::PACKET_OUTGOING);
    if promiscuous {
        const ACCEPT: u8 = 5;
        const DROP: u8 = 6;
        return vec![
            load_half(12),                  // 0: EtherType
            jeq(1, 0x0806, ACCEPT, 2),      // 1: ARP, whoever sent it
            jeq(2, 0x0800, 3, DROP),        // 2: IPv4
            load_word(PKTTYPE),             // 3
            jeq(4, outgoing, DROP, ACCEPT), // 4: not another sender's
            ret(KEEP),                      // 5
            ret(0),                         // 6
        ];
    }
    const ACCEPT: u8 = 12;
    const DROP: u8 = 13;
    let m = mac.0;
    let mac_low = u32::from_be_bytes([m[2], m[3], m[4], m[5]]);
    let mac_high = u32::from(u16::from_be_bytes([m[0], m[1]]));
    vec![
        load_half(12),                  // 0: EtherType
        jeq(1, 0x0806, 5, 2),           // 1: ARP, whoever sent it
        jeq(2, 0x0800, 3, DROP),        // 2: IPv4
        load_word(PKTTYPE),             // 3
        jeq(4, outgoing, DROP, 5),      // 4: not another sender's
        load_word(2),                   // 5: destination MAC, low four bytes
        jeq(6, mac_low, 7, 9),          // 6
        load_half(0),                   // 7: destination MAC, high two bytes
        jeq(8, mac_high, ACCEPT, DROP), // 8
        jeq(9, 0xffff_ffff, 10, DROP),  // 9: broadcast, low four bytes (still loaded)
        load_half(0),                   // 10
        jeq(11, 0xffff, ACCEPT, DROP),  // 11
        ret(KEEP),                      // 12
        ret(0),                         // 13
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the filter uses, so the filter's
    /// logic is tested without a socket.
    fn run(program: &[libc::sock_filter], frame: &[u8], pkttype: u8) -> bool {
        let mut a: u32 = 0;
        let mut pc = 0;
        loop {
            let ins = program[pc];
            pc += 1;
            match ins.code {
                0x20 if ins.k == (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32 => {
                    a = u32::from(pkttype)
                }
                0x20 => {
                    let k = ins.k as usize;
                    a = u32::from_be_bytes([frame[k], frame[k + 1], frame[k + 2], frame[k + 3]]);
                }
                0x28 => {
                    let k = ins.k as usize;
                    a = u32::from(u16::from_be_bytes([frame[k], frame[k + 1]]));
                }
                0x15 => pc += usize::from(if a == ins.k { ins.jt } else { ins.jf }),
                0x06 => return ins.k != 0,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn frame(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn filter_keeps_ours_and_broadcast_only() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let program = frame_filter(mac, false);
        const HOST: u8 = 0;
        assert!(run(&program, &frame(mac.0, 0x0800), HOST));
        assert!(run(&program, &frame(mac.0, 0x0806), HOST));
        assert!(run(&program, &frame([0xff; 6], 0x0806), 1));
        assert!(!run(&program, &frame(mac.0, 0x86dd), HOST));
        assert!(!run(&program, &frame([2, 0, 0, 0, 0, 2], 0x0800), HOST));
        assert!(!run(&program, &frame([3, 0, 0, 0, 0, 1], 0x0800), HOST));
        assert!(!run(
            &program,
            &frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 0x0806),
            1
        ));
        // Another sender's frames on this interface: its ARP (for us or broadcast) only.
        assert!(run(
            &program,
            &frame([0xff; 6], 0x0806),
            libc::PACKET_OUTGOING
        ));
        assert!(run(&program, &frame(mac.0, 0x0806), libc::PACKET_OUTGOING));
        assert!(!run(&program, &frame(mac.0, 0x0800), libc::PACKET_OUTGOING));
        assert!(!run(
            &program,
            &frame([2, 0, 0, 0, 0, 2], 0x0806),
            libc::PACKET_OUTGOING
        ));
        let promiscuous = frame_filter(mac, true);
        assert!(run(&promiscuous, &frame([2, 0, 0, 0, 0, 2], 0x0800), 3));
        assert!(!run(&promiscuous, &frame([2, 0, 0, 0, 0, 2], 0x86dd), 3));
        assert!(!run(
            &promiscuous,
            &frame(mac.0, 0x0800),
            libc::PACKET_OUTGOING
        ));
        assert!(run(
            &promiscuous,
            &frame([2, 0, 0, 0, 0, 2], 0x0806),
            libc::PACKET_OUTGOING
        ));
    }
}
