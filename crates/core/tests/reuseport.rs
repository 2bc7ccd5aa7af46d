//! Several listeners on one port (SO_REUSEPORT) on a virtual clock.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rawtcp_core::{ConnError, ConnectionId, ListenOptions, ListenerId, State, TcpError};

const SHARED: ListenOptions = ListenOptions {
    backlog: None,
    reuse_port: true,
};

/// `count` connections from A to B's port 80 from ports 50000.., run until established.
fn connect_many(sim: &mut Sim, count: u16) -> Vec<ConnectionId> {
    let clients: Vec<ConnectionId> = (0..count)
        .map(|i| {
            sim.a
                .tcp_connect(sim.now, b_addr(80), Some(50000 + i))
                .unwrap()
        })
        .collect();
    assert!(sim.run_while(Duration::from_secs(5), |s| {
        clients
            .iter()
            .all(|&c| s.a.tcp_state(c) == Some(State::Established))
    }));
    clients
}

/// Accepts everything queued on `listener`: (connection, client port).
fn accept_all(sim: &mut Sim, listener: ListenerId) -> Vec<(ConnectionId, u16)> {
    let mut accepted = Vec::new();
    while let Some(id) = sim.b.tcp_accept(listener).unwrap() {
        accepted.push((id, sim.b.tcp_info(id).unwrap().remote.port()));
    }
    accepted
}

#[test]
fn a_port_is_shared_only_when_every_listener_asks() {
    let mut sim = sim();
    let plain = ListenOptions::default();
    let first = sim.b.tcp_listen_with(b_addr(80), SHARED).unwrap();
    let second = sim.b.tcp_listen_with(b_addr(80), SHARED).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        sim.b.tcp_listen_with(b_addr(80), plain),
        Err(TcpError::AddrInUse)
    );
    // 0.0.0.0 overlaps our address: allowed only when it shares too.
    let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 80);
    assert_eq!(sim.b.tcp_listen_with(any, plain), Err(TcpError::AddrInUse));
    assert!(sim.b.tcp_listen_with(any, SHARED).is_ok());
    // A port held without sharing refuses a sharing listener.
    sim.b.tcp_listen_with(b_addr(81), plain).unwrap();
    assert_eq!(
        sim.b.tcp_listen_with(b_addr(81), SHARED),
        Err(TcpError::AddrInUse)
    );
}

#[test]
fn connections_spread_across_the_listeners_by_a_hash_of_the_four_tuple() {
    let mut sim = sim();
    let listeners: Vec<ListenerId> = (0..4)
        .map(|_| sim.b.tcp_listen_with(b_addr(80), SHARED).unwrap())
        .collect();
    connect_many(&mut sim, 64);
    let mut by_listener = BTreeMap::new();
    for &listener in &listeners {
        let ports: Vec<u16> = accept_all(&mut sim, listener)
            .into_iter()
            .map(|(_, port)| port)
            .collect();
        by_listener.insert(listener, ports);
    }
    let counts: Vec<usize> = by_listener.values().map(Vec::len).collect();
    assert_eq!(counts.iter().sum::<usize>(), 64, "{counts:?}");
    assert!(counts.iter().all(|&n| n >= 4), "spread: {counts:?}");

    // The same seed, the same choice: a second run puts every tuple where the first did.
    let mut again = common::sim();
    let listeners_again: Vec<ListenerId> = (0..4)
        .map(|_| again.b.tcp_listen_with(b_addr(80), SHARED).unwrap())
        .collect();
    connect_many(&mut again, 64);
    for (&first, &second) in listeners.iter().zip(&listeners_again) {
        let ports: Vec<u16> = accept_all(&mut again, second)
            .into_iter()
            .map(|(_, port)| port)
            .collect();
        assert_eq!(ports, by_listener[&first]);
    }
}

#[test]
fn a_listener_going_away_resets_only_its_own_queued_connections() {
    let mut sim = sim();
    let first = sim.b.tcp_listen_with(b_addr(80), SHARED).unwrap();
    let second = sim.b.tcp_listen_with(b_addr(80), SHARED).unwrap();
    let clients = connect_many(&mut sim, 32);
    sim.b.tcp_unlisten(sim.now, first).unwrap();
    sim.run_for(Duration::from_millis(10));
    let survivors = accept_all(&mut sim, second);
    assert!(!survivors.is_empty() && survivors.len() < 32);
    let surviving_ports: Vec<u16> = survivors.iter().map(|&(_, port)| port).collect();
    for (i, &client) in clients.iter().enumerate() {
        let port = 50000 + i as u16;
        if surviving_ports.contains(&port) {
            assert_eq!(sim.a.tcp_state(client), Some(State::Established));
        } else {
            assert_eq!(
                sim.a.tcp_error(client),
                Some(ConnError::Reset),
                "port {port} was queued on the closed listener"
            );
        }
    }
    // The survivors work, and new connections all go to the listener left.
    let (server, _) = survivors[0];
    let client = clients[usize::from(surviving_ports[0] - 50000)];
    assert_eq!(sim.a.tcp_send(sim.now, client, b"still here"), Ok(10));
    sim.run_for(Duration::from_millis(10));
    let mut buf = [0u8; 16];
    assert_eq!(sim.b.tcp_recv(sim.now, server, &mut buf), Ok(10));
    let late = sim.a.tcp_connect(sim.now, b_addr(80), Some(60000)).unwrap();
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.a.tcp_state(late), Some(State::Established));
    assert_eq!(accept_all(&mut sim, second).len(), 1);
}
