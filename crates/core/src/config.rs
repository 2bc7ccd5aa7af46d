//! Configuration of a [`Stack`](crate::Stack): addresses, limits, timers and the seed.

use core::time::Duration;
use std::net::Ipv4Addr;

use rawtcp_wire::SeqNum;
use rawtcp_wire::ethernet::EthernetAddress;

/// An IPv4 address with the prefix length of its subnet.
///
/// # Examples
/// ```
/// use rawtcp_core::Ipv4Cidr;
/// use std::net::Ipv4Addr;
///
/// let cidr = Ipv4Cidr::new(Ipv4Addr::new(10, 9, 0, 2), 24);
/// assert!(cidr.contains(Ipv4Addr::new(10, 9, 0, 200)));
/// assert_eq!(cidr.broadcast(), Ipv4Addr::new(10, 9, 0, 255));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    /// The address.
    pub address: Ipv4Addr,
    /// Bits of network prefix, 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; a prefix over 32 is taken as 32.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Ipv4Cidr {
        Ipv4Cidr {
            address,
            prefix_len: if prefix_len > 32 { 32 } else { prefix_len },
        }
    }

    fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix_len))
        }
    }

    /// Whether `address` is on this subnet (reachable without the gateway).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        (u32::from(address) ^ u32::from(self.address)) & self.mask() == 0
    }

    /// The subnet's directed broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !self.mask())
    }
}

/// ARP (RFC 826) behaviour.
#[derive(Debug, Clone)]
pub struct ArpConfig {
    /// How long a learned mapping is used before it must be learned again.
    pub cache_ttl: Duration,
    /// Most mappings kept; the one expiring first is evicted.
    pub cache_capacity: usize,
    /// Time between requests for an unresolved address.
    pub request_interval: Duration,
    /// Requests sent before the address is declared unreachable and its queue dropped.
    pub max_requests: u8,
    /// Datagrams held per unresolved address.
    pub queue_per_neighbor: usize,
    /// Addresses being resolved at once (each with its queue). A datagram for one more
    /// unresolved address is dropped ([`DropReason::NeighborResolutionLimit`]), so a flood
    /// of packets from (or to) random on-link addresses cannot grow the table without bound.
    /// Linux bounds its neighbour table with `gc_thresh3` (1024 entries); 256 by default.
    ///
    /// [`DropReason::NeighborResolutionLimit`]: crate::DropReason::NeighborResolutionLimit
    pub max_resolving: usize,
}

impl Default for ArpConfig {
    fn default() -> ArpConfig {
        ArpConfig {
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 1024,
            request_interval: Duration::from_secs(1),
            max_requests: 3,
            queue_per_neighbor: 8,
            max_resolving: 256,
        }
    }
}

/// IPv4 address conflict detection (RFC 5227): probe the address before using it, announce
/// it, and defend it afterwards. The defaults are the RFC's constants (§1.1); tests shorten
/// them, or run them on a virtual clock.
///
/// With the defaults, claiming an address takes 4 to 7 s: a random wait of up to
/// `probe_wait`, three probes `probe_min`..`probe_max` apart, then `announce_wait` of silence.
///
/// # Examples
/// ```
/// use rawtcp_core::ConflictDetection;
/// use std::time::Duration;
///
/// let quick = ConflictDetection::scaled(Duration::from_millis(20));
/// assert!(quick.enabled);
/// assert_eq!(quick.probe_max, Duration::from_millis(40));
/// assert!(!ConflictDetection::default().enabled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictDetection {
    /// Probe before use. Off by default in the engine; the facade turns it on for devices
    /// on a link other hosts may share (AF_PACKET, TAP).
    pub enabled: bool,
    /// PROBE_WAIT: the first probe goes out after a random delay up to this.
    pub probe_wait: Duration,
    /// PROBE_NUM: probes sent.
    pub probe_num: u8,
    /// PROBE_MIN: least time between probes.
    pub probe_min: Duration,
    /// PROBE_MAX: most time between probes.
    pub probe_max: Duration,
    /// ANNOUNCE_WAIT: silence after the last probe before the address is ours.
    pub announce_wait: Duration,
    /// ANNOUNCE_NUM: announcements sent once the address is ours.
    pub announce_num: u8,
    /// ANNOUNCE_INTERVAL: time between announcements.
    pub announce_interval: Duration,
    /// DEFEND_INTERVAL: at most one defensive announcement per this interval (§2.4).
    pub defend_interval: Duration,
}

