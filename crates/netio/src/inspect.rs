//! A device wrapper that shows every frame to a callback: segment traces, counters, tests.

use std::io;
use std::task::{Context, Poll};

use crate::{Capabilities, Device, FrameBatch};

/// Which way a frame went through an [`Inspect`]ed device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Received from the link.
    Rx,
    /// Sent to the link.
    Tx,
}

/// Wraps a device and calls `f` with each frame it receives and each frame it sends, in the
/// order they pass. The callback sees the bytes only; it cannot change or drop them.
///
/// # Examples
/// ```
/// use rawtcp_netio::{Device, Flow, FrameBatch, Inspect, MemLink};
///
/// let (left, mut right) = MemLink::pair();
/// let mut seen = Vec::new();
/// let mut left = Inspect::new(left, |flow, frame: &[u8]| seen.push((flow, frame.len())));
/// let mut batch = FrameBatch::new(4, 1514);
/// batch.push(60).unwrap().fill(0xab);
/// left.send(&mut batch).unwrap();
/// drop(left);
/// assert_eq!(seen, [(Flow::Tx, 60)]);
/// # let mut rx = FrameBatch::new(4, 1514);
/// # assert_eq!(right.recv(&mut rx).unwrap(), 1);
/// ```
#[derive(Debug)]
pub struct Inspect<D, F> {
    watched: Watched<D>,
    f: F,
}

/// A device and the bookkeeping that shows each frame passing through it once: what
/// [`Inspect`] and [`Pcap`](crate::Pcap) share.
#[derive(Debug)]
pub(crate) struct Watched<D> {
    pub(crate) inner: D,
    /// Frames at the front of the caller's send batch shown by an earlier, partial send.
    shown_unsent: usize,
}

impl<D: Device> Watched<D> {
    pub(crate) fn new(inner: D) -> Watched<D> {
        Watched {
            inner,
            shown_unsent: 0,
        }
    }

    /// Receives into `batch` and shows `look` each frame that arrived.
    pub(crate) fn recv(
        &mut self,
        batch: &mut FrameBatch,
        mut look: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        let before = batch.len();
        let got = self.inner.recv(batch)?;
        for index in before..batch.len() {
            look(batch.frame(index))?;
        }
        Ok(got)
    }

    /// Shows `look` each frame of `batch` not shown before, then sends.
    pub(crate) fn send(
        &mut self,
        batch: &mut FrameBatch,
        mut look: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<usize> {
        // Frames leave the batch as they are sent, so each is shown before it is offered.
        // Those the device does not take stay at the front; they were shown already.
        for index in self.shown_unsent.min(batch.len())..batch.len() {
            look(batch.frame(index))?;
        }
        let queued = batch.len();
        let result = self.inner.send(batch);
        self.shown_unsent = batch.len().min(queued);
        result
    }
}

impl<D: Device, F: FnMut(Flow, &[u8])> Inspect<D, F> {
    /// Wraps `inner`.
    pub fn new(inner: D, f: F) -> Inspect<D, F> {
        Inspect {
            watched: Watched::new(inner),
            f,
        }
    }

    /// The wrapped device.
    pub fn get_ref(&self) -> &D {
        &self.watched.inner
    }
}

impl<D: Device, F: FnMut(Flow, &[u8])> Device for Inspect<D, F> {
    fn capabilities(&self) -> Capabilities {
        self.watched.inner.capabilities()
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let f = &mut self.f;
        self.watched.recv(batch, |frame| {
            f(Flow::Rx, frame);
            Ok(())
        })
    }

    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let f = &mut self.f;
        self.watched.send(batch, |frame| {
            f(Flow::Tx, frame);
            Ok(())
        })
    }

    fn poll_recv_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watched.inner.poll_recv_ready(cx)
    }

    fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watched.inner.poll_send_ready(cx)
    }

    fn recv_pending(&self) -> Option<bool> {
        self.watched.inner.recv_pending()
    }

    fn rx_dropped(&mut self) -> Option<u64> {
        self.watched.inner.rx_dropped()
    }
}
