//! A TAP device: the kernel sees an Ethernet interface, we read and write its frames.

use std::fs::File;
use std::io::{self, Write};
use std::task::{Context, Poll};
use std::time::Instant;

use rawtcp_wire::TxChecksum;
use rawtcp_wire::ethernet;

use crate::batch::{FrameBatch, FrameMeta};
use crate::readiness::FdIo;
use crate::sys;
use crate::{Capabilities, Device};

/// A TAP device (IFF_TAP | IFF_NO_PI), opened non-blocking. One read or write per frame: TAP
/// has no batched syscall.
///
/// # Examples
/// ```no_run
/// use rawtcp_netio::Tap;
/// // Creates tap0 if it does not exist (needs CAP_NET_ADMIN); bring it up with `ip link`.
/// let tap = Tap::open("tap0")?;
/// assert_eq!(tap.name(), "tap0");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Tap {
    io: FdIo<File>,
    name: String,
    mtu: usize,
}

impl Tap {
    /// Opens, or creates, TAP device `name` in the current network namespace.
    ///
    /// Errors: `PermissionDenied` without CAP_NET_ADMIN (creating) or access to the device.
    pub fn open(name: &str) -> io::Result<Tap> {
        let (fd, name) = sys::open_tap(name, false).map_err(|error| match error.kind() {
            io::ErrorKind::PermissionDenied => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "opening TAP device {name:?} needs CAP_NET_ADMIN (or ownership of the device)"
                ),
            ),
            _ => error,
        })?;
        let mtu = sys::interface_mtu(&sys::inet_dgram_socket()?, &name)? as usize;
        let file = File::from(fd);
        Ok(Tap {
            io: FdIo::new(file),
            name,
            mtu,
        })
    }

    /// The interface name the kernel gave the device.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Device for Tap {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtu: self.mtu,
            max_frame_len: self.mtu + ethernet::HEADER_LEN,
            tx_checksum_offload: false,
            gso: false,
            shared_link: true,
        }
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let mut got = 0;
        while batch.free() > 0 {
            let mut slot = batch
                .recv_slots(1, FrameBatch::HEADROOM)
                .next()
                .expect("a free slot");
            match self
                .io
                .read_with(|file: &File| sys::read_slot(file, &mut slot))
            {
                Ok(Some(len)) => {
                    batch.commit(FrameBatch::HEADROOM, len, FrameMeta::new(Instant::now()));
                    got += 1;
                }
                Ok(None) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(got)
    }

    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let mut sent = 0;
        while !batch.is_empty() {
            let meta = batch.meta(0);
            if meta.gso.is_some() || meta.tx_checksum != TxChecksum::Full {
                batch.consume(1);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a TAP device has no checksum offload or GSO",
                ));
            }
            let frame = batch.frame(0);
            match self.io.write_with(|mut file: &File| file.write(frame)) {
                Ok(Some(_)) => {
                    batch.consume(1);
                    sent += 1;
                }
                Ok(None) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    batch.consume(1);
                    return Err(error);
                }
            }
        }
        Ok(sent)
    }

    fn poll_recv_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_read(cx)
    }

    fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_write(cx)
    }

    fn recv_pending(&self) -> Option<bool> {
        sys::readable_now(self.io.get_ref()).ok()
    }
}
