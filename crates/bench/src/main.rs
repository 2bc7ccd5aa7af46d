//! rawtcp-bench: load-tests rawtcp, side by side with the Linux kernel's TCP.
//!
//! ```text
//! rawtcp-bench bulk                              # two rawtcp stacks over a MemLink
//! sudo rawtcp-bench --compare kernel all         # the whole suite against the kernel
//! ```
//!
//! See `--help` and README's "Load testing".

mod forward;
mod kernel_cc;
mod measure;
mod net;
mod proxy;
mod report;
mod run;
mod scenario;
mod soak;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::run::{Backend, Bed, Link, Pair, Settings};
use crate::scenario::{Case, Direction, Timing};

#[global_allocator]
static ALLOCATOR: measure::Counting = measure::Counting;

/// Load-tests rawtcp: goodput, request/response latency, connection rate and idle
/// connections, optionally side by side with the Linux kernel's TCP.
///
/// With no options both sides are rawtcp stacks in this process, joined by an in-memory
/// link (no privileges, no syscalls). `--link veth` runs each side in a network namespace
/// of its own, joined by a veth pair the harness creates and deletes (root); there a side
/// may be the kernel. `--compare kernel` runs kernel↔kernel and the chosen pair in turn,
/// repetition by repetition, and prints their ratios.
///
/// A lossy path: `--loss 1% --delay 10ms` (and `--jitter`, `--reorder`, `--duplicate`,
/// `--rate`) put a userspace forwarder between the two namespaces (`--link fwd`, implied by
/// any fault option over veth), so that kernel↔kernel and the pair under test cross the same
/// impaired path; the faults apply to each direction on its own, and `--delay` is the round
/// trip added (half each way). Over `--link mem` the MemLink applies them.
#[derive(Debug, Parser)]
#[command(name = "rawtcp-bench", version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,

    /// What joins the two sides [default: mem, or veth with --compare or a kernel side; fwd
    /// in place of veth when a fault option is given].
    #[arg(long, global = true, value_enum)]
    link: Option<Link>,

    /// The client side's TCP.
    #[arg(long, global = true, value_enum, default_value = "rawtcp")]
    client: Backend,

    /// The server side's TCP [default: rawtcp over mem, kernel over veth].
    #[arg(long, global = true, value_enum)]
    server: Option<Backend>,

    /// Also run kernel↔kernel, interleaved with the chosen pair, and print ratios.
    #[arg(long, global = true, value_enum)]
    compare: Option<Baseline>,

    /// Measured time of each run (e.g. 5s, 500ms).
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,

    /// Time each run goes before it is measured.
    #[arg(long, global = true, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Runs of each case (and of each pair, with --compare).
    #[arg(long, global = true, default_value_t = 3)]
    repeat: usize,

    /// MTU of the link.
    #[arg(long, global = true, default_value_t = 1500)]
    mtu: usize,

    /// Offloads (checksum, TSO, GSO, GRO) of both veth ends, whichever stack uses them. Over
    /// `--link mem`: a perfect MemLink whose ends pass super-segments whole and do not
    /// checksum (as the kernel's loopback), MTU 1500 and no faults only.
    #[arg(long, global = true, value_enum, default_value = "off")]
    offloads: OnOff,

    /// Seed of rawtcp's ports, ISNs and link faults [default: random].
    #[arg(long, global = true)]
    seed: Option<u64>,

    /// Print the results as JSON on stdout instead of a table.
    #[arg(long, global = true)]
    json: bool,

    /// Leave threads unpinned (by default the client runs on CPU 0, the server on CPU 1).
    #[arg(long, global = true)]
    no_pin: bool,

    /// Socket buffer, bytes each way, of a rawtcp side's AF_PACKET device (a small one makes
    /// the kernel drop received frames; the run reports them as `rawtcp rx drops`).
    #[arg(long, global = true, default_value_t = net::PACKET_BUFFER)]
    packet_buffer: usize,

    /// A rawtcp side's AF_PACKET device receives through a TPACKET_V3 ring of
    /// --packet-buffer bytes instead of recvmmsg.
    #[arg(long, global = true, conflicts_with = "recvmmsg")]
    rx_ring: bool,

    /// A rawtcp side's AF_PACKET device receives with recvmmsg (`IoMethod::Batched`) instead
    /// of its default, a TPACKET_V2 ring of as many frame slots as --packet-buffer holds
    /// frames (`IoMethod::FrameRing`).
    #[arg(long, global = true)]
    recvmmsg: bool,

    /// How a rawtcp side's bulk, echo and proxy applications move data: `bytes` takes
    /// received data as the `Bytes` it arrived in and hands written data over as `Bytes`,
    /// kept in the send buffer (`TcpStream::read_bytes_into`, `write_bytes_vectored`,
    /// `poll_write_bytes`: no copy in the application); `copy` reads into and writes from
    /// a buffer (`AsyncRead`/`AsyncWrite`), as the kernel's sides always do.
    #[arg(long, global = true, value_enum, default_value = "bytes")]
    rawtcp_io: net::RawtcpIo,

    #[command(flatten)]
    faults: forward::FaultArgs,

    /// Congestion control of the kernel's sides (TCP_CONGESTION on each socket): Linux's
    /// default CUBIC, which issue 12 compares with, whatever this machine's default is.
    #[arg(long, global = true, value_enum, default_value = "cubic")]
    kernel_cc: kernel_cc::KernelCc,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Baseline {
    /// Linux's TCP on both sides.
    Kernel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dir {
    /// The client sends.
    Send,
    /// The client receives.
    Recv,
    /// One case each way.
    Both,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Goodput of one or more streams.
    Bulk {
        /// Who sends, seen from the client.
        #[arg(long, value_enum, default_value = "both")]
        direction: Dir,
        /// Parallel connections.
        #[arg(long, default_value_t = 1)]
        streams: usize,
    },
    /// Request/response over one connection: transactions/s and latency percentiles.
    Rr {
        /// Bytes of each request and of each response.
        #[arg(long, default_value_t = 1)]
        size: usize,
    },
    /// Connect, 1-byte request, 1-byte response, close: connections/s and latency.
    Crr {
        /// Clients at once; a comma-separated list runs one case each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        concurrency: Vec<usize>,
    },
    /// N idle connections: memory per connection, idle CPU, and a bulk stream beside them.
    Conns {
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
    /// Streams echoed back on the same connection: goodput while both ends read and write
    /// at once (a proxy's load).
    Echo {
        /// Connections at once; a comma-separated list runs one case each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        connections: Vec<usize>,
    },
    /// Streams through a proxy on the --client side's TCP, to a kernel echo server; the
    /// clients (the kernel's) read the echo back: goodput relayed both ways at once.
    Proxy {
        /// Connections at once; a comma-separated list runs one case each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        connections: Vec<usize>,
    },
    /// Every scenario: bulk both ways, rr 1 B, crr at 1 and 16, 8000 conns, echo and proxy
    /// at 1 and 16.
    All,
    /// One connection streams a verifiable pattern both ways at once; each receiver checks
    /// every byte. Exits non-zero, naming the first wrong byte's offset, when a stream
    /// differs or ends short. 16 GiB crosses four sequence-number wraps each way.
    Soak {
        /// Bytes each way (suffixes K, M, G for powers of 1024, e.g. 16G).
        #[arg(long, default_value = "16G", value_parser = parse_bytes)]
        bytes: u64,
        /// Flip the client's byte at this offset before sending it: checks the checker.
        #[arg(long)]
        flip_at: Option<u64>,
    },
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    let bare = text
        .strip_suffix("iB")
        .or_else(|| text.strip_suffix('B'))
        .unwrap_or(text);
    let (number, shift) = match bare.char_indices().last() {
        Some((at, 'K' | 'k')) => (&bare[..at], 10),
        Some((at, 'M' | 'm')) => (&bare[..at], 20),
        Some((at, 'G' | 'g')) => (&bare[..at], 30),
        _ => (bare, 0),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a byte count like 16G, 512M or 1000, got {text:?}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 5s or 500ms, got {text:?}"))?;
    if !(value * scale).is_finite() || value < 0.0 {
        return Err(format!("not a duration: {text:?}"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn cases(scenario: &Scenario) -> Vec<Case> {
    let bulk = |dir: Dir, streams| {
        let dirs: &[Direction] = match dir {
            Dir::Send => &[Direction::Send],
            Dir::Recv => &[Direction::Recv],
            Dir::Both => &[Direction::Send, Direction::Recv],
        };
        dirs.iter()
            .map(|&direction| Case::Bulk { direction, streams })
            .collect::<Vec<_>>()
    };
    match scenario {
        Scenario::Bulk { direction, streams } => bulk(*direction, *streams),
        Scenario::Rr { size } => vec![Case::Rr { size: *size }],
        Scenario::Crr { concurrency } => concurrency
            .iter()
            .map(|&concurrency| Case::Crr { concurrency })
            .collect(),
        Scenario::Conns { count } => vec![Case::Conns { count: *count }],
        Scenario::Echo { connections } => connections
            .iter()
            .map(|&connections| Case::Echo { connections })
            .collect(),
        Scenario::Proxy { connections } => connections
            .iter()
            .map(|&connections| Case::Proxy { connections })
            .collect(),
        Scenario::Soak { .. } => Vec::new(), // not a timed case: see soak()
        Scenario::All => {
            let mut all = bulk(Dir::Both, 1);
            all.push(Case::Rr { size: 1 });
            all.push(Case::Crr { concurrency: 1 });
            all.push(Case::Crr { concurrency: 16 });
            // 8000: kernel↔kernel holds two descriptors per connection, and a machine's
            // hard limit of open files is often 20 000.
            all.push(Case::Conns { count: 8_000 });
            all.push(Case::Echo { connections: 1 });
            all.push(Case::Echo { connections: 16 });
            all.push(Case::Proxy { connections: 1 });
            all.push(Case::Proxy { connections: 16 });
            all
        }
    }
}

/// Raises the soft limit of open files towards `wanted` (as far as the hard limit allows;
/// raising that needs CAP_SYS_RESOURCE) and returns the limit in force.
fn raise_fd_limit(wanted: u64) -> u64 {
    // SAFETY: getrlimit and setrlimit only read and write the struct they are given.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let mut raised = limit;
        raised.rlim_cur = limit.rlim_cur.max(wanted);
        raised.rlim_max = limit.rlim_max.max(wanted);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        raised.rlim_cur = limit.rlim_max.min(wanted).max(limit.rlim_cur);
        raised.rlim_max = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        limit.rlim_cur
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    net::use_rx(if cli.recvmmsg {
        rawtcp::netio::IoMethod::Batched
    } else if cli.rx_ring {
        rawtcp::netio::IoMethod::RxRing
    } else {
        rawtcp::netio::IoMethod::default()
    });
    net::use_rawtcp_io(cli.rawtcp_io);
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match bench(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rawtcp-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn bench(cli: &Cli) -> Result<(), String> {
    let veth = cli.compare.is_some()
        || cli.client == Backend::Kernel
        || cli.server == Some(Backend::Kernel);
    let link = match cli.link {
        None if veth && cli.faults.any() => Link::Fwd,
        None if veth => Link::Veth,
        None => Link::Mem,
        Some(Link::Veth) if cli.faults.any() => Link::Fwd,
        Some(link) => link,
    };
    let server = cli.server.unwrap_or(match link {
        Link::Mem => Backend::Rawtcp,
        Link::Veth | Link::Fwd => Backend::Kernel,
    });
    if link == Link::Fwd && cli.offloads == OnOff::On {
        return Err(
            "--offloads on does not combine with the forwarder (--link fwd, or a fault \
                    option): it bridges whole frames of at most the MTU"
                .into(),
        );
    }
    // MemLink::pair_with_offloads has the default link's MTU.
    let offload_mtu = rawtcp::core::link::LinkConfig::default().mtu;
    if link == Link::Mem
        && cli.offloads == OnOff::On
        && (cli.faults.any() || cli.mtu != offload_mtu)
    {
        return Err(
            "--offloads on over --link mem is a perfect link of MTU 1500: the fault model \
                    acts on frames, not on the segments a super-segment stands for"
                .into(),
        );
    }
    if link == Link::Mem && (cli.client == Backend::Kernel || server == Backend::Kernel) {
        return Err("the kernel runs only over --link veth".into());
    }
    if link == Link::Mem && cli.compare.is_some() {
        return Err("--compare kernel needs --link veth (the kernel cannot use a MemLink)".into());
    }
    if matches!(cli.scenario, Scenario::Proxy { .. } | Scenario::All) {
        proxy::check(Pair {
            client: cli.client,
            server,
            link,
        })?;
    }
    if cli.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let mtu_max = if link == Link::Mem {
        65_535
    } else {
        65_535 - 14
    };
    if !(576..=mtu_max).contains(&cli.mtu) {
        return Err(format!("--mtu must be within 576..={mtu_max}"));
    }
    if link != Link::Mem && !rawtcp::netio::testbed::is_root() {
        return Err(
            "--link veth (used by --compare and by kernel sides) needs root: it creates \
             network namespaces and a veth pair, and opens AF_PACKET sockets. Run it as root \
             (sudo), or use --link mem."
                .into(),
        );
    }
    let seed = cli.seed.unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let settings = Settings {
        timing: Timing {
            warmup: cli.warmup,
            duration: cli.duration,
        },
        mtu: cli.mtu,
        offloads: cli.offloads == OnOff::On,
        seed,
        pin: !cli.no_pin,
        packet_buffer: cli.packet_buffer,
        faults: cli.faults,
        kernel_cc: cli.kernel_cc,
    };
    cli.kernel_cc.choose();
    if let Scenario::Soak { bytes, flip_at } = cli.scenario {
        let faults = cli.faults.link_config(cli.mtu);
        let pair = Pair {
            client: cli.client,
            server,
            link,
        };
        let spec = soak::Spec { bytes, flip_at };
        return soak(cli, pair, spec, &settings, &faults);
    }
    let cases = cases(&cli.scenario);
    let max_conns = cases
        .iter()
        .map(|c| match c {
            Case::Conns { count } => *count as u64,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let tested = Pair {
        client: cli.client,
        server,
        link,
    };
    let mut pairs = Vec::new();
    if cli.compare.is_some() {
        pairs.push(Pair {
            client: Backend::Kernel,
            server: Backend::Kernel,
            link,
        });
    }
    pairs.push(tested);
    // Every kernel connection is a file descriptor of this process, on each kernel side.
    let kernel_sides = pairs
        .iter()
        .map(|p| {
            [p.client, p.server]
                .iter()
                .filter(|b| **b == Backend::Kernel)
                .count()
        })
        .max()
        .unwrap_or(0) as u64;
    let wanted = kernel_sides * max_conns + 1024;
    let limit = raise_fd_limit(wanted);
    if wanted > limit {
        return Err(format!(
            "{max_conns} connections on {kernel_sides} kernel side(s) need about {wanted} file \
             descriptors, and this process may open {limit} (RLIMIT_NOFILE; raising its hard \
             limit needs CAP_SYS_RESOURCE). Use --count {} or less, or rawtcp on both sides \
             (--server rawtcp), which needs no descriptors per connection.",
            (limit.saturating_sub(1024)) / kernel_sides.max(1)
        ));
    }
    let beds = pairs
        .iter()
        .map(|&pair| match pair.link {
            Link::Veth | Link::Fwd => Bed::new(pair, &settings)
                .map(Some)
                .map_err(|error| format!("setting up namespaces for {}: {error}", pair.label())),
            Link::Mem => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;

    let total = cases.len() * cli.repeat * pairs.len();
    let per_run = settings.timing.warmup + settings.timing.duration;
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} runs, ~{eta} left: {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let mut runs = Vec::new();
    for &case in &cases {
        // The spinner's ticker thread wakes five times a second: in the process whose CPU
        // `conns` measures while idle, it was most of the kernel's figure and the noise of
        // both. It stays still there.
        if matches!(case, Case::Conns { .. }) {
            progress.disable_steady_tick();
        } else {
            progress.enable_steady_tick(Duration::from_millis(200));
        }
        for rep in 0..cli.repeat {
            for (pair, bed) in pairs.iter().zip(&beds) {
                progress.set_message(format!(
                    "{} · {} · run {}/{} ({:?} each)",
                    case.label(),
                    pair.label(),
                    rep + 1,
                    cli.repeat,
                    per_run
                ));
                let metrics =
                    run::run_once(*pair, bed.as_ref(), case, &settings).map_err(|error| {
                        format!(
                            "{}, {}, run {}: {error}",
                            case.label(),
                            pair.label(),
                            rep + 1
                        )
                    })?;
                runs.push(report::Run {
                    case: case.label(),
                    pair: pair.label(),
                    metrics,
                });
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    drop(beds);
    let labels: Vec<String> = pairs.iter().map(Pair::label).collect();
    let results = report::Results::collect(&runs, &labels);
    if cli.json {
        println!("{}", results.json(&settings, &cli_line()));
    } else {
        print!("{}", results.table(&settings));
    }
    Ok(())
}

/// Runs a soak and reports it; an error when a stream differs or ends short.
fn soak(
    cli: &Cli,
    pair: Pair,
    spec: soak::Spec,
    settings: &Settings,
    faults: &rawtcp::core::link::LinkConfig,
) -> Result<(), String> {
    let bed = match pair.link {
        Link::Veth | Link::Fwd => Some(
            Bed::new(pair, settings)
                .map_err(|error| format!("setting up namespaces for {}: {error}", pair.label()))?,
        ),
        Link::Mem => None,
    };
    let outcome = run::run_soak(pair, bed.as_ref(), spec, settings, faults)
        .map_err(|error| format!("soak, {}: {error}", pair.label()))?;
    drop(bed);
    if cli.json {
        println!("{}", outcome.json(&spec, &pair.label(), &cli_line()));
    } else {
        print!("{}", outcome.table(&spec, &pair.label()));
    }
    if outcome.is_exact(&spec) {
        return Ok(());
    }
    let first = [outcome.to_server, outcome.to_client]
        .iter()
        .zip(["client → server", "server → client"])
        .find_map(|(received, name)| match received.first_mismatch {
            Some(at) => Some(format!("{name}: first mismatch at byte {at}")),
            None if received.bytes != spec.bytes => Some(format!(
                "{name}: the stream ended after {} of {} bytes",
                received.bytes, spec.bytes
            )),
            None => None,
        });
    Err(first.unwrap_or_else(|| "the soak did not verify".into()))
}

/// The command line as typed, for the record in `--json`.
fn cli_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
