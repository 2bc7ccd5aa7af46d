//! `soak`: one connection streams `--bytes` of a verifiable pattern each way at once; each
//! receiver checks every byte and reports the offset of the first that differs. Sequence
//! numbers wrap every 4 GiB, so a soak of 16 GiB crosses four wraps in each direction —
//! what no timed benchmark proves (TESTBED.md, "Long streams").
//!
//! The pattern repeats a table of a prime length, so a stream shifted by any number of
//! bytes, or with bytes lost, duplicated or corrupted, differs at once; writing it is a copy
//! and checking it a comparison. Written once against [`Net`], the same code runs on the
//! kernel's sockets, which makes the kernel a verifying peer too.

use std::io;
use std::net::SocketAddrV4;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::measure::Metric;
use crate::net::{Listener, Net};

/// Length of the repeating table: prime, and longer than a segment.
const PERIOD: usize = 65_521;

/// Bytes per write and per read.
const CHUNK: usize = 256 * 1024;

/// The client's stream (to the server) and the server's (to the client).
const CLIENT_STREAM: u64 = 0;
const SERVER_STREAM: u64 = 1;

fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..2 * PERIOD as u64)
            .map(|i| ((i % PERIOD as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect()
    })
}

fn table_start(stream: u64, offset: u64) -> usize {
    ((offset + stream * 7_919) % PERIOD as u64) as usize
}

/// Bytes `offset..` of `stream`, one period of the pattern (a little under 64 KiB), shared
/// with every other caller: what a writer that counts its offset writes next, without a copy.
pub(crate) fn pattern_at(stream: u64, offset: u64) -> bytes::Bytes {
    static SHARED: OnceLock<bytes::Bytes> = OnceLock::new();
    let start = table_start(stream, offset);
    SHARED
        .get_or_init(|| bytes::Bytes::from_static(table()))
        .slice(start..start + PERIOD)
}

/// Bytes `offset..offset + out.len()` of `stream`.
pub(crate) fn fill(out: &mut [u8], stream: u64, offset: u64) {
    let table = table();
    let mut done = 0;
    while done < out.len() {
        let start = table_start(stream, offset + done as u64);
        let take = (out.len() - done).min(PERIOD);
        out[done..done + take].copy_from_slice(&table[start..start + take]);
        done += take;
    }
}

/// The stream offset of the first byte of `got` (received at `offset` of `stream`) that
/// differs from the pattern.
pub(crate) fn first_mismatch(got: &[u8], stream: u64, offset: u64) -> Option<u64> {
    let table = table();
    let mut done = 0;
    while done < got.len() {
        let start = table_start(stream, offset + done as u64);
        let take = (got.len() - done).min(PERIOD);
        let expected = &table[start..start + take];
        let chunk = &got[done..done + take];
        if chunk != expected {
            let at = chunk.iter().zip(expected).position(|(g, e)| g != e)?;
            return Some(offset + (done + at) as u64);
        }
        done += take;
    }
    None
}

/// What a soak moves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Bytes each way.
    pub(crate) bytes: u64,
    /// Flip one byte of the client's stream at this offset before it is sent: checks that
    /// the checker catches it.
    pub(crate) flip_at: Option<u64>,
}

/// What one receiver saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes received before the end of the stream.
    pub(crate) bytes: u64,
    /// The offset of the first byte that differed, if one did.
    pub(crate) first_mismatch: Option<u64>,
}

impl Received {
    /// Every byte arrived, and each was right.
    pub(crate) fn is_exact(&self, spec: &Spec) -> bool {
        self.bytes == spec.bytes && self.first_mismatch.is_none()
    }
}

/// Writes `bytes` of `stream`, then shuts the write side down (a FIN).
async fn send(
    mut writer: impl AsyncWrite + Unpin,
    stream: u64,
    bytes: u64,
    flip_at: Option<u64>,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        fill(&mut buf[..n], stream, sent);
        if let Some(at) = flip_at.filter(|at| (sent..sent + n as u64).contains(at)) {
            buf[(at - sent) as usize] ^= 0xff;
        }
        writer.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    writer.shutdown().await
}

/// Reads `stream` to its end, checking every byte.
async fn verify(mut reader: impl AsyncRead + Unpin, stream: u64) -> io::Result<Received> {
    let mut buf = vec![0u8; CHUNK];
    let mut received = Received {
        bytes: 0,
        first_mismatch: None,
    };
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(received);
        }
        if received.first_mismatch.is_none() {
            received.first_mismatch = first_mismatch(&buf[..n], stream, received.bytes);
        }
        received.bytes += n as u64;
    }
}

/// The client's side: connects, sends its stream while it checks the server's.
pub(crate) async fn client(net: &Net, at: SocketAddrV4, spec: Spec) -> io::Result<Received> {
    let stream = net
        .connect(at)
        .await
        .map_err(|error| io::Error::new(error.kind(), format!("connect {at}: {error}")))?;
    let (reader, writer) = tokio::io::split(stream);
    let (_, received) = tokio::try_join!(
        send(writer, CLIENT_STREAM, spec.bytes, spec.flip_at),
        verify(reader, SERVER_STREAM)
    )?;
    Ok(received)
}

