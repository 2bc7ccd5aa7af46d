//! rawtcp: a userspace TCP/IP stack with `TcpListener` and `TcpStream` types that behave like
//! `tokio::net`'s.
//!
//! A [`Stack`] owns a device (an AF_PACKET socket, a TAP device or one end of an in-memory
//! link) and runs the rawtcp engine in one driver task on tokio; [`TcpListener`] and
//! [`TcpStream`] talk to it.
//!
//! ```
//! use rawtcp::{Stack, TcpListener, TcpStream};
//! use rawtcp_netio::MemLink;
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let (left, right) = MemLink::pair();
//! let server = Stack::builder().device(right).ipv4(Ipv4Addr::new(10, 9, 0, 2), 24).spawn().await?;
//! let client = Stack::builder().device(left).ipv4(Ipv4Addr::new(10, 9, 0, 1), 24).spawn().await?;
//!
//! let listener = TcpListener::bind(&server, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 7)).await?;
//! tokio::spawn(async move {
//!     let (mut stream, _) = listener.accept().await.unwrap();
//!     let mut buf = [0u8; 5];
//!     stream.read_exact(&mut buf).await.unwrap();
//!     stream.write_all(&buf).await.unwrap();
//! });
//! let mut stream = TcpStream::connect(&client, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 7)).await?;
//! stream.write_all(b"hello").await?;
//! let mut echoed = [0u8; 5];
//! stream.read_exact(&mut echoed).await?;
//! assert_eq!(&echoed, b"hello");
//! # Ok(())
//! # }
//! ```

pub use rawtcp_core as core;
pub use rawtcp_netio as netio;
pub use rawtcp_wire as wire;

mod error;
mod stack;
mod tcp;

pub use stack::{Builder, DeviceMac, DriverStats, Stack, StateChange, StateChanges};
pub use tcp::{
    BindOptions, OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, WriteHalf,
};
