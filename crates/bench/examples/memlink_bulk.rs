//! Moves a fixed number of bytes between two rawtcp stacks over a MemLink, through the
//! driver, the device and the engine, for instruction and allocation counts a busy machine
//! cannot blur:
//!
//! ```text
//! cargo build --release -p rawtcp-bench --example memlink_bulk
//! valgrind --tool=callgrind target/release/examples/memlink_bulk 67108864 1500
//! ```
//!
//! Both stacks run on one thread. The client writes 64 KiB at a time from a slice; the server
//! reads into a 256 KiB buffer until it has the given number of bytes (default 64 MiB), over
//! a link of the given MTU (default 1500). It prints the bytes moved, the heap allocations
//! made while they moved (a counting allocator), and the receive heads each driver had to
//! allocate because the engine still held the frame (`rx_buffers_kept`): divide by the bytes
//! for figures per MB.
//!
//! 64 MiB at MTU 1500, per MB (10^6 bytes): before the receive batch pooled its heads (main
//! at 2018525) 7.23 M instructions, 2052 allocations and 643 heads; with the pool 6.73 M,
//! 767 and 2.7 (181 in all: the pool filling up, then none).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

use rawtcp::core::link::LinkConfig;
use rawtcp::netio::MemLink;
use rawtcp::wire::ethernet::EthernetAddress;
use rawtcp::{Stack, TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The system allocator, counting the allocations made through it.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator, which upholds the
// contract; the counter has no effect on it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (through `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and the caller's new size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn stack(end: rawtcp::netio::MemLinkEnd, last: u8) -> io::Result<Stack> {
    Stack::builder()
        .device(end)
        .ipv4(Ipv4Addr::new(10, 9, 0, last), 24)
        .mac(EthernetAddress([2, 0, 0, 0, 0, last]))
        .spawn()
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64 << 20);
    let mtu: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let link = LinkConfig {
        mtu,
        ..LinkConfig::default()
    };
    let (a, b) = MemLink::with_faults(link.clone(), link, 1);
    let client_stack = stack(a, 1).await?;
    let server_stack = stack(b, 2).await?;
    let at = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 5001);
    let listener = TcpListener::bind(&server_stack, at).await?;
    let sending = tokio::spawn(async move {
        let mut stream = TcpStream::connect(&client_stack, at).await?;
        let data = vec![0x5au8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let len = (total - sent).min(data.len());
            stream.write_all(&data[..len]).await?;
            sent += len;
        }
        stream.shutdown().await?;
        io::Result::Ok(client_stack)
    });
    let (mut stream, _) = listener.accept().await?;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0usize;
    loop {
        match stream.read(&mut buf).await? {
            0 => break,
            n => received += n,
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let client_stack = sending.await.map_err(io::Error::other)??;
    let kept =
        client_stack.driver_stats().rx_buffers_kept + server_stack.driver_stats().rx_buffers_kept;
    println!(
        "{received} bytes at MTU {mtu}: {allocations} allocations ({:.1} per MB), \
         {kept} receive heads allocated for held frames ({:.1} per MB)",
        allocations as f64 / (received as f64 / 1e6),
        kept as f64 / (received as f64 / 1e6),
    );
    drop(stream);
    tokio::join!(client_stack.shutdown(), server_stack.shutdown());
    Ok(())
}
