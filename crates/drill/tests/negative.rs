//! Negative controls: scripts that must fail, each for its own reason. A runner that passes
//! everything is worthless; these show that each kind of mismatch is caught and reported
//! with the script line, the expected and actual segment, and the virtual time.

use rawtcp_drill::{Options, Outcome, Verdict, run_script};

/// A passive open with data, correct in every detail; each control breaks one line.
const GOOD: &str = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+0    write(4, ..., 100) = 100
+0    > P. 1:101(100) ack 1
+.1   < . 1:1(0) ack 101 win 65535
+0    close(4) = 0
+0    > F. 101:101(0) ack 1
";

fn run(text: &str) -> Outcome {
    run_script(text, &Options::default())
}

/// Runs `GOOD` with `from` replaced by `to` and checks that it fails on `line` with a
/// message containing `reason`.
fn must_fail(from: &str, to: &str, line: usize, reason: &str) -> Outcome {
    assert!(GOOD.contains(from), "{from:?} is not in the script");
    let outcome = run(&GOOD.replacen(from, to, 1));
    assert_eq!(outcome.verdict, Verdict::Fail, "{from:?} → {to:?} passed");
    let report = outcome.report.clone().expect("a failure report");
    assert_eq!(report.line, Some(line), "{}", outcome.reason());
    assert!(
        report.message.contains(reason),
        "expected {reason:?} in {:?}",
        report.message
    );
    outcome
}

#[test]
fn the_good_script_passes() {
    let outcome = run(GOOD);
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.reason());
    assert_eq!(outcome.trace.len(), 6);
}

#[test]
fn a_wrong_flag_fails() {
    let outcome = must_fail(
        "> P. 1:101(100)",
        "> . 1:101(100)",
        9,
        "wrong flags: expected [.], got [P.]",
    );
    let report = outcome.report.expect("report");
    assert_eq!(report.expected.as_deref(), Some(". 1:101(100) ack 1"));
    assert_eq!(
        report.actual.as_deref(),
        Some("P. 1:101(100) ack 1 win 65535")
    );
    assert_eq!(report.time.as_micros(), 100_000);
}

#[test]
fn a_wrong_sequence_number_fails() {
    must_fail(
        "> F. 101:101(0)",
        "> F. 100:100(0)",
        12,
        "wrong sequence number: expected 100, got 101",
    );
}

#[test]
fn a_wrong_ack_number_fails() {
    must_fail(
        "> S. 0:0(0) ack 1",
        "> S. 0:0(0) ack 2",
        5,
        "wrong ack number: expected 2, got 1",
    );
}

#[test]
fn wrong_options_fail() {
    must_fail(
        "> S. 0:0(0) ack 1 <mss 1460>",
        "> S. 0:0(0) ack 1 <mss 1400>",
        5,
        "mss Some(1400) vs Some(1460)",
    );
    must_fail(
        "> S. 0:0(0) ack 1 <mss 1460>",
        "> S. 0:0(0) ack 1",
        5,
        "mss None vs Some(1460)",
    );
}

#[test]
fn a_wrong_window_fails() {
    must_fail(
        "> P. 1:101(100) ack 1",
        "> P. 1:101(100) ack 1 win 1000",
        9,
        "wrong window: expected 1000, got 65535",
    );
}

#[test]
fn a_missing_segment_fails() {
    // The script expects a segment the engine never sends: a second data segment.
    let text = format!("{GOOD}+0    > P. 101:201(100) ack 1\n");
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Fail);
    let report = outcome.report.expect("report");
    assert_eq!(report.line, Some(13));
    assert!(
        report.message.starts_with("missing outbound segment"),
        "{}",
        report.message
    );
    // It waited the whole tolerance (4 ms) for it.
    assert_eq!(report.time.as_micros(), 204_000);
}

#[test]
fn an_unexpected_extra_segment_fails() {
    // Without the line expecting the data segment, the segment is unexpected: it is
    // reported at the next line, the ACK that would acknowledge it.
    must_fail(
        "+0    > P. 1:101(100) ack 1\n",
        "",
        9,
        "unexpected outbound segment P. 1:101(100) ack 1",
    );
}

