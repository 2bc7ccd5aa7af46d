//! Counters of the interface layer: frames in and out, and every dropped frame by reason.

use core::fmt;

macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $name:ident => $text:literal,)*) => {
        /// Why the interface layer dropped a frame, a datagram or a queued packet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $($(#[$doc])* $name,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];

            /// A short name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(DropReason::$name => $text,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The Ethernet header was cut short.
    EthernetMalformed => "ethernet-malformed",
    /// Addressed to another station's MAC.
    NotForUs => "not-for-us",
    /// An EtherType other than IPv4 and ARP.
    UnsupportedEtherType => "unsupported-ethertype",
    /// ARP that is not an Ethernet/IPv4 request or reply, or is malformed.
    ArpMalformed => "arp-malformed",
    /// ARP about another host.
    ArpNotForUs => "arp-not-for-us",
    /// For our address before it is ours: being probed (RFC 5227 §2.1), or found in use by
    /// another host.
    AddressUnclaimed => "address-unclaimed",
    /// IPv4 header shorter than it says, or lengths that lie.
    Ipv4Malformed => "ipv4-malformed",
    /// IPv4 header checksum wrong.
    Ipv4Checksum => "ipv4-checksum",
    /// Destination is neither our address nor a broadcast.
    NotOurAddress => "not-our-address",
    /// Source is a broadcast, multicast, zero or loopback address (RFC 1122 §3.2.1.3).
    MartianSource => "martian-source",
    /// A fragment overlapped another of its datagram, which is dropped whole.
    FragmentOverlap => "fragment-overlap",
    /// Reassembly memory or datagram limit reached.
    FragmentLimit => "fragment-limit",
    /// A fragment with an impossible offset or length.
    FragmentMalformed => "fragment-malformed",
    /// A datagram not complete within the reassembly timeout.
    FragmentTimeout => "fragment-timeout",
    /// ICMP message too short, with a bad code, or quoting a bad header.
    IcmpMalformed => "icmp-malformed",
    /// ICMP checksum wrong.
    IcmpChecksum => "icmp-checksum",
    /// An ICMP type we do not act on.
    IcmpUnsupported => "icmp-unsupported",
    /// An ICMP error quoting no connection of ours.
    IcmpUnmatched => "icmp-unmatched",
    /// An ICMP error quoting a sequence number our connection does not have in flight
    /// (RFC 5927 §4.1): forged, or about a segment long acknowledged.
    IcmpNotInFlight => "icmp-not-in-flight",
    /// An echo request to a broadcast address (ignored, as Linux does by default).
    EchoToBroadcast => "echo-to-broadcast",
    /// An echo reply would not fit in one frame.
    EchoTooLong => "echo-too-long",
    /// TCP header malformed.
    TcpMalformed => "tcp-malformed",
    /// TCP checksum wrong.
    TcpChecksum => "tcp-checksum",
    /// A TCP segment to a broadcast address.
    TcpToBroadcast => "tcp-to-broadcast",
    /// An ICMP error we would have sent, over the rate limit.
    IcmpRateLimited => "icmp-rate-limited",
    /// A RST we would have sent for a segment that reached no connection, over the rate
    /// limit ([`Config::reset_rate`](crate::Config::reset_rate)).
    ResetRateLimited => "reset-rate-limited",
    /// A challenge ACK (RFC 5961) we would have sent, over the host-wide budget
    /// ([`TcpConfig::challenge_ack_limit`](crate::TcpConfig::challenge_ack_limit)).
    ChallengeAckRateLimited => "challenge-ack-rate-limited",
    /// No route to the destination (off the subnet, no gateway).
    NoRoute => "no-route",
    /// Datagrams waiting for ARP dropped when the neighbour did not answer.
    NeighborUnreachable => "neighbor-unreachable",
    /// The queue of datagrams waiting for ARP was full.
    NeighborQueueFull => "neighbor-queue-full",
    /// The queue of datagrams to send was full.
    TransmitQueueFull => "transmit-queue-full",
    /// [`ArpConfig::max_resolving`](crate::ArpConfig::max_resolving) addresses were being
    /// resolved already: a datagram for another one was dropped.
    NeighborResolutionLimit => "neighbor-resolution-limit",
    /// A SYN dropped: the listener's SYN queue (or the host's half-open limit) was full and
    /// SYN cookies are off.
    SynQueueFull => "syn-queue-full",
    /// A SYN or a SYN cookie's ACK dropped: the listener's accept queue was full.
    AcceptQueueFull => "accept-queue-full",
    /// A SYN, a SYN cookie's ACK or a connect refused at
    /// [`TcpConfig::max_connections`](crate::TcpConfig::max_connections).
    ConnectionLimit => "connection-limit",
    /// A SYN, a connect, or a segment's payload refused at
    /// [`TcpConfig::max_buffer_memory`](crate::TcpConfig::max_buffer_memory).
    MemoryLimit => "memory-limit",
    /// An out-of-order segment dropped at a connection's range or byte limit.
    OutOfOrderLimit => "out-of-order-limit",
    /// An ACK to a listener that echoed no valid SYN cookie (answered with a reset).
    SynCookieInvalid => "syn-cookie-invalid",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Interface counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStats {
    /// Frames handed to the engine.
    pub rx_frames: u64,
    /// Frames the engine wrote out.
    pub tx_frames: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// ARP Probes sent for our address (RFC 5227 §2.1.1).
    pub arp_probes: u64,
    /// ARP Announcements of our address sent (RFC 5227 §2.3), defences (§2.4) included.
    pub arp_announcements: u64,
    /// ARP packets from another host claiming our address after it became ours (RFC 5227
    /// §2.4).
    pub address_conflicts: u64,
    /// Echo requests answered.
    pub echo_replies: u64,
    /// ICMP errors sent.
    pub icmp_errors: u64,
    /// RSTs sent for segments that reached no connection or listener.
    pub resets: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// SYN-ACKs sent with a SYN cookie (RFC 4987 §3.6) because a SYN queue was full.
    pub syn_cookies_sent: u64,
    /// Connections created from the ACK of a SYN cookie.
    pub syn_cookies_accepted: u64,
    drops: [u64; DROP_REASONS],
}

const DROP_REASONS: usize = DropReason::ALL.len();

impl Default for InterfaceStats {
    fn default() -> InterfaceStats {
        InterfaceStats {
            rx_frames: 0,
            tx_frames: 0,
            arp_requests: 0,
            arp_probes: 0,
            arp_announcements: 0,
            address_conflicts: 0,
            echo_replies: 0,
            icmp_errors: 0,
            resets: 0,
            reassembled: 0,
            syn_cookies_sent: 0,
            syn_cookies_accepted: 0,
            drops: [0; DROP_REASONS],
        }
    }
}

impl InterfaceStats {
    /// Drops for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Every reason with a non-zero count.
    pub fn nonzero_drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.drops(r)))
            .filter(|&(_, n)| n > 0)
    }

    /// Adds the counters another part of the stack kept (TCP's) and clears them there.
    ///
    /// It runs after every frame and every call into the engine, and TCP's counters are
    /// nearly always zero: one pass that ORs them together says so, and only otherwise are
    /// they added and cleared, in place (taking the whole struct copied and re-zeroed some
    /// 400 bytes each time). TCP keeps only drops, resets and SYN cookies here; the
    /// interface's own counters it never touches.
    pub(crate) fn absorb(&mut self, other: &mut InterfaceStats) {
        let pending = other.drops.iter().fold(0, |any, &n| any | n)
            | other.resets
            | other.syn_cookies_sent
            | other.syn_cookies_accepted;
        if pending == 0 {
            return;
        }
        for (mine, theirs) in self.drops.iter_mut().zip(other.drops.iter_mut()) {
            *mine += std::mem::take(theirs);
        }
        self.resets += std::mem::take(&mut other.resets);
        self.syn_cookies_sent += std::mem::take(&mut other.syn_cookies_sent);
        self.syn_cookies_accepted += std::mem::take(&mut other.syn_cookies_accepted);
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drop_n(reason, 1);
    }

    pub(crate) fn drop_n(&mut self, reason: DropReason, n: u64) {
        self.drops[reason as usize] += n;
    }
}
