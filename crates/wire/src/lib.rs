//! rawtcp-wire: the bytes on the wire, and nothing else.
//!
//! One module per protocol: [`ethernet`], [`arp`], [`ipv4`], [`icmpv4`], [`tcp`], plus the
//! internet [`checksum`] and 32-bit sequence numbers ([`seq`]). This crate contains no
//! networking code, reads no clock and allocates nothing while parsing or emitting.
//!
//! Every format comes in two layers, after smoltcp's `wire` module:
//!
//! * a zero-copy view, `Packet<T: AsRef<[u8]>>` (or `Frame` for Ethernet), whose
//!   `new_checked` validates the lengths once; after it succeeds no accessor panics. Setters
//!   exist when `T: AsMut<[u8]>`.
//! * a plain `Repr` with `parse` (view → repr, validating the semantics), `buffer_len` and
//!   `emit` (repr → bytes in the caller's buffer).
//!
//! # The no-panic contract
//! Any byte slice given to any `new_checked` or `parse` returns `Ok` or a named [`Error`]
//! and never panics. `new_unchecked` followed by an accessor may panic on a short buffer: it
//! is for buffers the caller built itself. `emit` panics if the caller's buffer is shorter
//! than `buffer_len()`: that is a bug in the caller, never a property of received data.
//!
//! # Examples
//! ```
//! use rawtcp_wire::ethernet::{EtherType, Frame};
//!
//! let bytes = [0xffu8; 14];
//! let frame = Frame::new_checked(&bytes[..]).unwrap();
//! assert_eq!(frame.ethertype(), EtherType::Unknown(0xffff));
//! assert!(Frame::new_checked(&bytes[..13]).is_err());
//! ```
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod arp;
pub mod checksum;
pub mod dissect;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod seq;
pub mod tcp;

mod error;

pub use error::{Error, Result};
pub use seq::SeqNum;

/// What a parser does with a checksum it finds in received bytes.
///
/// A device that has already verified a frame (AF_PACKET's `TP_STATUS_CSUM_VALID`), or one
/// whose local kernel has not finished it yet (`TP_STATUS_CSUMNOTREADY` on veth), hands the
/// frame up with [`RxChecksum::Trusted`], so it is neither verified twice nor dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxChecksum {
    /// Verify the checksum; a mismatch is [`Error::Checksum`].
    #[default]
    Verify,
    /// Do not look at the checksum.
    Trusted,
}

/// What an emitter writes into a checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxChecksum {
    /// The complete checksum.
    #[default]
    Full,
    /// Only the folded pseudo-header sum, not complemented, for a device that completes the
    /// checksum itself (Linux `CHECKSUM_PARTIAL`, virtio-net `VIRTIO_NET_HDR_F_NEEDS_CSUM`).
    Partial,
    /// Zero: the device fills in the whole field.
    Offloaded,
}
