//! DESIGN.md's textbook scenarios, each as its own test, on a virtual clock: the exact
//! segments (flags, relative sequence and acknowledgment numbers, lengths), states and timer
//! schedules.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::{Cause, ConnError, ConnectionId, Event, Instant, State, TcpError};
use rawtcp_netio::link::{Action, LinkConfig, Rule, matches};
use rawtcp_wire::tcp::TcpFlags;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

/// A listening B and a connected A; returns (client, server) handles.
fn connected(sim: &mut Sim) -> (ConnectionId, ConnectionId) {
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    let client = sim.a.tcp_connect(sim.now, b_addr(80), Some(49152)).unwrap();
    assert!(sim.run_while(Duration::from_secs(5), |s| {
        s.a.tcp_state(client) == Some(State::Established)
            && s.events_b
                .iter()
                .any(|(_, e)| *e == Event::Acceptable(listener))
    }));
    let server = sim
        .b
        .tcp_accept(listener)
        .unwrap()
        .expect("a connection to accept");
    (client, server)
}

/// Segments as (from A, flags, relative seq, relative ack, length), relative to each side's
/// ISN as Wireshark shows them.
fn relative(sim: &Sim) -> Vec<(bool, TcpFlags, u32, u32, usize)> {
    let isn_a = sim
        .segments
        .iter()
        .find(|s| s.from_a && s.flags.syn())
        .map(|s| s.seq)
        .unwrap_or(0);
    let isn_b = sim
        .segments
        .iter()
        .find(|s| !s.from_a && s.flags.syn())
        .map(|s| s.seq)
        .unwrap_or(0);
    sim.segments
        .iter()
        .map(|s| {
            let (own, peer) = if s.from_a {
                (isn_a, isn_b)
            } else {
                (isn_b, isn_a)
            };
            let ack = if s.flags.ack() {
                s.ack.wrapping_sub(peer)
            } else {
                0
            };
            (s.from_a, s.flags, s.seq.wrapping_sub(own), ack, s.len)
        })
        .collect()
}

#[test]
fn scenario_1_three_way_handshake() {
    let mut sim = Sim::new();
    let (client, server) = connected(&mut sim);
    assert_eq!(
        relative(&sim),
        vec![
            (true, SYN, 0, 0, 0),
            (false, SYN | ACK, 0, 1, 0),
            (true, ACK, 1, 1, 0)
        ],
        "SYN and SYN-ACK each consume one sequence number"
    );
    let syn = &sim.segments[0];
    assert_eq!(syn.options.max_seg_size, Some(1460));
    assert!(syn.options.sack_permitted);
    assert!(syn.options.timestamps.is_some());
    assert_eq!(
        syn.options.window_scale,
        Some(3),
        "256 KiB buffers need a shift of 3"
    );
    assert_eq!(sim.a.tcp_state(client), Some(State::Established));
    assert_eq!(sim.b.tcp_state(server), Some(State::Established));
    let transitions: Vec<(State, State)> = sim
        .events_a
        .iter()
        .filter_map(|(_, e)| match e {
            Event::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        transitions,
        vec![
            (State::Closed, State::SynSent),
            (State::SynSent, State::Established)
        ]
    );
    assert_eq!(State::SynSent.to_string(), "SYN-SENT");
}

#[test]
fn scenario_1_third_ack_may_carry_data() {
    let mut sim = Sim::new();
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    let client = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    // Data queued before the handshake completes rides on the first segments after it.
    assert_eq!(sim.a.tcp_send(sim.now, client, b"GET /").unwrap(), 5);
    sim.run_for(Duration::from_millis(10));
    let server = sim.b.tcp_accept(listener).unwrap().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sim.b.tcp_recv(sim.now, server, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"GET /");
}

#[test]
fn scenario_2_hello_world_and_fin() {
    let mut sim = Sim::new();
    let (client, server) = connected(&mut sim);
    sim.b.tcp_set_nodelay(sim.now, server, true).unwrap();
    sim.b.tcp_send(sim.now, server, b"hello").unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.b.tcp_send(sim.now, server, b"world").unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    let from_server: Vec<_> = relative(&sim)
        .into_iter()
        .filter(|s| !s.0 && (s.4 > 0 || s.1.fin()))
        .collect();
    assert_eq!(
        from_server,
        vec![
            (false, PSH | ACK, 1, 1, 5),
            (false, PSH | ACK, 6, 1, 5),
            (false, FIN | ACK, 11, 1, 0)
        ],
        "hello at 1, world at 6, FIN at 11"
    );
    let mut buf = [0u8; 32];
    assert_eq!(sim.a.tcp_recv(sim.now, client, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"helloworld");
    assert_eq!(
        sim.a.tcp_recv(sim.now, client, &mut buf).unwrap(),
        0,
        "end of stream"
    );
}

#[test]
fn scenario_3_four_way_close_and_time_wait() {
    let mut sim = Sim::new();
    let (client, server) = connected(&mut sim);
    let start = sim.now;
    // The client closes first: FIN-WAIT-1, then FIN-WAIT-2 once acknowledged.
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    assert_eq!(sim.a.tcp_state(client), Some(State::FinWait1));
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_state(client), Some(State::FinWait2));
    assert_eq!(sim.b.tcp_state(server), Some(State::CloseWait));
    // The server closes: LAST-ACK, then CLOSED; the client enters TIME-WAIT.
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_state(client), Some(State::TimeWait));
    let tail: Vec<_> = relative(&sim).into_iter().skip(3).collect();
    assert_eq!(
        tail,
        vec![
            (true, FIN | ACK, 1, 1, 0),
            (false, ACK, 1, 2, 0),
            (false, FIN | ACK, 1, 2, 0),
            (true, ACK, 2, 2, 0)
        ]
    );
    // TIME-WAIT lasts 2·MSL = 60 s.
    let entered = sim
        .events_a
        .iter()
        .find_map(|(t, e)| {
            matches!(
                e,
                Event::StateChanged {
                    to: State::TimeWait,
                    ..
                }
            )
            .then_some(*t)
        })
        .unwrap();
    sim.run_until(entered + Duration::from_secs(60) - Duration::from_millis(1));
    assert_eq!(sim.a.tcp_state(client), Some(State::TimeWait));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.a.tcp_state(client), Some(State::Closed));
    assert!(sim.events_a.iter().any(|(_, e)| matches!(
        e,
        Event::StateChanged {
            to: State::Closed,
            cause: Cause::TimeWaitExpired,
            ..
        }
    )));
    let _ = start;
}