/// The server's side: takes one connection, sends its stream while it checks the client's.
pub(crate) async fn serve(listener: Listener, spec: Spec) -> io::Result<Received> {
    let stream = listener.accept().await?;
    let (reader, writer) = tokio::io::split(stream);
    let (_, received) = tokio::try_join!(
        send(writer, SERVER_STREAM, spec.bytes, None),
        verify(reader, CLIENT_STREAM)
    )?;
    Ok(received)
}

/// A whole soak: what each side received, how long it took, and the faults the run met on
/// the way (the rawtcp sides' receive drops and lost wakeups, the kernel peer's
/// retransmissions, the forwarder's drops), for a soak is only as strong as the faults it
/// crossed.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The server's view of the client's stream.
    pub(crate) to_server: Received,
    /// The client's view of the server's stream.
    pub(crate) to_client: Received,
    /// From the connect to the end of both streams.
    pub(crate) elapsed: Duration,
    /// What the run counted of its path and its peers, as the timed scenarios report it.
    pub(crate) faults: Vec<Metric>,
}

impl Outcome {
    /// Both streams arrived whole and exact.
    pub(crate) fn is_exact(&self, spec: &Spec) -> bool {
        self.to_server.is_exact(spec) && self.to_client.is_exact(spec)
    }

    /// The report: one line per direction, with the first mismatch if any.
    pub(crate) fn table(&self, spec: &Spec, pair: &str) -> String {
        let seconds = self.elapsed.as_secs_f64();
        let gib = spec.bytes as f64 / f64::from(1u32 << 30);
        let mut out = format!(
            "soak {pair}: {gib:.2} GiB each way at once, {} sequence-number wraps each way, {seconds:.1} s\n",
            spec.bytes >> 32
        );
        for (name, received) in [
            ("client → server", self.to_server),
            ("server → client", self.to_client),
        ] {
            let rate = received.bytes as f64 * 8.0 / seconds / 1e9;
            let verdict = match received.first_mismatch {
                Some(at) => format!("FIRST MISMATCH at byte {at}"),
                None if received.bytes == spec.bytes => "every byte verified".to_string(),
                None => format!("SHORT: {} of {} bytes", received.bytes, spec.bytes),
            };
            out += &format!(
                "  {name}: {} bytes, {rate:.2} Gbit/s, {verdict}\n",
                received.bytes
            );
        }
        if !self.faults.is_empty() {
            let counts: Vec<String> = self
                .faults
                .iter()
                .map(|metric| {
                    let value = crate::report::number(metric.value, 3);
                    format!("{} {value} {}", metric.name, metric.unit)
                })
                .collect();
            out += &format!("  on the way: {}\n", counts.join(", "));
        }
        out
    }

    /// The same for machines.
    pub(crate) fn json(&self, spec: &Spec, pair: &str, command: &str) -> serde_json::Value {
        let seconds = self.elapsed.as_secs_f64();
        let direction = |received: Received| {
            serde_json::json!({
                "bytes": received.bytes,
                "first_mismatch": received.first_mismatch,
                "exact": received.is_exact(spec),
                "gbit_per_s": received.bytes as f64 * 8.0 / seconds / 1e9,
            })
        };
        serde_json::json!({
            "scenario": "soak",
            "pair": pair,
            "command": command,
            "bytes_each_way": spec.bytes,
            "seconds": seconds,
            "client_to_server": direction(self.to_server),
            "server_to_client": direction(self.to_client),
            "faults": self
                .faults
                .iter()
                .map(|metric| serde_json::json!({
                    "name": metric.name,
                    "unit": metric.unit,
                    "value": metric.value,
                }))
                .collect::<Vec<_>>(),
        })
    }
}

/// Times `work` from its start.
pub(crate) async fn timed<T>(work: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let result = work.await;
    (result, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_finds_the_first_wrong_byte_shift_and_flip() {
        let mut stream = vec![0u8; 3 * PERIOD + 17];
        fill(&mut stream, 1, 5);
        assert_eq!(first_mismatch(&stream, 1, 5), None);
        assert_eq!(
            first_mismatch(&stream[1..], 1, 5),
            Some(5),
            "shifted by one"
        );
        assert_eq!(first_mismatch(&stream, 0, 5), Some(5), "the other stream");
        stream[2 * PERIOD + 3] ^= 1;
        assert_eq!(
            first_mismatch(&stream, 1, 5),
            Some(5 + 2 * PERIOD as u64 + 3)
        );
    }

    #[test]
    fn shared_pattern_pieces_are_the_stream_at_their_offset() {
        for (stream, offset) in [(0, 0), (3, 1), (7, PERIOD as u64 - 1), (2, 5 << 32)] {
            let piece = pattern_at(stream, offset);
            let mut expected = vec![0u8; piece.len()];
            fill(&mut expected, stream, offset);
            assert_eq!(piece, expected);
            assert_eq!(first_mismatch(&piece, stream, offset), None);
            assert!(first_mismatch(&piece, stream, offset + 1).is_some());
        }
    }
}