#[test]
fn a_segment_outside_the_tolerance_fails() {
    // The data goes out at 0.100 s; the script says 0.110 s, 10 ms later (tolerance 4 ms).
    let outcome = must_fail(
        "+0    > P. 1:101(100)",
        "+.01  > P. 1:101(100)",
        9,
        "timing error",
    );
    assert!(
        outcome
            .reason()
            .contains("at 0.110000s (tolerance 4000 µs), sent at 0.100000s"),
        "{}",
        outcome.reason()
    );
    // Expected earlier than it happens: the FIN goes out at 0.200 s, the script says
    // 0.195 s (5 ms early) with the write moved ahead.
    let outcome = must_fail(
        "+0    > F. 101:101(0) ack 1",
        "+.005 > F. 101:101(0) ack 1",
        12,
        "timing error",
    );
    assert!(
        outcome.reason().contains("sent at 0.200000s"),
        "{}",
        outcome.reason()
    );
    // Within the tolerance it passes.
    let within = GOOD.replacen("+0    > F. 101:101(0)", "+.003 > F. 101:101(0)", 1);
    assert_eq!(run(&within).verdict, Verdict::Pass);
}

#[test]
fn a_wrong_return_value_fails() {
    must_fail(
        "write(4, ..., 100) = 100",
        "write(4, ..., 100) = 99",
        8,
        "write() returned 100, expected 99",
    );
    must_fail(
        "bind(3, ..., ...) = 0",
        "bind(3, ..., ...) = 1",
        2,
        "bind() returned 0, expected 1",
    );
}

#[test]
fn descriptors_are_the_scripts_own() {
    // packetdrill maps the script's descriptors to live ones: a script may number from 4.
    let renumbered = GOOD
        .replace("(3,", "(4,")
        .replace("= 3\n", "= 4\n")
        .replace("(4, ..., 100)", "(7, ..., 100)")
        .replace("= 4\n+0    write", "= 7\n+0    write")
        .replace("close(4)", "close(7)");
    let outcome = run(&renumbered);
    assert_eq!(
        outcome.verdict,
        Verdict::Pass,
        "{}\n{renumbered}",
        outcome.reason()
    );
    // A descriptor the script never opened is EBADF.
    must_fail(
        "close(4) = 0",
        "close(5) = 0",
        11,
        "close() returned -1 EBADF, expected 0",
    );
}

#[test]
fn a_wrong_errno_fails() {
    // A read on a connection with nothing to read, non-blocking: EAGAIN, not ECONNRESET.
    let text = GOOD.replacen(
        "+0    write(4, ..., 100) = 100\n",
        "+0    fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n+0    read(4, ..., 10) = -1 ECONNRESET (Connection reset by peer)\n+0    write(4, ..., 100) = 100\n",
        1,
    );
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(
        outcome
            .reason()
            .contains("read() returned -1 EAGAIN, expected -1 ECONNRESET"),
        "{}",
        outcome.reason()
    );
    // And a success where the script expects an error.
    must_fail(
        "close(4) = 0",
        "close(4) = -1 EBADF (Bad file descriptor)",
        11,
        "close() returned 0, expected -1 EBADF",
    );
}

#[test]
fn a_call_that_blocks_past_its_time_fails() {
    // read() with nothing to read blocks; the script says it returns at once.
    let text = GOOD.replacen(
        "+0    close(4) = 0\n",
        "+0    read(4, ..., 10) = 10\n+.1   close(4) = 0\n",
        1,
    );
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Fail);
    let report = outcome.report.clone().expect("report");
    assert_eq!(report.line, Some(11));
    assert!(
        report
            .message
            .contains("read() expected to return at 0.200000s but still blocked at 0.204000s"),
        "{}",
        report.message
    );
}

