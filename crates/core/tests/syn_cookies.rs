//! SYN cookies (RFC 4987 §3.6) on a virtual clock: the test plays the peer, frame by frame.

mod common;

use std::time::Duration;

use common::*;
use rawtcp_core::{Config, DropReason, Event, Instant, ListenerId, Stack, State};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum};

const PORT: u16 = 80;
const PEER_PORT: u16 = 40000;
const PEER_ISN: u32 = 0x1000_0000;

/// B listening on port 80 with a SYN queue of `syn_backlog`, having learned A's MAC.
fn server(syn_backlog: usize, tweak: impl FnOnce(&mut Config)) -> (Stack, ListenerId) {
    let mut config = config(B_MAC, B_IP, 7);
    config.tcp.syn_backlog = syn_backlog;
    tweak(&mut config);
    let mut stack = Stack::new(config);
    let listener = stack.tcp_listen(b_addr(PORT), None).unwrap();
    stack.handle_frame(
        Instant::ZERO,
        &arp_request(HOST_A, B_IP),
        RxChecksum::Verify,
    );
    let _ = sent_segments(&mut stack, Instant::ZERO);
    (stack, listener)
}

fn deliver(stack: &mut Stack, now: Instant, segment: &TcpRepr<'_>) -> Vec<Sent> {
    stack.handle_frame(now, &tcp_frame(HOST_A, HOST_B, segment), RxChecksum::Verify);
    sent_segments(stack, now)
}

/// Linux's SYN: MSS 1460, window scale 7, SACK-permitted, timestamps.
fn linux_syn(port: u16) -> TcpRepr<'static> {
    TcpRepr {
        options: TcpOptions {
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some(Timestamps {
                tsval: 5000,
                tsecr: 0,
            }),
            ..TcpOptions::default()
        },
        ..segment(
            port,
            PORT,
            TcpFlags::SYN,
            SeqNum::new(PEER_ISN),
            SeqNum::new(0),
            &[],
        )
    }
}

/// The ACK completing a handshake whose SYN-ACK was `syn_ack`, echoing its timestamp.
fn third<'a>(syn_ack: &Sent, flags: TcpFlags, payload: &'a [u8]) -> TcpRepr<'a> {
    TcpRepr {
        window_len: 1000,
        options: TcpOptions {
            timestamps: syn_ack.options.timestamps.map(|ts| Timestamps {
                tsval: 5001,
                tsecr: ts.tsval,
            }),
            ..TcpOptions::default()
        },
        ..segment(
            syn_ack.dst_port,
            PORT,
            flags,
            SeqNum::new(PEER_ISN + 1),
            syn_ack.seq + 1,
            payload,
        )
    }
}

fn only(mut sent: Vec<Sent>) -> Sent {
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent.remove(0)
}

fn accepted(stack: &mut Stack, listener: ListenerId) -> rawtcp_core::ConnectionId {
    let mut acceptable = false;
    while let Some(event) = stack.poll_event() {
        acceptable |= event == Event::Acceptable(listener);
    }
    assert!(acceptable, "no Acceptable event");
    stack.tcp_accept(listener).unwrap().expect("a connection")
}

