//! Builds the frames of a TCP conversation with rawtcp's wire crate, parses each one back and
//! prints it field by field, the way Wireshark's packet details pane does.
//!
//! The conversation is DESIGN.md scenarios 1 and 2: the three-way handshake (the SYN and
//! SYN-ACK each consume one sequence number and carry MSS, SACK-permitted, timestamps and
//! window scale), then the server sends "hello" (relative seq 1, len 5) and "world" (seq 6)
//! and closes (FIN at relative seq 11).
//!
//! ```text
//! cargo run --example wire_conversation
//! cargo run --example wire_conversation -- --hex --pcap conversation.pcap
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;

use rawtcp::wire::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use rawtcp::wire::ipv4::{self, IpProtocol, Ipv4Repr};
use rawtcp::wire::tcp::{self, TcpFlags, TcpOption, TcpOptions, TcpRepr, Timestamps};
use rawtcp::wire::{RxChecksum, SeqNum, TxChecksum};

const USAGE: &str = "\
Builds the frames of a TCP handshake and a \"hello\"/\"world\" exchange with rawtcp's wire
crate, parses them back and prints every field.

Usage: wire_conversation [--hex] [--pcap FILE]

Options:
  --hex        also print each frame as hex bytes
  --pcap FILE  write the frames to FILE as a libpcap capture (open it in Wireshark)
  -h, --help   print this help";

const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 9, 0, 1), 49152);
const SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 9, 0, 2), 8080);
const CLIENT_ISN: u32 = 0x2f1c_bb86;
const SERVER_ISN: u32 = 0xab78_f9e8;

struct Options {
    hex: bool,
    pcap: Option<String>,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut options = Options {
        hex: false,
        pcap: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--hex" => options.hex = true,
            "--pcap" => options.pcap = Some(args.next().ok_or("--pcap needs a file name")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(options))
}

/// One segment of the conversation, described as the application sees it.
struct Segment {
    what: &'static str,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: TcpOptions<'static>,
    payload: &'static [u8],
}

fn conversation() -> Vec<Segment> {
    let syn_options = |tsval, tsecr| TcpOptions {
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some(Timestamps { tsval, tsecr }),
        ..TcpOptions::default()
    };
    let ts = |tsval, tsecr| TcpOptions {
        timestamps: Some(Timestamps { tsval, tsecr }),
        ..TcpOptions::default()
    };
    let ack = TcpFlags::ACK;
    vec![
        Segment {
            what: "SYN",
            from_client: true,
            seq: 0,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            options: syn_options(1000, 0),
            payload: b"",
        },
        Segment {
            what: "SYN-ACK",
            from_client: false,
            seq: 0,
            ack: 1,
            flags: TcpFlags::SYN | ack,
            window: 65160,
            options: syn_options(5000, 1000),
            payload: b"",
        },
        Segment {
            what: "ACK (handshake complete)",
            from_client: true,
            seq: 1,
            ack: 1,
            flags: ack,
            window: 502,
            options: ts(1001, 5000),
            payload: b"",
        },
        Segment {
            what: "\"hello\"",
            from_client: false,
            seq: 1,
            ack: 1,
            flags: TcpFlags::PSH | ack,
            window: 509,
            options: ts(5100, 1001),
            payload: b"hello",
        },
        Segment {
            what: "ACK of \"hello\"",
            from_client: true,
            seq: 1,
            ack: 6,
            flags: ack,
            window: 502,
            options: ts(1101, 5100),
            payload: b"",
        },
        Segment {
            what: "\"world\"",
            from_client: false,
            seq: 6,
            ack: 1,
            flags: TcpFlags::PSH | ack,
            window: 509,
            options: ts(5200, 1101),
            payload: b"world",
        },
        Segment {
            what: "FIN from the server",
            from_client: false,
            seq: 11,
            ack: 1,
            flags: TcpFlags::FIN | ack,
            window: 509,
            options: ts(5300, 1101),
            payload: b"",
        },
    ]
}

/// Emits one segment as a whole Ethernet frame.
fn build(segment: &Segment, ident: u16) -> Vec<u8> {
    let (src, dst, src_mac, dst_mac, isn, peer_isn) = if segment.from_client {
        (
            CLIENT, SERVER, CLIENT_MAC, SERVER_MAC, CLIENT_ISN, SERVER_ISN,
        )
    } else {
        (
            SERVER, CLIENT, SERVER_MAC, CLIENT_MAC, SERVER_ISN, CLIENT_ISN,
        )
    };
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: SeqNum::new(isn) + segment.seq,
        ack_number: if segment.flags.ack() {
            SeqNum::new(peer_isn) + segment.ack
        } else {
            SeqNum::new(0)
        },
        flags: segment.flags,
        window_len: segment.window,
        urgent_pointer: 0,
        options: segment.options,
        payload: segment.payload,
    };
    let ip = Ipv4Repr {
        ident,
        ..Ipv4Repr::new(src.0, dst.0, IpProtocol::Tcp, tcp.buffer_len())
    };
    let ethernet = EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        vlan_tci: None,
        ethertype: EtherType::Ipv4,
    };
    let mut frame = vec![0u8; ethernet.buffer_len() + ip.header_len() + tcp.buffer_len()];
    ethernet.emit(&mut Frame::new_unchecked(&mut frame[..]));
    let ip_start = ethernet.buffer_len();
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[ip_start..]));
    let tcp_start = ip_start + ip.header_len();
    tcp.emit(
        &mut tcp::Packet::new_unchecked(&mut frame[tcp_start..]),
        src.0,
        dst.0,
        TxChecksum::Full,
    );
    frame
}

