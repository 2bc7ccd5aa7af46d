//! DESIGN.md's textbook scenarios, each as its own test, on a virtual clock: the exact
//! segments (flags, relative sequence and acknowledgment numbers, lengths), states and timer
//! schedules.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::link::{Action, LinkConfig, Rule, matches};
use rawtcp_core::{Cause, ConnError, ConnectionId, Event, Instant, State, TcpError};
use rawtcp_wire::tcp::TcpFlags;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

/// When the first state change that `accept(from, to, cause)` takes happened, if one did.
fn changed(
    events: &[(Instant, Event)],
    accept: impl Fn(State, State, Cause) -> bool,
) -> Option<Instant> {
    events.iter().find_map(|(t, e)| match e {
        Event::StateChanged {
            from, to, cause, ..
        } => accept(*from, *to, *cause).then_some(*t),
        _ => None,
    })
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
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
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
fn scenario_1_the_syn_ack_window_is_not_scaled() {
    // RFC 7323 §2.2: a <SYN,ACK>'s window field is taken as is, though both sides agreed on
    // a shift of 3. Until the server sends again, the client's send window is that field.
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    let syn_ack = &sim.segments[1];
    assert!(syn_ack.flags.contains(SYN | ACK));
    let info = sim.a.tcp_info(client).unwrap();
    assert_eq!(info.snd_wnd, u32::from(syn_ack.window));
}

#[test]
fn scenario_1_third_ack_may_carry_data() {
    let mut sim = sim();
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
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
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
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
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
    let entered = changed(&sim.events_a, |_, to, _| to == State::TimeWait).unwrap();
    sim.run_until(entered + Duration::from_secs(60) - Duration::from_millis(1));
    assert_eq!(sim.a.tcp_state(client), Some(State::TimeWait));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.a.tcp_state(client), Some(State::Closed));
    assert!(
        changed(&sim.events_a, |_, to, cause| to == State::Closed
            && cause == Cause::TimeWaitExpired)
        .is_some()
    );
    let _ = start;
}

#[test]
fn scenario_3_three_way_close_when_fin_and_ack_combine() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
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
    let mut sim = sim_with_links(
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
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(15));
    let closing =
        |events: &[(Instant, Event)]| changed(events, |_, to, _| to == State::Closing).is_some();
    assert!(
        closing(&sim.events_a) && closing(&sim.events_b),
        "both FINs crossed: CLOSING on both sides"
    );
    sim.run_for(Duration::from_millis(50));
    let time_wait = |events: &[(Instant, Event)]| {
        changed(events, |from, to, _| {
            from == State::Closing && to == State::TimeWait
        })
        .is_some()
    };
    assert!(time_wait(&sim.events_a) && time_wait(&sim.events_b));
}

#[test]
fn scenario_4_connect_to_a_closed_port_is_refused() {
    let mut sim = sim();
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
    let mut sim = sim_with_links(down, LinkConfig::default(), 1);
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
    let mut sim = sim();
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

// ---- Scenario 7: each handshake and teardown segment lost in turn ----

/// Segments with exactly these flags and no payload.
fn bare(flags: TcpFlags) -> rawtcp_core::link::Matcher {
    use rawtcp_wire::RxChecksum;
    use rawtcp_wire::dissect::{Network, Transport, dissect};
    std::sync::Arc::new(move |frame: &[u8]| {
        match dissect(frame, RxChecksum::Trusted).map(|d| d.network) {
            Ok(Network::Ipv4 {
                transport: Transport::Tcp(tcp),
                ..
            }) => tcp.flags == flags && tcp.payload.is_empty(),
            _ => false,
        }
    })
}

fn drop_nth(nth: u64, matcher: rawtcp_core::link::Matcher) -> LinkConfig {
    LinkConfig {
        rules: vec![Rule::new(nth, matcher, Action::Drop)],
        ..LinkConfig::default()
    }
}

/// Opens, exchanges a byte each way, closes from A then B, and runs until both are done.
/// Returns the time the connection was established on both sides and the end states.
fn open_and_close(
    a_to_b: LinkConfig,
    b_to_a: LinkConfig,
) -> (Sim, Instant, ConnectionId, ConnectionId) {
    let mut sim = sim_with_links(a_to_b, b_to_a, 1);
    let listener = sim.b.tcp_listen(b_addr(80), None).unwrap();
    let client = sim.a.tcp_connect(sim.now, b_addr(80), Some(49152)).unwrap();
    assert!(sim.run_while(Duration::from_secs(30), |s| {
        s.events_b
            .iter()
            .any(|(_, e)| *e == Event::Acceptable(listener))
            && s.a.tcp_state(client) == Some(State::Established)
    }));
    let established = sim.now;
    let server = sim.b.tcp_accept(listener).unwrap().unwrap();
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(500));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_secs(200));
    (sim, established, client, server)
}