#[test]
fn a_false_tcp_info_assertion_fails_and_an_unknown_one_skips() {
    let text = format!("{GOOD}%{{ assert tcpi_state == TCP_ESTABLISHED }}%\n");
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Fail, "{}", outcome.reason());
    assert!(
        outcome.reason().contains("tcpi_state = 4"),
        "{}",
        outcome.reason()
    );
    let text = format!("{GOOD}%{{ assert tcpi_snd_ssthresh == 7 }}%\n");
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Skip);
    assert!(
        outcome.reason().contains("tcpi_snd_ssthresh"),
        "{}",
        outcome.reason()
    );
}

#[test]
fn shell_commands_are_never_run_and_unknown_ones_skip() {
    let text = format!("`touch /tmp/rawtcp-drill-must-not-exist`\n{GOOD}");
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Skip);
    assert!(
        outcome
            .reason()
            .contains("touch /tmp/rawtcp-drill-must-not-exist")
    );
    assert!(!std::path::Path::new("/tmp/rawtcp-drill-must-not-exist").exists());
}

#[test]
fn a_parse_error_fails_with_its_line() {
    let outcome = run(&GOOD.replacen("> S. 0:0(0) ack 1", "> S. 0:0 ack 1", 1));
    assert_eq!(outcome.verdict, Verdict::Fail);
    let report = outcome.report.expect("report");
    assert_eq!(report.line, Some(5));
    assert!(
        report.message.starts_with("parse error"),
        "{}",
        report.message
    );
}

/// Three segments of 1000 bytes, sent back to back.
const BURST: &str = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1000>
+0    > S. 0:0(0) ack 1 <mss 1460>
+.1   < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+0    write(4, ..., 3000) = 3000
+0    > P. 1:3001(3000) ack 1
+.1   < . 1:1(0) ack 3001 win 65535
";

#[test]
fn consecutive_segments_merge_unless_strict() {
    let outcome = run(BURST);
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.reason());
    let strict = run_script(
        BURST,
        &Options {
            strict_segments: true,
            ..Options::default()
        },
    );
    assert_eq!(strict.verdict, Verdict::Fail);
    assert!(
        strict
            .reason()
            .contains("wrong flags: expected [P.], got [.]"),
        "{}",
        strict.reason()
    );
    // The script's own option line does the same.
    let outcome = run(&format!("--strict_segments\n{BURST}"));
    assert_eq!(outcome.verdict, Verdict::Fail);
    // A merge never covers a gap or more than the line: 2500 bytes is not a segment boundary.
    let outcome = run(&BURST.replace("> P. 1:3001(3000)", "> P. 1:2501(2500)"));
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(
        outcome
            .reason()
            .contains("wrong flags: expected [P.], got [.]"),
        "{}",
        outcome.reason()
    );
}

#[test]
fn the_linux_profile_takes_linuxs_choices() {
    // Linux scales its window by 8 for its default buffers and retries a SYN 6 times.
    let script = "\
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...127 connect(3, ..., ...) = -1 ETIMEDOUT (Connection timed out)
+0    > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 8>
+1    > S 0:0(0) <...>
+2    > S 0:0(0) <...>
+4    > S 0:0(0) <...>
+8    > S 0:0(0) <...>
+16   > S 0:0(0) <...>
+32   > S 0:0(0) <...>
";
    let linux = run_script(
        script,
        &Options {
            profile: rawtcp_drill::Profile::Linux,
            ..Options::default()
        },
    );
    assert_eq!(linux.verdict, Verdict::Pass, "{}", linux.reason());
    let rfc = run(script);
    assert_eq!(rfc.verdict, Verdict::Fail);
    assert!(
        rfc.reason().contains("wscale Some(8) vs Some(3)"),
        "{}",
        rfc.reason()
    );
}

