//! The engine's errors as the `io::Error`s a tokio user expects.

use std::io;

use rawtcp_core::{ConnError, TcpError};

pub(crate) fn conn_error(error: ConnError) -> io::Error {
    let (kind, text) = match error {
        ConnError::Refused => (io::ErrorKind::ConnectionRefused, "connection refused"),
        ConnError::Reset => (io::ErrorKind::ConnectionReset, "connection reset by peer"),
        ConnError::TimedOut => (io::ErrorKind::TimedOut, "connection timed out"),
        ConnError::Unreachable => (io::ErrorKind::HostUnreachable, "host unreachable (ICMP)"),
        ConnError::NeighborUnreachable => (
            io::ErrorKind::HostUnreachable,
            "host unreachable (no ARP reply)",
        ),
    };
    io::Error::new(kind, text)
}

pub(crate) fn tcp_error(error: TcpError) -> io::Error {
    match error {
        TcpError::Connection(error) => conn_error(error),
        TcpError::InvalidHandle => io::Error::new(io::ErrorKind::NotConnected, "socket is closed"),
        TcpError::AddrInUse => io::Error::new(io::ErrorKind::AddrInUse, "address in use"),
        TcpError::AddrNotAvailable => {
            io::Error::new(io::ErrorKind::AddrNotAvailable, "address not available")
        }
        TcpError::InvalidInput => io::Error::new(io::ErrorKind::InvalidInput, "invalid address"),
        TcpError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
        TcpError::NotConnected => io::Error::new(io::ErrorKind::NotConnected, "not connected"),
        TcpError::BrokenPipe => io::Error::new(io::ErrorKind::BrokenPipe, "writing after shutdown"),
        // ENOBUFS: Linux's answer when socket memory or the connection table is exhausted.
        TcpError::LimitReached => io::Error::new(
            io::ErrorKind::OutOfMemory,
            "no buffer space: a connection or memory limit of the stack is reached",
        ),
    }
}
