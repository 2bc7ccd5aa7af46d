//! Where the engine writes the frames it sends: in place, into buffers the device owns.

/// A place to write outgoing frames, one at a time.
///
/// The facade implements it for a netio `FrameBatch`; [`VecSink`] collects frames for tests.
pub trait FrameSink {
    /// A buffer of exactly `len` bytes for the next frame, or `None` when the sink is full
    /// (the engine keeps the frame for a later `poll_transmit`).
    fn push(&mut self, len: usize) -> Option<&mut [u8]>;

    /// A buffer of exactly `len` bytes for a TCP super-segment that the device is to cut into
    /// segments of `segment_size` payload bytes, each behind a copy of the first
    /// `header_len` bytes (Ethernet, IPv4 and TCP headers), completing the TCP checksum whose
    /// pseudo-header sum the engine leaves in it. `None` when the sink is full.
    ///
    /// The engine calls it only with [`TcpConfig::segmentation_offload`](crate::TcpConfig)
    /// on. The default has no device behind it and is always full.
    fn push_gso(&mut self, len: usize, segment_size: u16, header_len: u16) -> Option<&mut [u8]> {
        let _ = (len, segment_size, header_len);
        None
    }
}

/// Collects frames in a vector, up to a limit.
#[derive(Debug, Clone, Default)]
pub struct VecSink {
    /// The frames written so far.
    pub frames: Vec<Vec<u8>>,
    /// Most frames to accept; `None` is unlimited.
    pub limit: Option<usize>,
}

impl VecSink {
    /// An unlimited sink.
    pub fn new() -> VecSink {
        VecSink::default()
    }
}

impl FrameSink for VecSink {
    fn push(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.limit.is_some_and(|limit| self.frames.len() >= limit) {
            return None;
        }
        self.frames.push(vec![0; len]);
        self.frames.last_mut().map(Vec::as_mut_slice)
    }
}
