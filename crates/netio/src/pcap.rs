//! libpcap captures (Ethernet link type, nanosecond timestamps) that tcpdump, tshark and
//! Wireshark read: a writer, a device wrapper that records every frame received and sent, and
//! a bounded in-memory flight recorder that can be written out on demand.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::batch::FrameBatch;
use crate::inspect::Watched;
use crate::{Capabilities, Device};

const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 262_144;

/// Writes frames as a libpcap file.
///
/// # Examples
/// ```
/// use rawtcp_netio::PcapWriter;
/// use std::time::SystemTime;
///
/// let mut pcap = PcapWriter::new(Vec::new())?;
/// pcap.write_frame(SystemTime::now(), &[0xff; 60])?;
/// let bytes = pcap.into_inner()?;
/// assert_eq!(bytes.len(), 24 + 16 + 60);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out`.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame captured at `timestamp`.
    pub fn write_frame(&mut self, timestamp: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = timestamp.duration_since(UNIX_EPOCH).unwrap_or_default();
        let captured = frame.len().min(SNAPLEN as usize);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&(since.as_secs() as u32).to_le_bytes());
        record[4..8].copy_from_slice(&since.subsec_nanos().to_le_bytes());
        record[8..12].copy_from_slice(&(captured as u32).to_le_bytes());
        record[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(&frame[..captured])
    }

    /// Flushes buffered bytes.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The last frames seen, bounded in count and bytes, ready to be written as pcap.
#[derive(Debug, Clone)]
pub struct FlightRecorder {
    frames: VecDeque<(SystemTime, Vec<u8>)>,
    max_frames: usize,
    max_bytes: usize,
    bytes: usize,
}

impl FlightRecorder {
    /// Keeps at most `max_frames` frames and `max_bytes` bytes of them, the oldest dropped
    /// first.
    pub fn new(max_frames: usize, max_bytes: usize) -> FlightRecorder {
        FlightRecorder {
            frames: VecDeque::new(),
            max_frames,
            max_bytes,
            bytes: 0,
        }
    }

    /// Records a frame.
    pub fn record(&mut self, timestamp: SystemTime, frame: &[u8]) {
        if self.max_frames == 0 || frame.len() > self.max_bytes {
            return;
        }
        while self.frames.len() >= self.max_frames || self.bytes + frame.len() > self.max_bytes {
            match self.frames.pop_front() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
        self.bytes += frame.len();
        self.frames.push_back((timestamp, frame.to_vec()));
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes the recorded frames, oldest first, as a pcap file.
    pub fn write_pcap<W: Write>(&self, out: W) -> io::Result<W> {
        let mut writer = PcapWriter::new(out)?;
        for (timestamp, frame) in &self.frames {
            writer.write_frame(*timestamp, frame)?;
        }
        writer.into_inner()
    }
}

#[derive(Debug)]
enum Sink {
    File(PcapWriter<BufWriter<File>>),
    Recorder(FlightRecorder),
}

impl Sink {
    fn record(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = SystemTime::now();
        match self {
            Sink::File(writer) => writer.write_frame(now, frame),
            Sink::Recorder(recorder) => {
                recorder.record(now, frame);
                Ok(())
            }
        }
    }
}

/// Wraps a device and records every frame it receives and sends.
///
/// Frames are recorded as they are handed to the inner device's `send`; a frame the device
/// could not take yet is recorded when it is finally sent, once.
#[derive(Debug)]
pub struct Pcap<D> {
    watched: Watched<D>,
    sink: Sink,
}

impl<D: Device> Pcap<D> {
    /// Records into a new pcap file at `path`.
    pub fn to_file(inner: D, path: impl AsRef<Path>) -> io::Result<Pcap<D>> {
        let writer = PcapWriter::new(BufWriter::new(File::create(path)?))?;
        Ok(Pcap {
            watched: Watched::new(inner),
            sink: Sink::File(writer),
        })
    }

    /// Records into a flight recorder; write it out with [`Pcap::recorder`].
    pub fn flight_recorder(inner: D, recorder: FlightRecorder) -> Pcap<D> {
        Pcap {
            watched: Watched::new(inner),
            sink: Sink::Recorder(recorder),
        }
    }

    /// The flight recorder, if this capture keeps one.
    pub fn recorder(&self) -> Option<&FlightRecorder> {
        match &self.sink {
            Sink::Recorder(recorder) => Some(recorder),
            Sink::File(_) => None,
        }
    }

    /// Flushes a capture file.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::File(writer) => writer.flush(),
            Sink::Recorder(_) => Ok(()),
        }
    }

    /// The wrapped device.
    pub fn get_ref(&self) -> &D {
        &self.watched.inner
    }

    /// The wrapped device, mutable.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.watched.inner
    }

    /// Flushes and returns the wrapped device.
    pub fn into_inner(mut self) -> io::Result<D> {
        self.flush()?;
        Ok(self.watched.inner)
    }
}

impl<D: Device> Device for Pcap<D> {
    fn capabilities(&self) -> Capabilities {
        self.watched.inner.capabilities()
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let sink = &mut self.sink;
        self.watched.recv(batch, |frame| sink.record(frame))
    }

    fn send(&mut self, batch: &mut FrameBatch) -> io::Result<usize> {
        let sink = &mut self.sink;
        self.watched.send(batch, |frame| sink.record(frame))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flight_recorder_keeps_the_newest_within_bounds() {
        let mut recorder = FlightRecorder::new(3, 250);
        for i in 0..10u8 {
            recorder.record(SystemTime::now(), &[i; 100]);
        }
        // 250 bytes hold two 100-byte frames.
        assert_eq!(recorder.len(), 2);
        let bytes = recorder.write_pcap(Vec::new()).unwrap();
        assert_eq!(bytes.len(), 24 + 2 * (16 + 100));
        assert_eq!(bytes[24 + 16], 8);
        assert_eq!(bytes[24 + 16 + 100 + 16], 9);
    }
}