#[test]
fn what_the_engine_cannot_do_skips_with_a_reason() {
    for (script, reason) in [
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [1000], 4) = 0\n",
            "setsockopt TCP_MAXSEG is not supported by the engine",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendto(3, ..., 1000, MSG_FASTOPEN, ..., ...) = 1000\n",
            "the engine has no TCP Fast Open",
        ),
        ("`sysctl -q net.ipv4.tcp_ecn=1`\n", "the engine has no ECN"),
        (
            "0 socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3\n",
            "only SOCK_STREAM",
        ),
        (
            "--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
            "only IPv4",
        ),
        (
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 100 <mss 1460,FO abcd1234>\n",
            "TCP option `FO abcd1234` is not supported",
        ),
    ] {
        let outcome = run(script);
        assert_eq!(
            outcome.verdict,
            Verdict::Skip,
            "{script}: {}",
            outcome.reason()
        );
        assert!(outcome.reason().contains(reason), "{}", outcome.reason());
    }
}

#[test]
fn calls_fail_as_linux_fails_them() {
    let script = "\
0  socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 read(3, ..., 10) = -1 ENOTCONN (Transport endpoint is not connected)
+0 write(3, ..., 10) = -1 EPIPE (Broken pipe)
+0 shutdown(3, SHUT_WR) = -1 ENOTCONN (Transport endpoint is not connected)
+0 accept(3, ..., ...) = -1 EINVAL (Invalid argument)
+0 bind(3, ..., ...) = 0
+0 bind(3, ..., ...) = -1 EINVAL (Invalid argument)
+0 listen(3, 1) = 0
+0 connect(3, ..., ...) = -1 EISCONN (Transport endpoint is already connected)
+0 read(3, ..., 10) = -1 EINVAL (Invalid argument)
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4
+0 bind(4, ..., ...) = -1 EADDRINUSE (Address already in use)
+0 close(9) = -1 EBADF (Bad file descriptor)
+0 < S 0:0(0) win 65535 <mss 1460>
+0 > S. 0:0(0) ack 1 <mss 1460>
+0 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 5
+0 < P. 1:11(10) ack 1 win 65535
+0 shutdown(5, SHUT_RD) = 0
+0 read(5, ..., 10) = 0
+0 listen(5, 1) = -1 EINVAL (Invalid argument)
";
    let outcome = run(script);
    assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.reason());
}

#[test]
fn tsvals_are_checked_only_with_a_tick() {
    let script = "\
--tcp_ts_tick_usecs=1000
0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460,TS val 500 ecr 0>
+0    > S. 0:0(0) ack 1 <mss 1460,TS val 100 ecr 500>
+.2   < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 700 ecr 100>
+0    accept(3, ..., ...) = 4
+0    write(4, ..., 10) = 10
+0    > P. 1:11(10) ack 1 <nop,nop,TS val 300 ecr 700>
";
    assert_eq!(
        run(script).verdict,
        Verdict::Pass,
        "{}",
        run(script).reason()
    );
    // 200 ms later at a 1 ms tick is 200 more, not 250.
    let wrong = script.replace("TS val 300 ecr 700", "TS val 350 ecr 700");
    let outcome = run(&wrong);
    assert_eq!(outcome.verdict, Verdict::Fail);
    assert!(
        outcome
            .reason()
            .contains("TS val moved 200000 µs since the first, the script says 250000 µs"),
        "{}",
        outcome.reason()
    );
    // Without the option, TSvals are not checked (packetdrill's default).
    let unchecked = wrong.replace("--tcp_ts_tick_usecs=1000\n", "");
    assert_eq!(run(&unchecked).verdict, Verdict::Pass);
}

#[test]
fn a_segment_later_than_the_tolerance_fails_saying_when_it_came() {
    // The retransmission comes on the RTO, 300 ms after the data; the script says 200 ms.
    let text = GOOD.replacen(
        "+.1   < . 1:1(0) ack 101 win 65535\n",
        "+.2   > P. 1:101(100) ack 1\n",
        1,
    );
    let outcome = run(&text);
    assert_eq!(outcome.verdict, Verdict::Fail);
    let report = outcome.report.expect("report");
    assert_eq!(report.line, Some(10));
    assert!(
        report
            .message
            .contains("nothing was sent by 0.304000s; it came late, at 0.400000s"),
        "{}",
        report.message
    );
    assert_eq!(
        report.actual.as_deref(),
        Some("P. 1:101(100) ack 1 win 65535")
    );
}