#[test]
fn a_full_syn_queue_answers_with_a_cookie_and_keeps_no_state() {
    let (mut b, _) = server(1, |_| {});
    let now = Instant::ZERO;
    // The first SYN fills the queue and gets an ordinary SYN-ACK; the second a cookie.
    let first = only(deliver(&mut b, now, &linux_syn(PEER_PORT)));
    assert_eq!(first.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(b.tcp_memory().connections, 1);
    let cookie = only(deliver(&mut b, now, &linux_syn(PEER_PORT + 1)));
    assert_eq!(cookie.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(cookie.ack, SeqNum::new(PEER_ISN + 1));
    assert_eq!(b.stats().syn_cookies_sent, 1);
    assert_eq!(b.tcp_memory().connections, 1, "no state for the cookie");
    assert_eq!(b.tcp_memory().half_open, 1);
    // Every option the SYN offered, and the option bits in the low six of the TSval.
    assert_eq!(cookie.options.max_seg_size, Some(1460));
    assert_eq!(cookie.options.window_scale, Some(3));
    assert!(cookie.options.sack_permitted);
    let ts = cookie.options.timestamps.expect("timestamps");
    assert_eq!(ts.tsecr, 5000);
    assert_eq!(ts.tsval & 0x3f, 7 | 0x10, "shift 7, SACK");
}

#[test]
fn a_cookie_syn_ack_is_never_retransmitted() {
    let (mut b, _) = server(0, |_| {});
    let _ = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    assert_eq!(b.poll_timeout(), None, "nothing to time");
    let later = Instant::ZERO + Duration::from_secs(30);
    b.handle_timeout(later);
    assert!(sent_segments(&mut b, later).is_empty());
}

#[test]
fn the_cookie_ack_creates_the_connection_with_the_options_of_the_syn() {
    let (mut b, listener) = server(0, |_| {});
    let now = Instant::ZERO + Duration::from_millis(3);
    let syn_ack = only(deliver(&mut b, now, &linux_syn(PEER_PORT)));
    let at = now + Duration::from_millis(1);
    assert!(deliver(&mut b, at, &third(&syn_ack, TcpFlags::ACK, &[])).is_empty());
    assert_eq!(b.stats().syn_cookies_accepted, 1);
    let id = accepted(&mut b, listener);
    let info = b.tcp_info(id).unwrap();
    assert_eq!(info.state, State::Established);
    assert_eq!(info.mss, 1460);
    assert_eq!(info.snd_wnd, 1000 << 7, "the peer's shift, from the TSecr");
    // The TSecr's low bits are options, not our clock: no RTT sample from it.
    assert_eq!(info.srtt, None);
    assert_eq!(info.snd_una, syn_ack.seq + 1);
    assert_eq!(info.rcv_nxt, SeqNum::new(PEER_ISN + 1));
    // Data goes out with timestamps echoing the peer's.
    assert_eq!(b.tcp_send(at, id, b"hi"), Ok(2));
    let data = only(sent_segments(&mut b, at));
    assert_eq!(data.payload, b"hi");
    assert_eq!(data.seq, syn_ack.seq + 1);
    assert_eq!(data.options.timestamps.map(|ts| ts.tsecr), Some(5001));
}

#[test]
fn without_timestamps_the_cookie_keeps_only_the_mss() {
    let (mut b, listener) = server(0, |_| {});
    let mut syn = linux_syn(PEER_PORT);
    syn.options.timestamps = None;
    syn.options.max_seg_size = Some(1400);
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &syn));
    // Neither window scale nor SACK can be remembered: neither is offered.
    assert_eq!(syn_ack.options.max_seg_size, Some(1460));
    assert_eq!(syn_ack.options.window_scale, None);
    assert!(!syn_ack.options.sack_permitted);
    assert_eq!(syn_ack.options.timestamps, None);
    let _ = deliver(&mut b, Instant::ZERO, &third(&syn_ack, TcpFlags::ACK, &[]));
    let id = accepted(&mut b, listener);
    let info = b.tcp_info(id).unwrap();
    assert_eq!(info.mss, 1380, "the table's entry below 1400");
    assert_eq!(info.snd_wnd, 1000, "unscaled");
}

