//! The connection states of RFC 9293 §3.3.2.

use core::fmt;

/// A connection's state, named as in RFC 9293.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a connection request.
    Listen,
    /// Our SYN sent, waiting for the peer's.
    SynSent,
    /// Both SYNs seen, ours not yet acknowledged.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// Our FIN sent, not yet acknowledged.
    FinWait1,
    /// Our FIN acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer's FIN received; waiting for the application to close.
    CloseWait,
    /// Both FINs sent, ours not yet acknowledged (simultaneous close).
    Closing,
    /// The peer's FIN received and ours sent, waiting for its acknowledgment.
    LastAck,
    /// Both FINs acknowledged; waiting 2·MSL for stray segments.
    TimeWait,
}

impl State {
    /// Whether both SYNs have been exchanged (RFC 9293's synchronized states).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// Whether we may still send data.
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }
}

/// Prints the RFC name: `SYN-SENT`, `ESTABLISHED`, ...
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        })
    }
}
