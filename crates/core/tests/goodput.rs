//! Goodput over the simulated link, fixed seed, virtual time: loss × round-trip time ×
//! {NewReno without SACK, NewReno + SACK, CUBIC + SACK, CUBIC + SACK + RACK} (RACK off in
//! the first three: RFC 6675's duplicate-ACK threshold and IsLost, with PRR), kept as a
//! snapshot (`tests/goodput.snapshot`) so that a change in loss recovery or congestion
//! control shows as a diff. Regenerate after an intended change with
//! `RAWTCP_BLESS=1 cargo test -p rawtcp-core --test goodput` and commit the file.

mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::*;
use rawtcp_core::link::LinkConfig;
use rawtcp_core::{CongestionAlgorithm, TcpError};

const LOSS: [f64; 6] = [0.0, 0.001, 0.01, 0.02, 0.05, 0.10];
const RTT_MS: [u64; 3] = [1, 10, 50];
/// 10 Mbit/s from A to B, a 64-frame queue in front of it.
const RATE: u64 = 1_250_000;
const QUEUE: usize = 64;
/// Virtual time measured per cell: short, so that the debug build takes seconds.
const MEASURE: Duration = Duration::from_secs(2);
const SEED: u64 = 1;

#[derive(Debug, Clone, Copy)]
struct Flavour {
    name: &'static str,
    algorithm: CongestionAlgorithm,
    sack: bool,
    /// RACK-TLP's loss detection (RFC 8985 §6); the probe is on in every flavour.
    rack: bool,
}

const FLAVOURS: [Flavour; 4] = [
    Flavour {
        name: "newreno",
        algorithm: CongestionAlgorithm::NewReno,
        sack: false,
        rack: false,
    },
    Flavour {
        name: "newreno+sack",
        algorithm: CongestionAlgorithm::NewReno,
        sack: true,
        rack: false,
    },
    Flavour {
        name: "cubic+sack",
        algorithm: CongestionAlgorithm::Cubic,
        sack: true,
        rack: false,
    },
    Flavour {
        name: "cubic+sack+rack",
        algorithm: CongestionAlgorithm::Cubic,
        sack: true,
        rack: true,
    },
];

/// Goodput in kbit/s: what B's application read in [`MEASURE`] of a sender that always has
/// data, loss `loss` each way, round trip `rtt_ms`.
fn goodput(flavour: Flavour, loss: f64, rtt_ms: u64) -> u64 {
    let mut a = config(A_MAC, A_IP, SEED);
    a.tcp.congestion_control = flavour.algorithm;
    a.tcp.sack = flavour.sack;
    a.tcp.rack = flavour.rack;
    let mut b = config(B_MAC, B_IP, SEED + 1);
    b.tcp.sack = flavour.sack;
    let mut sim = Sim::with_links(a, b, LinkConfig::default(), LinkConfig::default(), SEED);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let one_way = Duration::from_micros(rtt_ms * 500);
    *sim.link_a_to_b_mut().config_mut() = LinkConfig {
        loss,
        delay: one_way,
        rate: Some(RATE),
        queue_limit: Some(QUEUE),
        ..LinkConfig::default()
    };
    *sim.link_b_to_a_mut().config_mut() = LinkConfig {
        loss,
        delay: one_way,
        ..LinkConfig::default()
    };
    sim.trace = false;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let end = sim.now + MEASURE;
    while sim.now < end {
        while let Ok(n) = sim.a.tcp_send(sim.now, client, &chunk) {
            if n == 0 {
                break;
            }
        }
        loop {
            match sim.b.tcp_recv(sim.now, server, &mut buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => received += n as u64,
                Err(error) => panic!("recv: {error:?}"),
            }
        }
        // Send what was queued, then step to the next event: the application keeps up.
        sim.step_until(end);
    }
    received * 8 / MEASURE.as_millis() as u64
}

fn table() -> String {
    let mut out = String::new();
    writeln!(
        out,
        "# Goodput, kbit/s: {} s of bulk transfer over a {} Mbit/s simulated link ({QUEUE}-frame \
         queue), loss each way, seed {SEED}.",
        MEASURE.as_secs(),
        RATE * 8 / 1_000_000
    )
    .unwrap();
    write!(out, "{:>6} {:>6}", "loss%", "rtt_ms").unwrap();
    for flavour in FLAVOURS {
        write!(out, " {:>15}", flavour.name).unwrap();
    }
    out.push('\n');
    for loss in LOSS {
        for rtt in RTT_MS {
            write!(out, "{:>6} {rtt:>6}", format!("{}", loss * 100.0)).unwrap();
            for flavour in FLAVOURS {
                write!(out, " {:>15}", goodput(flavour, loss, rtt)).unwrap();
            }
            out.push('\n');
        }
    }
    out
}

/// The numbers of a table, row by row.
fn cells(table: &str) -> Vec<Vec<f64>> {
    table
        .lines()
        .filter(|line| !line.starts_with('#') && !line.contains("rtt_ms"))
        .map(|line| {
            line.split_whitespace()
                .map(|cell| cell.parse().expect("a number"))
                .collect()
        })
        .collect()
}

#[test]
fn goodput_table_matches_the_snapshot() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/goodput.snapshot");
    let now = table();
    if std::env::var_os("RAWTCP_BLESS").is_some() {
        std::fs::write(path, &now).expect("write the snapshot");
    }
    let snapshot = std::fs::read_to_string(path).expect("tests/goodput.snapshot");
    let (want, got) = (cells(&snapshot), cells(&now));
    assert_eq!(want.len(), got.len(), "rows\n{now}");
    for (want_row, got_row) in want.iter().zip(&got) {
        assert_eq!(want_row.len(), got_row.len(), "columns\n{now}");
        for (w, g) in want_row.iter().zip(got_row) {
            // The run is deterministic: only the last digit's rounding may differ.
            assert!(
                (w - g).abs() <= 1.0,
                "goodput changed (RAWTCP_BLESS=1 to accept):\n--- snapshot\n{snapshot}+++ now\n{now}"
            );
        }
    }
}