impl ConflictDetection {
    /// Detection on, with every RFC 5227 delay scaled so that one second becomes `second`:
    /// the same sequence, shorter (the RFC's own §2.2 allows shorter delays where a link
    /// warrants them). Tests on real links use it to keep starts quick.
    pub fn scaled(second: Duration) -> ConflictDetection {
        ConflictDetection {
            enabled: true,
            probe_wait: second,
            probe_num: 3,
            probe_min: second,
            probe_max: second * 2,
            announce_wait: second * 2,
            announce_num: 2,
            announce_interval: second * 2,
            defend_interval: second * 10,
        }
    }
}

impl Default for ConflictDetection {
    /// Off, with RFC 5227's constants.
    fn default() -> ConflictDetection {
        ConflictDetection {
            enabled: false,
            ..ConflictDetection::scaled(Duration::from_secs(1))
        }
    }
}

/// IPv4 fragment reassembly (RFC 791, RFC 815) limits.
#[derive(Debug, Clone)]
pub struct ReassemblyConfig {
    /// A datagram not complete this long after its first fragment is dropped.
    pub timeout: Duration,
    /// Datagrams reassembled at once.
    pub max_datagrams: usize,
    /// Bytes held across all datagrams being reassembled.
    pub max_bytes: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> ReassemblyConfig {
        ReassemblyConfig {
            timeout: Duration::from_secs(30),
            max_datagrams: 16,
            max_bytes: 256 * 1024,
        }
    }
}

/// TCP keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub probes: u32,
}

impl Default for Keepalive {
    /// 2 hours idle, a probe every 75 s, 10 probes.
    fn default() -> Keepalive {
        Keepalive {
            idle: Duration::from_secs(2 * 3600),
            interval: Duration::from_secs(75),
            probes: 10,
        }
    }
}