fn closed_cleanly(sim: &Sim, client: ConnectionId, server: ConnectionId) {
    // Both handles were given up at close; the connections are gone after TIME-WAIT.
    assert!(sim.a.connections().is_empty(), "{:?}", sim.a.connections());
    assert!(sim.b.connections().is_empty(), "{:?}", sim.b.connections());
    let closed =
        |events: &[(Instant, Event)], id| events.iter().any(|(_, e)| *e == Event::Closed(id));
    assert!(closed(&sim.events_a, client) && closed(&sim.events_b, server));
    assert!(
        !sim.events_a
            .iter()
            .chain(&sim.events_b)
            .any(|(_, e)| matches!(e, Event::Error(..)))
    );
}

#[test]
fn scenario_7_lost_syn_is_retransmitted_after_1_s() {
    let (sim, established, client, server) =
        open_and_close(drop_nth(1, bare(SYN)), LinkConfig::default());
    assert_eq!(
        sim.segments
            .iter()
            .filter(|s| s.flags == SYN)
            .map(|s| s.at)
            .collect::<Vec<_>>(),
        vec![Instant::ZERO, Instant::from_secs(1)]
    );
    assert!(established >= Instant::from_secs(1) && established < Instant::from_millis(1100));
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_syn_ack_is_sent_again() {
    let (sim, established, client, server) =
        open_and_close(LinkConfig::default(), drop_nth(1, bare(SYN | ACK)));
    let syn_acks: Vec<Instant> = sim
        .segments
        .iter()
        .filter(|s| s.flags == SYN | ACK)
        .map(|s| s.at)
        .collect();
    assert_eq!(syn_acks.len(), 2, "{syn_acks:?}");
    assert!(established < Instant::from_millis(1100));
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_third_ack_is_recovered() {
    let (sim, established, client, server) =
        open_and_close(drop_nth(1, bare(ACK)), LinkConfig::default());
    // The server retransmits its SYN-ACK after 1 s; the client answers it again.
    assert_eq!(
        sim.segments.iter().filter(|s| s.flags == SYN | ACK).count(),
        2
    );
    assert!(established >= Instant::from_secs(1) && established < Instant::from_millis(1100));
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_first_fin_is_retransmitted() {
    let (sim, _, client, server) =
        open_and_close(drop_nth(1, bare(FIN | ACK)), LinkConfig::default());
    let fins: Vec<&Seg> = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.flags.fin())
        .collect();
    assert_eq!(fins.len(), 2);
    assert_eq!(fins[1].seq, fins[0].seq);
    assert!(fins[1].at - fins[0].at >= Duration::from_millis(200));
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_ack_of_the_first_fin_is_recovered() {
    // The server's first bare ACK after the handshake acknowledges the client's FIN.
    let (sim, _, client, server) = open_and_close(LinkConfig::default(), drop_nth(1, bare(ACK)));
    assert_eq!(
        sim.segments
            .iter()
            .filter(|s| s.from_a && s.flags.fin())
            .count(),
        2,
        "the client sent its FIN again"
    );
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_second_fin_is_retransmitted() {
    let (sim, _, client, server) =
        open_and_close(LinkConfig::default(), drop_nth(1, bare(FIN | ACK)));
    assert_eq!(
        sim.segments
            .iter()
            .filter(|s| !s.from_a && s.flags.fin())
            .count(),
        2
    );
    closed_cleanly(&sim, client, server);
}

#[test]
fn scenario_7_lost_last_ack_time_wait_acks_again_and_restarts() {
    // The client's second bare ACK is the last one (the first ends the handshake).
    let (sim, _, client, server) = open_and_close(drop_nth(2, bare(ACK)), LinkConfig::default());
    let server_fins: Vec<Instant> = sim
        .segments
        .iter()
        .filter(|s| !s.from_a && s.flags.fin())
        .map(|s| s.at)
        .collect();
    assert_eq!(server_fins.len(), 2);
    // TIME-WAIT restarted at the retransmitted FIN: it ends 60 s after it, not after the first.
    let restart = changed(&sim.events_a, |_, _, cause| {
        cause == Cause::FinRetransmitted
    })
    .unwrap();
    assert_eq!(restart, server_fins[1]);
    let closed = sim
        .events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Closed(client)).then_some(*t))
        .unwrap();
    assert_eq!(closed, restart + Duration::from_secs(60));
    closed_cleanly(&sim, client, server);
}

// ---- Scenario 8: keepalive ----

#[test]
fn scenario_8_keepalive_probes_then_closes_a_dead_peer() {
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    sim.a
        .tcp_set_keepalive(sim.now, client, Some(rawtcp_core::Keepalive::default()))
        .unwrap();
    let idle_from = sim.now;
    sim.blackhole_tcp_to_b = true;
    sim.run_for(Duration::from_secs(3 * 3600));
    let probes: Vec<Duration> = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.at > idle_from && s.flags == ACK)
        .map(|s| s.at - idle_from)
        .collect();
    let expected: Vec<Duration> = (0..10)
        .map(|k| Duration::from_secs(7200 + 75 * k))
        .collect();
    assert_eq!(probes, expected, "first probe at 2 h, then every 75 s");
    let probe = sim
        .segments
        .iter()
        .find(|s| s.from_a && s.at > idle_from && s.flags == ACK)
        .unwrap();
    let handshake_ack = &sim.segments[2];
    assert_eq!(
        probe.seq,
        handshake_ack.seq.wrapping_sub(1),
        "a probe is SEG.SEQ = SND.NXT - 1"
    );
    let failed = sim
        .events_a
        .iter()
        .find_map(|(t, e)| (*e == Event::Error(client, ConnError::TimedOut)).then_some(*t))
        .unwrap();
    assert_eq!(
        failed - idle_from,
        Duration::from_secs(7200 + 750),
        "closed after the 10th unanswered probe"
    );
}

#[test]
fn scenario_8_a_live_peer_answers_keepalives() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a
        .tcp_set_keepalive(sim.now, client, Some(rawtcp_core::Keepalive::default()))
        .unwrap();
    sim.run_for(Duration::from_secs(5 * 3600));
    assert_eq!(sim.a.tcp_state(client), Some(State::Established));
    assert_eq!(sim.b.tcp_state(server), Some(State::Established));
    let probes = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.flags == ACK)
        .count()
        - 1;
    assert_eq!(probes, 2, "one probe per 2 h idle, each answered");
}

