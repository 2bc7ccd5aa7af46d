//! DESIGN.md scenario 12 through the runner: ISN = 4 µs clock + a keyed hash of the 4-tuple
//! (RFC 6528 §3). Relative sequence numbers hide the ISN from a script, so this test reads
//! the SYNs the runner captured.

use rawtcp_drill::{Options, Verdict, run_script};
use rawtcp_wire::RxChecksum;
use rawtcp_wire::dissect::{Network, Transport, dissect};

/// The sequence number of the first SYN of a script that connects at `at` to `port`.
fn isn(at: &str, port: u16) -> u32 {
    let script = format!(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, {{sa_family=AF_INET, sin_port=htons(40000), sin_addr=inet_addr(\"192.168.0.1\")}}, 16) = 0\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         {at} connect(3, {{sa_family=AF_INET, sin_port=htons({port}), sin_addr=inet_addr(\"192.0.2.1\")}}, 16) = -1 EINPROGRESS (Operation now in progress)\n\
         +0 > S 0:0(0) <...>\n"
    );
    let outcome = run_script(&script, &Options::default());
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.reason());
    outcome
        .wire
        .iter()
        .filter(|c| c.outbound)
        .find_map(
            |c| match dissect(&c.frame, RxChecksum::Verify).ok()?.network {
                Network::Ipv4 {
                    transport: Transport::Tcp(tcp),
                    ..
                } if tcp.flags.syn() => Some(tcp.seq_number.raw()),
                _ => None,
            },
        )
        .expect("a SYN on the wire")
}

#[test]
fn isn_advances_with_a_4_microsecond_clock() {
    let first = isn("0", 8080);
    // One second later, the same 4-tuple: 1 s / 4 µs = 250 000 more.
    assert_eq!(isn("1", 8080).wrapping_sub(first), 250_000);
    assert_eq!(isn("10.000004", 8080).wrapping_sub(first), 2_500_001);
}

#[test]
fn isn_depends_on_the_4_tuple() {
    // Another destination port at the same time: another hash, far from the first ISN.
    let distance = isn("0", 8081).wrapping_sub(isn("0", 8080));
    assert!(
        distance > 1_000_000 && distance < u32::MAX - 1_000_000,
        "{distance}"
    );
}
