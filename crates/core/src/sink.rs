//! Where the engine writes the frames it sends: in place, into buffers the device owns.

/// A place to write outgoing frames, one at a time.
///
/// The facade implements it for a netio `FrameBatch`; [`VecSink`] collects frames for tests.
pub trait FrameSink {
    /// A buffer of exactly `len` bytes for the next frame, or `None` when the sink is full
    /// (the engine keeps the frame for a later `poll_transmit`).
    fn push(&mut self, len: usize) -> Option<&mut [u8]>;
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
