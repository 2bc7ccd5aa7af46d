//! Configuration of a [`Stack`](crate::Stack): addresses, limits, timers and the seed.

use core::time::Duration;
use std::net::Ipv4Addr;

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
}

impl Default for ArpConfig {
    fn default() -> ArpConfig {
        ArpConfig {
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 1024,
            request_interval: Duration::from_secs(1),
            max_requests: 3,
            queue_per_neighbor: 8,
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
    /// Fragment reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// ICMP error messages sent per second at most (RFC 1812 §4.3.2.8); 0 sends none.
    pub icmp_error_rate: u32,
    /// Burst of ICMP error messages allowed above the rate.
    pub icmp_error_burst: u32,
}

impl Config {
    /// A configuration with the defaults: MTU 1500, TTL 64, no gateway, seed 0.
    pub fn new(mac: EthernetAddress, ipv4: Ipv4Cidr) -> Config {
        Config {
            mac,
            ipv4,
            gateway: None,
            mtu: 1500,
            ttl: 64,
            seed: 0,
            arp: ArpConfig::default(),
            reassembly: ReassemblyConfig::default(),
            icmp_error_rate: 100,
            icmp_error_burst: 10,
        }
    }
}
