//! What the in-memory facade tests share: the two addresses and a pair of stacks.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use rawtcp::Stack;
use rawtcp::netio::MemLinkEnd;

/// The server's address on the in-memory link.
pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// The client's address on the in-memory link.
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

/// A client stack on `left` and a server stack on `right`, started (a MemLink has no
/// address to probe, so `spawn` returns at once).
pub(crate) async fn stacks_on(left: MemLinkEnd, right: MemLinkEnd) -> (Stack, Stack) {
    let client = Stack::builder()
        .device(left)
        .ipv4(CLIENT, 24)
        .spawn()
        .await
        .expect("a MemLink stack starts");
    let server = Stack::builder()
        .device(right)
        .ipv4(SERVER, 24)
        .spawn()
        .await
        .expect("a MemLink stack starts");
    (client, server)
}