/// Parses a frame back with the views and reprs and prints every field.
fn print_fields(
    out: &mut impl Write,
    frame: &[u8],
    isn_of_sender: u32,
    isn_of_peer: u32,
) -> Result<(), String> {
    let eth = Frame::new_checked(frame).map_err(|e| format!("Ethernet: {e}"))?;
    writeln!(out, "  Ethernet II, {} bytes", frame.len()).ok();
    writeln!(out, "    Destination: {}", eth.dst_addr()).ok();
    writeln!(out, "    Source:      {}", eth.src_addr()).ok();
    writeln!(
        out,
        "    Type:        {} (0x{:04x})",
        eth.ethertype(),
        u16::from(eth.ethertype())
    )
    .ok();

    let ip = ipv4::Packet::new_checked(eth.payload()).map_err(|e| format!("IPv4: {e}"))?;
    let ip_repr = Ipv4Repr::parse(&ip, RxChecksum::Verify).map_err(|e| format!("IPv4: {e}"))?;
    writeln!(out, "  Internet Protocol Version {}", ip.version()).ok();
    writeln!(out, "    Header length:   {} bytes", ip.header_len()).ok();
    writeln!(out, "    DSCP / ECN:      {} / {}", ip.dscp(), ip.ecn()).ok();
    writeln!(out, "    Total length:    {}", ip.total_len()).ok();
    writeln!(
        out,
        "    Identification:  0x{:04x} ({})",
        ip.ident(),
        ip.ident()
    )
    .ok();
    writeln!(
        out,
        "    Flags:           DF={} MF={}",
        u8::from(ip.dont_frag()),
        u8::from(ip.more_frags())
    )
    .ok();
    writeln!(out, "    Fragment offset: {}", ip.frag_offset()).ok();
    writeln!(out, "    Time to live:    {}", ip.ttl()).ok();
    writeln!(
        out,
        "    Protocol:        {} ({})",
        ip.protocol(),
        u8::from(ip.protocol())
    )
    .ok();
    writeln!(
        out,
        "    Header checksum: 0x{:04x} [correct]",
        ip.checksum()
    )
    .ok();
    writeln!(out, "    Source:          {}", ip.src_addr()).ok();
    writeln!(out, "    Destination:     {}", ip.dst_addr()).ok();

    let segment = tcp::Packet::new_checked(ip.payload()).map_err(|e| format!("TCP: {e}"))?;
    let tcp_repr = TcpRepr::parse(
        &segment,
        ip_repr.src_addr,
        ip_repr.dst_addr,
        RxChecksum::Verify,
    )
    .map_err(|e| format!("TCP: {e}"))?;
    let relative_seq = segment.seq_number() - SeqNum::new(isn_of_sender);
    writeln!(out, "  Transmission Control Protocol").ok();
    writeln!(out, "    Source port:      {}", segment.src_port()).ok();
    writeln!(out, "    Destination port: {}", segment.dst_port()).ok();
    writeln!(
        out,
        "    Sequence number:  {} (relative {relative_seq})",
        segment.seq_number()
    )
    .ok();
    if tcp_repr.flags.ack() {
        let relative_ack = segment.ack_number() - SeqNum::new(isn_of_peer);
        writeln!(
            out,
            "    Acknowledgment:   {} (relative {relative_ack})",
            segment.ack_number()
        )
        .ok();
    } else {
        writeln!(
            out,
            "    Acknowledgment:   {} (not significant: ACK clear)",
            segment.ack_number()
        )
        .ok();
    }
    writeln!(out, "    Header length:    {} bytes", segment.header_len()).ok();
    writeln!(
        out,
        "    Flags:            0x{:03x} [{}]",
        segment.flags().bits(),
        segment.flags()
    )
    .ok();
    writeln!(out, "    Window:           {}", segment.window_len()).ok();
    writeln!(
        out,
        "    Checksum:         0x{:04x} [correct]",
        segment.checksum()
    )
    .ok();
    writeln!(out, "    Urgent pointer:   {}", segment.urgent_pointer()).ok();
    for option in segment.options_iter() {
        let text = match option.map_err(|e| format!("TCP option: {e}"))? {
            TcpOption::EndOfList => "End of option list".to_string(),
            TcpOption::NoOperation => "No-Operation".to_string(),
            TcpOption::MaxSegmentSize(mss) => format!("Maximum segment size: {mss} bytes"),
            TcpOption::WindowScale(shift) => {
                format!("Window scale: {shift} (multiply by {})", 1u32 << shift)
            }
            TcpOption::SackPermitted => "SACK permitted".to_string(),
            TcpOption::Sack(blocks) => format!("SACK: {blocks:?}"),
            TcpOption::Timestamps(ts) => {
                format!("Timestamps: TSval {}, TSecr {}", ts.tsval, ts.tsecr)
            }
            TcpOption::TfoCookie(cookie) => format!("Fast Open cookie ({} bytes)", cookie.len()),
            TcpOption::Unknown { kind, data } => {
                format!("Unknown kind {kind} ({} bytes)", data.len())
            }
        };
        writeln!(out, "    Option:           {text}").ok();
    }
    writeln!(
        out,
        "    Sequence space:   {} (payload {} + SYN {} + FIN {})",
        tcp_repr.segment_len(),
        tcp_repr.payload.len(),
        u8::from(tcp_repr.flags.syn()),
        u8::from(tcp_repr.flags.fin())
    )
    .ok();
    if !tcp_repr.payload.is_empty() {
        writeln!(
            out,
            "    Payload:          {:?}",
            String::from_utf8_lossy(tcp_repr.payload)
        )
        .ok();
    }
    Ok(())
}