#[test]
fn the_completing_ack_may_carry_data() {
    let (mut b, listener) = server(0, |_| {});
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    let _ = deliver(
        &mut b,
        Instant::ZERO,
        &third(&syn_ack, TcpFlags::ACK | TcpFlags::PSH, b"hello"),
    );
    let id = accepted(&mut b, listener);
    let mut buf = [0u8; 16];
    assert_eq!(b.tcp_recv(Instant::ZERO, id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn the_completing_ack_may_carry_a_fin() {
    let (mut b, listener) = server(0, |_| {});
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    let sent = deliver(
        &mut b,
        Instant::ZERO,
        &third(&syn_ack, TcpFlags::ACK | TcpFlags::FIN, b"bye"),
    );
    assert!(sent.is_empty());
    // The FIN is acknowledged after the delayed-ACK time (a close would ride on it).
    let ack = loop {
        let at = b.poll_timeout().expect("the delayed ACK");
        b.handle_timeout(at);
        let sent = sent_segments(&mut b, at);
        if !sent.is_empty() {
            assert!(at <= Instant::ZERO + Duration::from_millis(200));
            break only(sent);
        }
    };
    assert_eq!(ack.ack, SeqNum::new(PEER_ISN + 1 + 3 + 1));
    let id = accepted(&mut b, listener);
    assert_eq!(b.tcp_state(id), Some(State::CloseWait));
    let mut buf = [0u8; 16];
    assert_eq!(b.tcp_recv(Instant::ZERO, id, &mut buf), Ok(3));
    assert_eq!(
        b.tcp_recv(Instant::ZERO, id, &mut buf),
        Ok(0),
        "end of stream"
    );
}

#[test]
fn a_rst_or_a_syn_ack_never_creates_a_connection() {
    let (mut b, _) = server(0, |_| {});
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    for flags in [TcpFlags::RST, TcpFlags::RST | TcpFlags::ACK] {
        assert!(deliver(&mut b, Instant::ZERO, &third(&syn_ack, flags, &[])).is_empty());
    }
    // A SYN-ACK to a listener is answered with a reset (RFC 9293 §3.10.7.2).
    let reset = only(deliver(
        &mut b,
        Instant::ZERO,
        &third(&syn_ack, TcpFlags::SYN | TcpFlags::ACK, &[]),
    ));
    assert_eq!(reset.flags, TcpFlags::RST);
    assert_eq!(reset.seq, syn_ack.seq + 1);
    assert_eq!(b.tcp_memory().connections, 0);
    assert_eq!(b.stats().syn_cookies_accepted, 0);
}

#[test]
fn a_forged_cookie_is_answered_with_a_reset() {
    let (mut b, _) = server(0, |_| {});
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    let mut forged = third(&syn_ack, TcpFlags::ACK, &[]);
    forged.ack_number += 1;
    let reset = only(deliver(&mut b, Instant::ZERO, &forged));
    assert_eq!(reset.flags, TcpFlags::RST);
    assert_eq!(b.stats().drops(DropReason::SynCookieInvalid), 1);
    // An altered TSecr changes the option bits the MAC covers: refused too.
    let mut altered = third(&syn_ack, TcpFlags::ACK, &[]);
    if let Some(ts) = altered.options.timestamps.as_mut() {
        ts.tsecr ^= 0x10;
    }
    assert_eq!(
        only(deliver(&mut b, Instant::ZERO, &altered)).flags,
        TcpFlags::RST
    );
    assert_eq!(b.tcp_memory().connections, 0);
}

#[test]
fn a_cookie_outlives_one_rotation_but_not_two() {
    let rotation = Duration::from_secs(60);
    let (mut b, listener) = server(0, |c| c.tcp.syn_cookie_rotation = rotation);
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    let late = Instant::ZERO + rotation * 2 + Duration::from_secs(1);
    let reset = only(deliver(&mut b, late, &third(&syn_ack, TcpFlags::ACK, &[])));
    assert_eq!(reset.flags, TcpFlags::RST);
    // The next epoch still takes it (the previous secret is kept).
    let syn_ack = only(deliver(&mut b, late, &linux_syn(PEER_PORT + 1)));
    let next_epoch = late + rotation;
    assert!(deliver(&mut b, next_epoch, &third(&syn_ack, TcpFlags::ACK, &[])).is_empty());
    accepted(&mut b, listener);
}

#[test]
fn with_cookies_off_a_full_syn_queue_drops_the_syn() {
    let (mut b, _) = server(0, |c| c.tcp.syn_cookies = false);
    assert!(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)).is_empty());
    assert_eq!(b.stats().drops(DropReason::SynQueueFull), 1);
    assert_eq!(b.stats().syn_cookies_sent, 0);
}

#[test]
fn a_full_accept_queue_drops_the_cookie_ack_and_new_syns() {
    let (mut b, listener) = server(0, |c| c.tcp.backlog = 1);
    let first = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    let second = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT + 1)));
    let _ = deliver(&mut b, Instant::ZERO, &third(&first, TcpFlags::ACK, &[]));
    // The queue holds one: the second ACK is dropped without a reset, and so is a new SYN.
    assert!(deliver(&mut b, Instant::ZERO, &third(&second, TcpFlags::ACK, &[])).is_empty());
    assert!(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT + 2)).is_empty());
    assert_eq!(b.stats().drops(DropReason::AcceptQueueFull), 2);
    accepted(&mut b, listener);
    // Once accepted, the retransmitted ACK (the cookie still valid) gets in.
    assert!(deliver(&mut b, Instant::ZERO, &third(&second, TcpFlags::ACK, &[])).is_empty());
    assert_eq!(b.tcp_accept(listener).map(|c| c.is_some()), Ok(true));
}

#[test]
fn a_stack_connects_through_a_cookie_and_moves_data() {
    let mut sim = sim();
    // Every SYN gets a cookie.
    sim.b = Stack::new({
        let mut c = config(B_MAC, B_IP, 2);
        c.tcp.syn_backlog = 0;
        c
    });
    let (client, server) = connected_on(&mut sim, b_addr(PORT));
    assert_eq!(sim.b.stats().syn_cookies_accepted, 1);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let got = transfer(&mut sim, client, server, &data, Duration::from_secs(60));
    assert!(got == data, "byte-exact");
    // The options the cookie remembered are in force: SACK and window scaling.
    let info = sim.b.tcp_info(server).unwrap();
    assert!(info.snd_wnd > 65535, "scaled window");
}

#[test]
fn a_cookie_offers_the_shift_of_the_largest_buffer_autotuning_may_reach() {
    let (mut b, _) = server(0, |c| c.tcp.recv_buffer_max = 4 * 1024 * 1024);
    let syn_ack = only(deliver(&mut b, Instant::ZERO, &linux_syn(PEER_PORT)));
    assert_eq!(
        syn_ack.options.window_scale,
        Some(7),
        "4 MiB needs a shift of 7"
    );
    // A stack through such a cookie: the shift both sides use agrees, or the transfer stalls.
    let mut sim = sim();
    sim.b = Stack::new({
        let mut c = config(B_MAC, B_IP, 2);
        c.tcp.syn_backlog = 0;
        c.tcp.recv_buffer_max = 4 * 1024 * 1024;
        c
    });
    let (client, server) = connected_on(&mut sim, b_addr(PORT));
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    let got = transfer(&mut sim, client, server, &data, Duration::from_secs(60));
    assert!(got == data, "byte-exact");
}
