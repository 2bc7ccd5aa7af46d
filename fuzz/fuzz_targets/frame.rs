//! Arbitrary bytes as a whole Ethernet frame, parsed down to the TCP options, with and without
//! checksum verification. Whatever parses is emitted again and must parse again to the same
//! thing: the parser never panics, and parse and emit agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rawtcp_wire::RxChecksum;
use rawtcp_wire::dissect::{Dissection, Network, Transport, dissect};

/// The dissection as a re-emit must reproduce it: TCP options are laid out anew (unknown
/// kinds dropped, Linux's padding, SACK blocks that no longer fit left out), so the IPv4
/// payload length follows the re-emitted segment and only `keep` SACK blocks remain.
fn as_re_emitted(mut dissection: Dissection<'_>, keep: usize) -> Dissection<'_> {
    if let Network::Ipv4 { header, transport: transport @ Transport::Tcp(_) } = &mut dissection.network {
        if let Transport::Tcp(tcp) = transport {
            tcp.options.sack_blocks.truncate(keep);
        }
        header.payload_len = transport.buffer_len();
    }
    dissection
}

fn sack_len(dissection: &Dissection<'_>) -> usize {
    match &dissection.network {
        Network::Ipv4 { transport: Transport::Tcp(tcp), .. } => tcp.options.sack_blocks.len(),
        _ => 0,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let _ = dissect(bytes, RxChecksum::Verify);
    let Ok(first) = dissect(bytes, RxChecksum::Trusted) else {
        return;
    };
    let _ = first.to_string();
    let mut out = vec![0u8; first.buffer_len()];
    first.emit(&mut out);
    let second = dissect(&out, RxChecksum::Verify).expect("an emitted frame parses, checksums included");
    let keep = sack_len(&second);
    // Reprs carry no checksums, so a re-emitted frame (fresh checksums everywhere, the quoted
    // header of an ICMP error included) must parse to exactly what the original did.
    assert_eq!(as_re_emitted(first, keep), second);
});