/// TCP behaviour; the defaults are the issue's and Linux's.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Send buffer per connection, bytes.
    pub send_buffer: usize,
    /// Receive buffer per connection, bytes (the most we advertise), to begin with.
    pub recv_buffer: usize,
    /// Receive-buffer autotuning (Linux's `tcp_moderate_rcvbuf` with `tcp_rmem[2]`): the
    /// buffer grows, once a round trip, to twice what the application read in it, up to
    /// this many bytes; the window scale offered in the SYN is chosen for it. No larger than
    /// `recv_buffer` (the default): off, and the window scale stays that of `recv_buffer`.
    pub recv_buffer_max: usize,
    /// Out-of-order ranges held per connection (a segment that would open one more hole is
    /// dropped; the sender retransmits it).
    pub max_out_of_order: usize,
    /// Out-of-order bytes held per connection, 4 MiB by default (the receive window bounds
    /// them too: with the default 256 KiB buffer the window binds first). A segment that
    /// would take the store above it is dropped and counted in
    /// [`ConnectionStats::out_of_order_dropped`](crate::ConnectionStats::out_of_order_dropped)
    /// and [`DropReason::OutOfOrderLimit`](crate::DropReason::OutOfOrderLimit).
    pub max_out_of_order_bytes: usize,
    /// Initial retransmission timeout (RFC 6298 §2.1: 1 s).
    pub rto_initial: Duration,
    /// Lower bound of the RTO.
    pub rto_min: Duration,
    /// Upper bound of the RTO.
    pub rto_max: Duration,
    /// Retransmissions of data before the connection times out.
    pub max_retransmits: u32,
    /// SYN retransmissions before a connect times out (5: after 1, 2, 4, 8, 16 s, then 32 s).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a half-open connection is dropped.
    pub synack_retries: u32,
    /// Longest an ACK is delayed (RFC 9293 §3.8.6.3: under 0.5 s; Linux's 40 ms).
    pub delayed_ack: Duration,
    /// Nagle's algorithm for new connections (RFC 9293 §3.7.4); `false` is TCP_NODELAY.
    pub nagle: bool,
    /// Keepalive for new connections; off by default (RFC 9293 MUST-24).
    pub keepalive: Option<Keepalive>,
    /// How long a fully closed connection may sit in FIN-WAIT-2.
    pub fin_wait_2_timeout: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL.
    pub msl: Duration,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Default accept queue length of a listener.
    pub backlog: usize,
    /// Half-open connections held per listener (Linux's `tcp_max_syn_backlog`). Beyond it a
    /// SYN is answered with a SYN cookie, or dropped when cookies are off.
    pub syn_backlog: usize,
    /// Half-open connections held across every listener, 4096 by default. Beyond it a SYN
    /// is answered as beyond `syn_backlog`. (Linux has no host-wide limit of its own.)
    pub max_half_open: usize,
    /// Answer SYNs with SYN cookies (RFC 4987 §3.6) when the SYN queue is full, instead of
    /// dropping them. On by default, as Linux's `tcp_syncookies = 1`.
    pub syn_cookies: bool,
    /// How long each SYN-cookie secret is used; a cookie is accepted in its epoch and the
    /// next one, so it lives one to two rotations. 60 s by default (Linux's cookie counter
    /// ticks once a minute and accepts two minutes' worth).
    pub syn_cookie_rotation: Duration,
    /// Connections held at most, every state but LISTEN counted (TIME-WAIT too), 262 144 by
    /// default. At the limit `tcp_connect` fails with [`TcpError::LimitReached`] and a SYN
    /// (or a cookie's ACK) is dropped ([`DropReason::ConnectionLimit`]).
    ///
    /// [`TcpError::LimitReached`]: crate::TcpError::LimitReached
    /// [`DropReason::ConnectionLimit`]: crate::DropReason::ConnectionLimit
    pub max_connections: usize,
    /// Bytes held in every connection's buffers together (send queue, receive queue,
    /// out-of-order store), 1 GiB by default; Linux's `tcp_mem` hard limit plays this part.
    /// At the limit new connections are refused as at `max_connections`, `tcp_send` takes
    /// no more bytes (`WouldBlock`), and a received segment whose payload would go above it
    /// is dropped before it is processed ([`DropReason::MemoryLimit`]); the peer retransmits
    /// it once the application has read. Established connections keep their state.
    ///
    /// [`DropReason::MemoryLimit`]: crate::DropReason::MemoryLimit
    pub max_buffer_memory: usize,
    /// Give up when data stays unacknowledged this long (RFC 5482 semantics), if set.
    pub user_timeout: Option<Duration>,
    /// Ephemeral ports (Linux's default range).
    pub ephemeral_ports: std::ops::RangeInclusive<u16>,
    /// The device cuts TCP super-segments itself (TSO/GSO): data goes out in frames of up to
    /// 64 KiB through [`FrameSink::push_gso`](crate::FrameSink::push_gso), each to be cut into
    /// segments of the send MSS, with a partial checksum the device completes. Off by
    /// default; a driver turns it on only for a sink that implements `push_gso`.
    pub segmentation_offload: bool,
    /// **For tests only.** Every connection of this stack starts at this initial send
    /// sequence number instead of RFC 6528's clock plus keyed hash (RFC 9293 §3.4.1), so a
    /// test can start at 2³² − k and cross the sequence-number wrap within kilobytes. A fixed
    /// ISN is predictable and lets an off-path attacker inject segments: never set it in
    /// production. `None` (the default) keeps RFC 6528.
    pub test_iss: Option<SeqNum>,
    /// The congestion control algorithm of new connections (CUBIC, as Linux's default).
    pub congestion_control: crate::tcp::CongestionAlgorithm,
    /// The tail loss probe of RFC 8985 §7 (Linux's default): with data outstanding and no
    /// loss suspected, a probe segment goes out after 2·SRTT (or when the retransmission
    /// timer would fire, if sooner) instead of waiting for the timer's window collapse.
    pub tail_loss_probe: bool,
    /// RFC 1337 ("TIME-WAIT assassination"): a RST received in TIME-WAIT is ignored, and the
    /// 2·MSL wait runs out as usual. On by default (Linux's `tcp_rfc1337` defaults to 0: its
    /// TIME-WAIT ends on an acceptable RST, as RFC 9293 §3.10.7.4 allows). `false` lets such a
    /// RST end TIME-WAIT.
    pub rfc1337: bool,
    /// RFC 7323 §3.2: once timestamps are negotiated, a segment other than a RST that arrives
    /// without them is dropped silently (the RFC's SHOULD; the default). Linux takes such
    /// segments; so do illumos and others since Windows sent keepalive probes without
    /// timestamps: `false` does the same.
    pub timestamps_required: bool,
    /// The least send MSS, whatever the peer offers or path MTU discovery finds (Linux's
    /// `tcp_min_snd_mss`, 48): tiny segments cost a header each.
    pub min_snd_mss: usize,
    /// The least path MTU an ICMP fragmentation-needed may set (RFC 1191; Linux's
    /// `net.ipv4.route.min_pmtu`, 552): an ICMP claiming a smaller next-hop MTU lowers the
    /// path MTU to this, so a spoofed one cannot force tiny segments.
    pub min_path_mtu: usize,
    /// Challenge ACKs (RFC 5961 §3.2, §4.2, §5.2) the whole host sends per second at most,
    /// beside the per-connection limit of one per 500 ms (Linux's `tcp_invalid_ratelimit`).
    /// Each second's budget is drawn at random from `limit/2 .. limit/2 + limit`, as Linux
    /// (4.7 to 5.19) does since CVE-2016-5696, so an off-path attacker cannot count the ACKs
    /// left to learn which of its guesses hit a connection (Linux's
    /// `tcp_challenge_ack_limit`, 1000 in those kernels; since 6.0 unlimited by default).
    /// 0 means no host-wide limit.
    pub challenge_ack_limit: u32,
    /// RACK (RFC 8985 §6, Linux's default `tcp_recovery = 1`): with SACK, losses are
    /// detected from transmit times, a lost retransmission without the retransmission
    /// timer, and reordering shorter than the reordering window costs no retransmission.
    /// Off, RFC 6675's duplicate-ACK threshold and IsLost decide.
    pub rack: bool,
    /// F-RTO (RFC 5682, Linux's `tcp_frto`): a retransmission timeout followed by two
    /// ACKs of new data was spurious, and its window reduction is undone.
    pub frto: bool,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            recv_buffer_max: 256 * 1024,
            max_out_of_order: 64,
            max_out_of_order_bytes: 4 * 1024 * 1024,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            max_retransmits: 15,
            syn_retries: 5,
            synack_retries: 5,
            delayed_ack: Duration::from_millis(40),
            nagle: true,
            keepalive: None,
            fin_wait_2_timeout: Duration::from_secs(60),
            msl: Duration::from_secs(30),
            window_scaling: true,
            timestamps: true,
            sack: true,
            backlog: 128,
            syn_backlog: 256,
            max_half_open: 4096,
            syn_cookies: true,
            syn_cookie_rotation: Duration::from_secs(60),
            max_connections: 262_144,
            max_buffer_memory: 1 << 30,
            user_timeout: None,
            ephemeral_ports: 32768..=60999,
            segmentation_offload: false,
            test_iss: None,
            congestion_control: crate::tcp::CongestionAlgorithm::Cubic,
            tail_loss_probe: true,
            rfc1337: true,
            timestamps_required: true,
            min_snd_mss: 48,
            min_path_mtu: 552,
            challenge_ack_limit: 1000,
            rack: true,
            frto: true,
        }
    }
}