fn write_pcap(path: &str, frames: &[Vec<u8>]) -> io::Result<()> {
    let mut file = io::BufWriter::new(File::create(path)?);
    // libpcap global header: magic, version 2.4, zone 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET.
    file.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    file.write_all(&2u16.to_le_bytes())?;
    file.write_all(&4u16.to_le_bytes())?;
    file.write_all(&[0; 8])?;
    file.write_all(&65535u32.to_le_bytes())?;
    file.write_all(&1u32.to_le_bytes())?;
    for (i, frame) in frames.iter().enumerate() {
        let micros = i as u32 * 1000;
        file.write_all(&0u32.to_le_bytes())?;
        file.write_all(&micros.to_le_bytes())?;
        file.write_all(&(frame.len() as u32).to_le_bytes())?;
        file.write_all(&(frame.len() as u32).to_le_bytes())?;
        file.write_all(frame)?;
    }
    file.flush()
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut frames = Vec::new();
    for (i, segment) in conversation().iter().enumerate() {
        let frame = build(segment, 0x1000 + i as u16);
        let (arrow, sender_isn, peer_isn) = if segment.from_client {
            ("client -> server", CLIENT_ISN, SERVER_ISN)
        } else {
            ("server -> client", SERVER_ISN, CLIENT_ISN)
        };
        writeln!(out, "Frame {}: {} ({arrow})", i + 1, segment.what).ok();
        if let Err(message) = print_fields(&mut out, &frame, sender_isn, peer_isn) {
            eprintln!("error: frame {} did not parse back: {message}", i + 1);
            return ExitCode::FAILURE;
        }
        if options.hex {
            for (row, chunk) in frame.chunks(16).enumerate() {
                let bytes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                writeln!(out, "    {:04x}  {}", row * 16, bytes.join(" ")).ok();
            }
        }
        writeln!(out).ok();
        frames.push(frame);
    }
    if let Some(path) = options.pcap {
        if let Err(error) = write_pcap(&path, &frames) {
            eprintln!("error: writing {path}: {error}");
            return ExitCode::FAILURE;
        }
        writeln!(out, "Wrote {} frames to {path}", frames.len()).ok();
    }
    ExitCode::SUCCESS
}