#[test]
fn scenario_3_three_way_close_when_fin_and_ack_combine() {
    let mut sim = Sim::new();
    let (client, server) = connected(&mut sim);
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    // The server closes at once, before its delayed ACK fires: FIN and ACK in one segment.
    sim.run_for(Duration::from_millis(1));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    let tail: Vec<_> = relative(&sim).into_iter().skip(3).collect();
    assert_eq!(
        tail,
        vec![
            (true, FIN | ACK, 1, 1, 0),
            (false, FIN | ACK, 1, 2, 0),
            (true, ACK, 2, 2, 0)
        ]
    );
    assert_eq!(sim.a.tcp_state(client), Some(State::TimeWait));
}

#[test]
fn scenario_3_simultaneous_close_through_closing() {
    let mut sim = Sim::with_links(
        LinkConfig {
            delay: Duration::from_millis(10),
            ..LinkConfig::default()
        },
        LinkConfig {
            delay: Duration::from_millis(10),
            ..LinkConfig::default()
        },
        1,
    );
    let (client, server) = connected(&mut sim);
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(15));
    let closing = |events: &[(Instant, Event)]| {
        events.iter().any(|(_, e)| {
            matches!(
                e,
                Event::StateChanged {
                    to: State::Closing,
                    ..
                }
            )
        })
    };
    assert!(
        closing(&sim.events_a) && closing(&sim.events_b),
        "both FINs crossed: CLOSING on both sides"
    );
    sim.run_for(Duration::from_millis(50));
    let time_wait = |events: &[(Instant, Event)]| {
        events.iter().any(|(_, e)| {
            matches!(
                e,
                Event::StateChanged {
                    from: State::Closing,
                    to: State::TimeWait,
                    ..
                }
            )
        })
    };
    assert!(time_wait(&sim.events_a) && time_wait(&sim.events_b));
}

#[test]
fn scenario_4_connect_to_a_closed_port_is_refused() {
    let mut sim = Sim::new();
    let client = sim.a.tcp_connect(sim.now, b_addr(81), None).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        relative(&sim)
            .iter()
            .map(|s| (s.0, s.1))
            .collect::<Vec<_>>(),
        vec![(true, SYN), (false, RST | ACK)]
    );
    assert!(
        sim.events_a
            .iter()
            .any(|(_, e)| *e == Event::Error(client, ConnError::Refused))
    );
    let mut buf = [0u8; 4];
    assert_eq!(
        sim.a.tcp_recv(sim.now, client, &mut buf),
        Err(TcpError::Connection(ConnError::Refused))
    );
}

#[test]
fn scenario_5_connect_to_a_host_that_is_down_times_out_at_63_s() {
    // The host's link answers ARP, but no TCP segment ever reaches it.
    let down = LinkConfig {
        rules: vec![Rule::every(matches::tcp(), Action::Drop)],
        ..LinkConfig::default()
    };
    let mut sim = Sim::with_links(down, LinkConfig::default(), 1);
    let client = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    sim.run_for(Duration::from_secs(100));
    let syns: Vec<u64> = sim
        .segments
        .iter()
        .filter(|s| s.flags == SYN)
        .map(|s| s.at.as_micros() / 1_000_000)
        .collect();
    assert_eq!(
        syns,
        vec![0, 1, 3, 7, 15, 31],
        "sent again after 1, 2, 4, 8, 16 s"
    );
    let failed = sim
        .events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Error(client, ConnError::TimedOut)).then_some(*t));
    assert_eq!(
        failed,
        Some(Instant::from_secs(63)),
        "32 s after the last SYN"
    );
}

#[test]
fn scenario_6_handshake_completes_before_accept_and_data_waits() {
    let mut sim = Sim::new();
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    let client = sim.a.tcp_connect(sim.now, b_addr(80), None).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.a.tcp_state(client),
        Some(State::Established),
        "no accept needed"
    );
    sim.a.tcp_send(sim.now, client, b"early data").unwrap();
    sim.run_for(Duration::from_secs(1));
    // The application accepts only now, and finds the data.
    assert!(
        sim.events_b
            .iter()
            .any(|(_, e)| *e == Event::Acceptable(listener))
    );
    let server = sim.b.tcp_accept(listener).unwrap().unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(sim.b.tcp_recv(sim.now, server, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"early data");
    let info = sim.b.tcp_info(server).unwrap();
    assert_eq!(info.state, State::Established);
}
