//! The send and receive buffers of a connection.
//!
//! The send buffer holds every byte from SND.UNA on: sent and unacknowledged, then unsent.
//! The receive buffer holds in-order bytes the application has not read, and an out-of-order
//! store of segments beyond RCV.NXT, bounded in ranges and limited to the window.

mod recv;
mod send;

pub(crate) use recv::{OutOfOrderLimits, RecvBuffer, charge};
pub(crate) use send::SendBuffer;
