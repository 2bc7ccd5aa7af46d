//! The send buffer: every byte from SND.UNA on.

use std::collections::VecDeque;

/// Bytes from SND.UNA on, bounded.
#[derive(Debug)]
pub(crate) struct SendBuffer {
    bytes: VecDeque<u8>,
    capacity: usize,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            bytes: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity - self.bytes.len()
    }

    /// Appends as much of `data` as fits; returns how much.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        self.bytes.extend(&data[..n]);
        n
    }

    /// Drops `n` acknowledged bytes from the front.
    pub(crate) fn ack(&mut self, n: usize) {
        self.bytes.drain(..n.min(self.bytes.len()));
    }

    #[cfg(feature = "fuzzing")]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `out.len()` bytes starting `offset` bytes after SND.UNA into `out`.
    pub(crate) fn copy_to(&self, offset: usize, out: &mut [u8]) {
        let (a, b) = self.bytes.as_slices();
        let end = offset + out.len();
        let mut written = 0;
        if offset < a.len() {
            let take = &a[offset..end.min(a.len())];
            out[..take.len()].copy_from_slice(take);
            written = take.len();
        }
        let rest = out.len() - written;
        if rest > 0 {
            let start = offset + written - a.len();
            out[written..].copy_from_slice(&b[start..start + rest]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_buffer_copies_across_the_wrap() {
        let mut buffer = SendBuffer::new(8);
        assert_eq!(buffer.write(b"abcdef"), 6);
        buffer.ack(4);
        assert_eq!(buffer.write(b"ghijklmn"), 6);
        let mut out = [0u8; 5];
        buffer.copy_to(1, &mut out);
        assert_eq!(&out, b"fghij");
    }
}
