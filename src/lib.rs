//! rawtcp: a userspace TCP/IP stack with `TcpListener` and `TcpStream` types that behave like
//! `tokio::net`'s.
//!
//! The stack speaks Ethernet, ARP, IPv4, ICMP and TCP itself. So far the wire layer is built:
//! [`wire`] parses and emits every header the stack uses. The engine, the devices and the
//! async API come in their own crates (see DESIGN.md).

pub use rawtcp_wire as wire;