/// Everything a [`Stack`](crate::Stack) needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our Ethernet address.
    pub mac: EthernetAddress,
    /// Our IPv4 address and subnet.
    pub ipv4: Ipv4Cidr,
    /// Next hop for destinations off the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// IP MTU of the link.
    pub mtu: usize,
    /// Time to live of datagrams we send.
    pub ttl: u8,
    /// Seed of every random choice (ISN secret, ports): the same seed, the same run.
    pub seed: u64,
    /// ARP behaviour.
    pub arp: ArpConfig,
    /// Address conflict detection (RFC 5227); off by default.
    pub conflict_detection: ConflictDetection,
    /// Fragment reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// ICMP error messages sent per second at most (RFC 1812 §4.3.2.8); 0 sends none.
    pub icmp_error_rate: u32,
    /// Burst of ICMP error messages allowed above the rate.
    pub icmp_error_burst: u32,
    /// RSTs sent per second at most for segments that reach no connection or listener
    /// (RFC 9293 §3.5.2, group 1): a flood of segments from spoofed sources must not turn
    /// the host into a reflector. 0 sends none. A token bucket as for ICMP errors; Linux has
    /// no such limit, FreeBSD counts these RSTs under `net.inet.icmp.icmplim` (200/s).
    pub reset_rate: u32,
    /// Burst of such RSTs allowed above the rate.
    pub reset_burst: u32,
    /// TCP behaviour.
    pub tcp: TcpConfig,
    /// Events held for [`Stack::poll_event`](crate::Stack::poll_event) at most. Beyond it the
    /// oldest event is dropped and counted in
    /// [`Stack::events_dropped`](crate::Stack::events_dropped): a stack nobody polls holds
    /// bounded memory. A driver that polls after every call never comes near it.
    pub event_queue_limit: usize,
}

impl Config {
    /// A configuration with the defaults: MTU 1500, TTL 64, no gateway, seed 0, 65 536 events
    /// queued at most.
    pub fn new(mac: EthernetAddress, ipv4: Ipv4Cidr) -> Config {
        Config {
            mac,
            ipv4,
            gateway: None,
            mtu: 1500,
            ttl: 64,
            seed: 0,
            arp: ArpConfig::default(),
            conflict_detection: ConflictDetection::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: 100,
            icmp_error_burst: 10,
            reset_rate: 1000,
            reset_burst: 50,
            tcp: TcpConfig::default(),
            event_queue_limit: 65_536,
        }
    }
}