// ---- Scenario 9: FIN-WAIT-2 ----

#[test]
fn scenario_9_fin_wait_2_of_a_closed_socket_times_out_at_60_s() {
    let mut sim = sim();
    let (client, _server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(100));
    let entered = changed(&sim.events_a, |_, to, _| to == State::FinWait2).unwrap();
    sim.run_for(Duration::from_secs(120));
    let released = changed(&sim.events_a, |_, _, cause| cause == Cause::FinWait2Expired).unwrap();
    assert_eq!(released - entered, Duration::from_secs(60));
    assert!(sim.a.connections().is_empty());
}

#[test]
fn scenario_9_after_a_half_close_fin_wait_2_waits() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_shutdown(sim.now, client).unwrap();
    sim.run_for(Duration::from_secs(600));
    assert_eq!(sim.a.tcp_state(client), Some(State::FinWait2));
    // Reading goes on: the server can still send.
    sim.b.tcp_send(sim.now, server, b"late").unwrap();
    sim.run_for(Duration::from_secs(1));
    let mut buf = [0u8; 8];
    assert_eq!(sim.a.tcp_recv(sim.now, client, &mut buf).unwrap(), 4);
}

// ---- Scenario 10: MSS, window scaling, timestamps ----

#[test]
fn scenario_10_mss_is_the_smaller_offer_and_options_are_used() {
    let mut b = config(B_MAC, B_IP, 2);
    b.mtu = 1400;
    let mut sim = Sim::with_links(
        config(A_MAC, A_IP, 1),
        b,
        LinkConfig::default(),
        LinkConfig {
            mtu: 1400,
            ..LinkConfig::default()
        },
        1,
    );
    let (client, server) = connected_on(&mut sim, b_addr(80));
    assert_eq!(sim.segments[0].options.max_seg_size, Some(1460));
    assert_eq!(sim.segments[1].options.max_seg_size, Some(1360));
    assert_eq!(sim.a.tcp_info(client).unwrap().mss, 1360);
    assert_eq!(sim.b.tcp_info(server).unwrap().mss, 1360);
    let data = vec![7u8; 100_000];
    let mut sent = 0;
    while sent < data.len() {
        sent += sim.a.tcp_send(sim.now, client, &data[sent..]).unwrap();
        sim.run_for(Duration::from_millis(10));
    }
    let sizes: Vec<usize> = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.len > 0)
        .map(|s| s.len)
        .collect();
    // 1360 less the 12 bytes of the timestamps option every segment carries.
    assert!(
        sizes.iter().all(|&n| n <= 1348) && sizes.iter().filter(|&&n| n == 1348).count() >= 70,
        "{sizes:?}"
    );
    // Windows after the handshake are scaled by 2^3; every segment carries timestamps whose
    // TSecr echoes the peer's latest TSval.
    let last_b = sim.segments.iter().rev().find(|s| !s.from_a).unwrap();
    let last_a_before = sim
        .segments
        .iter()
        .rev()
        .find(|s| s.from_a && s.at <= last_b.at)
        .unwrap();
    assert!(
        u32::from(last_b.window) << 3 > 65535,
        "a scaled window above 64 KiB"
    );
    assert_eq!(
        last_b.options.timestamps.unwrap().tsecr,
        last_a_before.options.timestamps.unwrap().tsval
    );
}

