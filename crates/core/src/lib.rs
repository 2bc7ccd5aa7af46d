//! rawtcp-core: the sans-IO engine of rawtcp — everything a TCP/IPv4 host does, as a
//! deterministic state machine driven from outside.
//!
//! This crate contains no networking code, reads no clock and starts no thread: like
//! quinn-proto, it "does not get any relevant timestamps from the operating system". The
//! caller hands it received frames and the current time and collects frames to send:
//!
//! ```text
//! stack.handle_frame(now, &frame, checksum)   // one received Ethernet frame
//! stack.poll_transmit(now, &mut sink)         // frames to send now
//! stack.poll_timeout()                        // the next deadline
//! stack.handle_timeout(now)                   // timers that expired
//! stack.poll_event()                          // what happened
//! ```
//!
//! Every random choice comes from [`Config::seed`], so a run is reproducible.
//!
//! Built: the interface layer (ARP, IPv4 validation and reassembly, ICMP echo and errors,
//! resets for segments that reach no connection) and TCP connections (RFC 9293) with their
//! timers; SYN cookies (RFC 4987) when a SYN queue is full, a limit on everything that could
//! grow (see [`TcpConfig`] and [`ArpConfig`]), and listeners sharing a port (SO_REUSEPORT).
#![deny(unsafe_code)]

mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod iface;
pub mod link;
mod random;
pub mod sim;
mod sink;
mod stack;
mod tcp;
mod time;

pub use config::{
    ArpConfig, Config, ConflictDetection, Ipv4Cidr, Keepalive, ReassemblyConfig, TcpConfig,
};
pub use iface::conflict::AddressState;
pub use iface::stats::{DropReason, InterfaceStats};
pub use sink::{FrameSink, VecSink};
pub use stack::{Event, Stack};
pub use tcp::{
    Acked, Cause, CongestionAlgorithm, CongestionControl, CongestionState, ConnError, ConnectionId,
    ConnectionInfo, ConnectionStats, LIMIT_LOG_INTERVAL, ListenOptions, ListenerId, State,
    TcpError, TcpMemory,
};
pub use time::Instant;