// ---- Scenario 11: sliding window, cumulative ACK, out of order, duplicates, corruption ----

#[test]
fn scenario_11_data_survives_loss_duplication_reordering_and_corruption() {
    let faults = LinkConfig {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        corrupt: 0.05,
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(faults.clone(), faults, 7);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.trace = false;
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let received = transfer(&mut sim, client, server, &data, Duration::from_secs(3600));
    assert_eq!(received.len(), data.len());
    assert!(received == data, "bytes arrived intact and in order");
    let info = sim.a.tcp_info(client).unwrap();
    assert!(
        info.stats.retransmitted_segments > 0 && info.stats.duplicate_acks > 0,
        "{:?}",
        info.stats
    );
}

#[test]
fn scenario_11_a_lost_ack_is_covered_by_the_next() {
    // Lose the receiver's first two data ACKs: the third acknowledges everything before it.
    let b_to_a = LinkConfig {
        rules: vec![
            Rule::new(2, bare(ACK), Action::Drop),
            Rule::new(3, bare(ACK), Action::Drop),
        ],
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(LinkConfig::default(), b_to_a, 1);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    let data = vec![1u8; 6 * 1448];
    let received = transfer(&mut sim, client, server, &data, Duration::from_secs(10));
    assert_eq!(received.len(), data.len());
    assert!(received == data);
    assert_eq!(
        sim.a.tcp_info(client).unwrap().stats.retransmitted_segments,
        0,
        "no retransmission needed"
    );
}

// ---- Scenario 12: ISN ----

#[test]
fn scenario_12_isn_is_a_4_microsecond_clock_plus_a_keyed_hash() {
    let mut sim = sim();
    sim.b.tcp_listen(b_addr(80), None).unwrap();
    let first = sim.a.tcp_connect(sim.now, b_addr(80), Some(40000)).unwrap();
    sim.run_for(Duration::from_millis(10));
    sim.a.tcp_abort(sim.now, first).unwrap();
    sim.run_for(Duration::from_secs(1) - Duration::from_millis(10));
    let _second = sim.a.tcp_connect(sim.now, b_addr(80), Some(40000)).unwrap();
    sim.run_for(Duration::from_millis(10));
    let syns: Vec<u32> = sim
        .segments
        .iter()
        .filter(|s| s.flags == SYN)
        .map(|s| s.seq)
        .collect();
    assert_eq!(syns.len(), 2);
    assert_eq!(
        syns[1].wrapping_sub(syns[0]),
        250_000,
        "1 s of a 4 µs clock, same 4-tuple"
    );
    // Another port hashes elsewhere.
    let third = sim.a.tcp_connect(sim.now, b_addr(80), Some(40001)).unwrap();
    sim.run_for(Duration::from_millis(1));
    let isn3 = sim
        .segments
        .iter()
        .rev()
        .find(|s| s.flags == SYN)
        .unwrap()
        .seq;
    assert!(
        isn3.wrapping_sub(syns[1]).abs_diff(2_500) > 1_000_000,
        "keyed hash of the 4-tuple"
    );
    let _ = third;
}

// ---- More of RFC 9293 ----

#[test]
fn simultaneous_open_through_syn_received() {
    let delay = LinkConfig {
        delay: Duration::from_millis(10),
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(delay.clone(), delay, 1);
    let a = sim
        .a
        .tcp_connect(sim.now, b_addr(5000), Some(5001))
        .unwrap();
    let b = sim
        .b
        .tcp_connect(sim.now, std::net::SocketAddrV4::new(A_IP, 5001), Some(5000))
        .unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.a.tcp_state(a), Some(State::Established));
    assert_eq!(sim.b.tcp_state(b), Some(State::Established));
    let through = |events: &[(Instant, Event)]| {
        changed(events, |from, to, _| {
            from == State::SynSent && to == State::SynReceived
        })
        .is_some()
    };
    assert!(through(&sim.events_a) && through(&sim.events_b));
}

/// RFC 9293 §3.10.4, CLOSE in SYN-RECEIVED: "If no SENDs have been issued and there is no
/// pending data to send, then form a FIN segment and send it, and enter FIN-WAIT-1 state;
/// otherwise, queue for processing after entering ESTABLISHED state." The queued FIN used to
/// go out from ESTABLISHED, and its ACK changed no state.
#[test]
fn shutdown_in_syn_received_goes_on_to_fin_wait_1() {
    let delay = LinkConfig {
        delay: Duration::from_millis(10),
        ..LinkConfig::default()
    };
    let mut sim = sim_with_links(delay.clone(), delay, 1);
    let a = sim
        .a
        .tcp_connect(sim.now, b_addr(5000), Some(5001))
        .unwrap();
    let b = sim
        .b
        .tcp_connect(sim.now, std::net::SocketAddrV4::new(A_IP, 5001), Some(5000))
        .unwrap();
    assert!(sim.run_while(Duration::from_secs(1), |s| {
        s.a.tcp_state(a) == Some(State::SynReceived)
    }));
    sim.a.tcp_shutdown(sim.now, a).unwrap();
    sim.run_for(Duration::from_secs(2));
    let states: Vec<State> = sim
        .events_a
        .iter()
        .filter_map(|(_, e)| match e {
            Event::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            State::SynSent,
            State::SynReceived,
            State::Established,
            State::FinWait1,
            State::FinWait2
        ]
    );
    assert_eq!(sim.b.tcp_state(b), Some(State::CloseWait));
    let fins = sim.segments.iter().filter(|s| s.from_a && s.flags.fin());
    assert_eq!(fins.count(), 1, "one FIN, acknowledged at once");
}

#[test]
fn close_with_unread_data_sends_a_reset() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_send(sim.now, client, b"unread").unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert!(
        sim.segments.iter().any(|s| !s.from_a && s.flags.rst()),
        "RFC 2525: RST, not FIN"
    );
    assert!(
        sim.events_a
            .iter()
            .any(|(_, e)| *e == Event::Error(client, ConnError::Reset))
    );
    assert_eq!(
        sim.a.tcp_send(sim.now, client, b"x"),
        Err(TcpError::Connection(ConnError::Reset))
    );
}

#[test]
fn abort_resets_and_the_peer_sees_connection_reset() {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.b.tcp_abort(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(10));
    let mut buf = [0u8; 4];
    assert_eq!(
        sim.a.tcp_recv(sim.now, client, &mut buf),
        Err(TcpError::Connection(ConnError::Reset))
    );
    assert!(sim.b.connections().is_empty());
}

#[test]
fn zero_window_is_probed_until_it_opens() {
    let mut a = config(A_MAC, A_IP, 1);
    a.tcp.send_buffer = 64 * 1024;
    let mut b = config(B_MAC, B_IP, 2);
    b.tcp.recv_buffer = 8 * 1024;
    let mut sim = Sim::with_links(a, b, LinkConfig::default(), LinkConfig::default(), 1);
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.a.tcp_send(sim.now, client, &[9u8; 20_000]).unwrap();
    sim.run_for(Duration::from_secs(30));
    // The receiver's window is full and the application reads nothing: zero window probes.
    let info = sim.b.tcp_info(server).unwrap();
    assert_eq!(info.recv_queue, 8 * 1024);
    let probes = sim
        .segments
        .iter()
        .filter(|s| s.from_a && s.len == 0 && s.flags == ACK)
        .count();
    assert!(probes >= 3, "persist probes were sent: {probes}");
    assert_eq!(
        sim.a.tcp_state(client),
        Some(State::Established),
        "probing never gives up"
    );
    // The application reads; the window opens and the rest arrives.
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..200 {
        while let Ok(n) = sim.b.tcp_recv(sim.now, server, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        sim.run_for(Duration::from_millis(100));
    }
    assert_eq!(out.len(), 20_000);
}

/// A connection that the server (B) closed first, so B holds it in TIME-WAIT and A has
/// forgotten it.
fn server_closed_first() -> Sim {
    let mut sim = sim();
    let (client, server) = connected_on(&mut sim, b_addr(80));
    sim.b.tcp_close(sim.now, server).unwrap();
    sim.run_for(Duration::from_millis(100));
    sim.a.tcp_close(sim.now, client).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(server_states(&sim), vec![State::TimeWait]);
    sim
}

/// The states of B's connections (handles of released ones no longer answer).
fn server_states(sim: &Sim) -> Vec<State> {
    sim.b.connections().iter().map(|c| c.state).collect()
}

/// A server that closes first holds the 4-tuple in TIME-WAIT; a new SYN from the same client
/// port with a newer timestamp opens a new incarnation at once (RFC 6191 §2), with an ISN
/// above everything the old one sent (RFC 1122 §4.2.2.13), instead of waiting out 2·MSL or
/// a SYN retransmission.
#[test]
fn time_wait_on_the_server_gives_way_to_a_newer_syn() {
    let mut sim = server_closed_first();
    assert!(sim.a.connections().is_empty(), "the client's side is gone");
    let old_server_isn = sim
        .segments
        .iter()
        .find(|s| !s.from_a && s.flags.syn())
        .unwrap()
        .seq;

    sim.run_for(Duration::from_secs(1));
    let listener = sim.b.listeners()[0].0;
    let before = sim.segments.len();
    let again = sim.a.tcp_connect(sim.now, b_addr(80), Some(49152)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.a.tcp_state(again), Some(State::Established));
    assert_eq!(
        server_states(&sim),
        vec![State::Established],
        "the old incarnation is gone"
    );
    assert!(
        changed(&sim.events_b, |from, to, cause| from == State::TimeWait
            && to == State::Closed
            && cause == Cause::TimeWaitReused)
        .is_some()
    );
    let new: Vec<_> = sim.segments[before..].iter().collect();
    assert_eq!(
        new.iter().map(|s| (s.from_a, s.flags)).collect::<Vec<_>>(),
        vec![(true, SYN), (false, SYN | ACK), (true, ACK)],
        "one SYN, answered at once"
    );
    let new_server_isn = new[1].seq;
    assert!(
        new_server_isn.wrapping_sub(old_server_isn) as i32 > 65_535,
        "the new ISN is past the old incarnation's sequence space"
    );
    assert!(sim.b.tcp_accept(listener).unwrap().is_some());
}

/// A SYN that is not newer than the TIME-WAIT incarnation (an old duplicate: the first
/// SYN again, with its old timestamp and sequence number) does not open a connection: it is
/// answered with an ACK for the old incarnation (RFC 9293 §3.10.7.4, RFC 5961 §4), which the
/// client, having no such connection, resets; the reset does not end TIME-WAIT (RFC 1337,
/// the engine's default; Linux's tcp_rfc1337 = 0 would let it).
#[test]
fn time_wait_keeps_an_old_duplicate_syn_out() {
    use rawtcp_wire::RxChecksum;
    use rawtcp_wire::dissect::{Network, Transport, dissect};
    let mut sim = server_closed_first();
    let first_syn = sim
        .frames
        .iter()
        .find(|(_, from_a, frame)| {
            *from_a
                && matches!(
                    dissect(frame, RxChecksum::Trusted).map(|d| d.network),
                    Ok(Network::Ipv4 { transport: Transport::Tcp(tcp), .. }) if tcp.flags == SYN
                )
        })
        .map(|(_, _, frame)| frame.clone())
        .expect("the first SYN was traced");
    sim.run_for(Duration::from_secs(1));
    let listener = sim.b.listeners()[0].0;
    let before = sim.segments.len();
    sim.b.handle_frame(sim.now, &first_syn, RxChecksum::Verify);
    sim.run_for(Duration::from_millis(10));
    let answers: Vec<_> = sim.segments[before..]
        .iter()
        .map(|s| (s.from_a, s.flags))
        .collect();
    assert_eq!(answers, vec![(false, ACK), (true, RST)]);
    assert_eq!(sim.b.tcp_accept(listener).unwrap(), None);
    assert!(
        sim.b
            .connections()
            .iter()
            .any(|c| c.state == rawtcp_core::State::TimeWait),
        "the RST left TIME-WAIT running"
    );
    assert!(
        changed(&sim.events_b, |_, _, cause| cause == Cause::TimeWaitReused).is_none(),
        "no new incarnation"
    );
}
