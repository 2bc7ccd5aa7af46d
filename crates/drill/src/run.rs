//! The runner: one engine, the script's remote peer simulated around it, virtual time.
//!
//! Each event is run at its script time. Before it, the clock advances through the engine's
//! deadlines; every segment the engine sends lands in a queue that only an outbound line may
//! take, so a segment no line expects is a failure at once. An outbound line waits, deadline
//! by deadline, until a segment appears or its tolerance has passed. Relative times follow
//! packetdrill: an inbound packet after an inbound packet is anchored to the previous one's
//! script time, anything else to the moment the previous event actually happened.
//!
//! Sequence numbers: inbound lines carry the peer's numbers as they are; outbound sequence
//! numbers and inbound acknowledgment numbers (and inbound SACK blocks) are relative to our
//! ISN, learned from our first SYN. Inbound `TS ecr` values are mapped to the TSvals really
//! sent; outbound TSvals are not checked, outbound TSecr values are.

use core::fmt::Write as _;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use rawtcp_core::{Config, Instant, Stack, State, VecSink};
use rawtcp_wire::arp::{ArpRepr, Operation};
use rawtcp_wire::dissect::{Dissection, Network, Transport, dissect};
use rawtcp_wire::ethernet::{EtherType, EthernetRepr};
use rawtcp_wire::icmpv4::{DstUnreachable, Icmpv4Repr, TimeExceeded};
use rawtcp_wire::ipv4::{IpProtocol, Ipv4Repr};
use rawtcp_wire::tcp::{TcpFlags, TcpOptions, TcpRepr, Timestamps};
use rawtcp_wire::{RxChecksum, SeqNum};

use crate::code::{self, CodeError};
use crate::parse::parse;
use crate::script::{
    Direction, Event, EventKind, IcmpLine, OptionsSpec, Script, TcpLine, TcpOptionSpec, Time,
};
use crate::setup::{self, Addresses, CommandEffect, KeepaliveDefaults, Profile, REMOTE_MAC};
use crate::socket::{CallState, Sockets};

/// How to run a script.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The engine's configuration profile.
    pub profile: Profile,
    /// Timing tolerance; `None` is the script's `--tolerance_usecs` or 4 ms.
    pub tolerance_usecs: Option<u64>,
    /// Never merge consecutive outbound segments to match one scripted segment.
    pub strict_segments: bool,
}

/// The verdict on one script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every event happened as scripted.
    Pass,
    /// Something did not.
    Fail,
    /// The script needs something this runner or the engine does not have.
    Skip,
}

/// Where and how a script failed or why it skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Script line (1-based), when one is to blame.
    pub line: Option<usize>,
    /// Virtual time when it happened.
    pub time: Instant,
    /// What went wrong.
    pub message: String,
    /// The scripted event, as written or as expected.
    pub expected: Option<String>,
    /// What the engine did instead.
    pub actual: Option<String>,
}

/// One segment or frame that crossed the simulated wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// When.
    pub at: Instant,
    /// Sent by the engine (`true`) or injected by the script.
    pub outbound: bool,
    /// The Ethernet frame.
    pub frame: Vec<u8>,
}

/// The result of [`run_script`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Pass, fail or skip.
    pub verdict: Verdict,
    /// Why it failed or skipped (`None` on a pass).
    pub report: Option<Report>,
    /// Every frame that crossed the wire, in order.
    pub wire: Vec<Crossing>,
    /// The segment trace, one line per TCP segment, as the `hello` example prints it: our
    /// sequence numbers relative to our ISN, the peer's as the script writes them.
    pub trace: Vec<String>,
}

impl Outcome {
    /// A one-line reason: `line N at T: message`.
    pub fn reason(&self) -> String {
        match &self.report {
            None => String::new(),
            Some(report) => {
                let mut text = String::new();
                if let Some(line) = report.line {
                    let _ = write!(text, "line {line} ");
                }
                let _ = write!(text, "at {}: {}", report.time, report.message);
                text
            }
        }
    }
}

/// Runs a script's text against a fresh engine.
///
/// # Examples
/// ```
/// use rawtcp_drill::{Options, Verdict, run_script};
///
/// let script = "
/// 0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
/// +0  bind(3, ..., ...) = 0
/// +0  listen(3, 1) = 0
/// +0  < S 0:0(0) win 65535 <mss 1460>
/// +0  > S. 0:0(0) ack 1 <mss 1460>
/// +.1 < . 1:1(0) ack 1 win 65535
/// +0  accept(3, ..., ...) = 4
/// ";
/// let outcome = run_script(script, &Options::default());
/// assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.reason());
///
/// // A wrong expectation fails, naming the line.
/// let wrong = script.replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2");
/// let outcome = run_script(&wrong, &Options::default());
/// assert_eq!(outcome.verdict, Verdict::Fail);
/// assert_eq!(outcome.report.unwrap().line, Some(6));
/// ```
pub fn run_script(text: &str, options: &Options) -> Outcome {
    let script = match parse(text) {
        Ok(script) => script,
        Err(error) => {
            return Outcome {
                verdict: Verdict::Fail,
                report: Some(Report {
                    line: Some(error.line),
                    time: Instant::ZERO,
                    message: format!("parse error: {}", error.message),
                    expected: None,
                    actual: None,
                }),
                wire: Vec::new(),
                trace: Vec::new(),
            };
        }
    };
    Runner::new(options).run(&script)
}

/// Why the run stopped early.
pub(crate) enum Stop {
    Fail(Report),
    Skip(Report),
}

pub(crate) type Step<T = ()> = Result<T, Stop>;

/// A segment the engine sent, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    at: Instant,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    window: u16,
    urgent: u16,
    len: u32,
    options: TcpOptions<'static>,
    /// Carried a Fast Open cookie (not kept in `options`).
    tfo: bool,
}

/// The connection the script's packet lines belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) local_port: u16,
    pub(crate) remote_port: u16,
}

pub(crate) struct Runner {
    pub(crate) profile: Profile,
    tolerance: u64,
    tolerance_fixed: bool,
    /// packetdrill's `--tolerance_percent`: the tolerance grows with the time since the
    /// previous event. 0 unless a script or the caller sets it: virtual time is exact.
    tolerance_percent: f64,
    /// `--mtu`, applied to the configuration.
    mtu: Option<usize>,
    /// `--tcp_ts_tick_usecs`: check outbound TSvals at this tick.
    ts_tick_usecs: Option<u32>,
    /// (script TSval, live TSval) of the first outbound segment with timestamps.
    ts_base: Option<(u32, u32)>,
    strict_segments: bool,
    pub(crate) addresses: Addresses,
    pub(crate) config: Config,
    pub(crate) keepalive: KeepaliveDefaults,
    pub(crate) stack: Option<Stack>,
    pub(crate) now: Instant,
    pub(crate) flow: Option<Flow>,
    local_isn: Option<u32>,
    /// Sequence number of the latest SYN we sent.
    last_syn_seq: Option<u32>,
    /// (script TSval, live TSval) of the latest outbound segments.
    ts_sent: VecDeque<(u32, u32)>,
    pending: VecDeque<Sent>,
    pub(crate) sockets: Sockets,
    /// Connections ready to accept, per listener (from the engine's events).
    pub(crate) acceptable: std::collections::BTreeMap<rawtcp_core::ListenerId, usize>,
    /// Blocked calls: (line, call, state, expected return time).
    blocked: Vec<Blocked>,
    /// The previous event: inbound packet, and its script time.
    last_event: Option<(bool, Instant)>,
    finished: bool,
    /// Rounds of timers run without the clock moving.
    stalled: u32,
    wire: Vec<Crossing>,
    /// Segments in both directions (formatted at the end, when our ISN is known) and notes.
    trace: Vec<TraceItem>,
}

enum TraceItem {
    Segment(Sent, bool),
    Text(String),
}

#[derive(Debug, Clone, Copy)]
struct EventTimes {
    /// The script's time for the event (a blocking call's start).
    at: Instant,
    /// Earliest and latest an outbound segment may be sent.
    earliest: Instant,
    latest: Instant,
    /// When a call must return.
    end: Instant,
}

struct Blocked {
    line: usize,
    call: crate::script::Syscall,
    state: CallState,
    end: Instant,
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

impl Runner {
    fn new(options: &Options) -> Runner {
        let addresses = Addresses::default();
        Runner {
            profile: options.profile,
            tolerance: options.tolerance_usecs.unwrap_or(4_000),
            tolerance_fixed: options.tolerance_usecs.is_some(),
            tolerance_percent: 0.0,
            mtu: None,
            ts_tick_usecs: None,
            ts_base: None,
            strict_segments: options.strict_segments,
            config: setup::base_config(options.profile, &addresses),
            addresses,
            keepalive: KeepaliveDefaults::for_profile(options.profile),
            stack: None,
            now: Instant::ZERO,
            flow: None,
            local_isn: None,
            last_syn_seq: None,
            ts_sent: VecDeque::new(),
            pending: VecDeque::new(),
            sockets: Sockets::default(),
            acceptable: std::collections::BTreeMap::new(),
            blocked: Vec::new(),
            last_event: None,
            finished: false,
            stalled: 0,
            wire: Vec::new(),
            trace: Vec::new(),
        }
    }

    pub(crate) fn report(&self, line: Option<usize>, message: impl Into<String>) -> Report {
        Report {
            line,
            time: self.now,
            message: message.into(),
            expected: None,
            actual: None,
        }
    }

    pub(crate) fn fail<T>(&self, line: usize, message: impl Into<String>) -> Step<T> {
        Err(Stop::Fail(self.report(Some(line), message)))
    }

    pub(crate) fn skip<T>(&self, line: usize, message: impl Into<String>) -> Step<T> {
        Err(Stop::Skip(self.report(Some(line), message)))
    }

    fn run(mut self, script: &Script) -> Outcome {
        let result = self.run_events(script);
        let (verdict, report) = match result {
            Ok(()) => (Verdict::Pass, None),
            Err(Stop::Fail(report)) => (Verdict::Fail, Some(report)),
            Err(Stop::Skip(report)) => (Verdict::Skip, Some(report)),
        };
        let trace = self
            .trace
            .iter()
            .map(|item| match item {
                TraceItem::Segment(sent, outbound) => self.trace_line(sent, *outbound),
                TraceItem::Text(text) => text.clone(),
            })
            .collect();
        Outcome {
            verdict,
            report,
            wire: self.wire,
            trace,
        }
    }

    fn run_events(&mut self, script: &Script) -> Step {
        for (line, name, value) in &script.options {
            self.script_option(*line, name, value)?;
        }
        self.config = setup::base_config(self.profile, &self.addresses);
        if let Some(mtu) = self.mtu {
            self.config.mtu = mtu;
        }
        self.keepalive = KeepaliveDefaults::for_profile(self.profile);
        for event in &script.events {
            self.event(event)?;
        }
        self.finished = true;
        // Calls still blocked get until their return time (plus tolerance) to return.
        while let Some(end) = self.blocked.iter().map(|b| b.end).min() {
            let limit = end + micros(self.tolerance as i64);
            self.advance_to(0, limit, true)?;
            if let Some(blocked) = self
                .blocked
                .iter()
                .find(|b| b.end + micros(self.tolerance as i64) <= self.now)
            {
                let line = blocked.line;
                let name = blocked.call.name.clone();
                return self.fail(line, format!("{name}() never returned"));
            }
        }
        Ok(())
    }

    fn script_option(&mut self, line: usize, name: &str, value: &str) -> Step {
        // `192.0.2.1/24`: the prefix says which addresses the peer may use; one is enough.
        let ip = |value: &str| value.split('/').next()?.parse::<Ipv4Addr>().ok();
        match name {
            "tolerance_usecs" => {
                if !self.tolerance_fixed {
                    match value.parse() {
                        Ok(tolerance) => self.tolerance = tolerance,
                        Err(_) => return self.fail(line, format!("bad --tolerance_usecs={value}")),
                    }
                }
            }
            "local_ip" | "remote_ip" | "gateway_ip" => {
                let Some(address) = ip(value) else {
                    return self.skip(
                        line,
                        format!("--{name}={value}: only IPv4 addresses are supported"),
                    );
                };
                match name {
                    "local_ip" => self.addresses.local = address,
                    "remote_ip" => self.addresses.remote = address,
                    _ => self.addresses.gateway = address,
                }
            }
            "ip_version" | "address_family" => {
                if !matches!(value, "ipv4" | "4" | "AF_INET") {
                    return self.skip(line, format!("--{name}={value}: only IPv4 is supported"));
                }
            }
            "bind_port" | "connect_port" => match value.parse() {
                Ok(port) if name == "bind_port" => self.addresses.bind_port = port,
                Ok(port) => self.addresses.connect_port = port,
                Err(_) => return self.fail(line, format!("bad --{name}={value}")),
            },
            "strict_segments" => self.strict_segments = true,
            "profile" => match Profile::from_name(value) {
                Some(profile) => self.profile = profile,
                None => return self.fail(line, format!("unknown profile `{value}`")),
            },
            "tolerance_percent" => match value.parse::<f64>() {
                Ok(percent) if (0.0..=100.0).contains(&percent) => self.tolerance_percent = percent,
                _ => return self.fail(line, format!("bad --tolerance_percent={value}")),
            },
            "mtu" => match value.parse::<usize>() {
                Ok(mtu) if (576..=65_535).contains(&mtu) => self.mtu = Some(mtu),
                _ => return self.skip(line, format!("--mtu={value} is outside 576..=65535")),
            },
            // packetdrill gives --mss to its tun device (for segmentation offload); the
            // engine's MSS follows its MTU, and segments injected here are never cut.
            "mss" => {}
            // With a tick, outbound TSvals are checked against the script's (packetdrill's
            // rule: how far each moved since the first); without, they are not.
            "tcp_ts_tick_usecs" => match value.parse::<u32>() {
                Ok(tick) if tick > 0 => self.ts_tick_usecs = Some(tick),
                _ => return self.fail(line, format!("bad --tcp_ts_tick_usecs={value}")),
            },
            "tcp_ts_ecr_scaled" => {}
            "netmask_ip" => match ip(value) {
                Some(mask) if u32::from(mask).leading_ones() == u32::from(mask).count_ones() => {
                    self.addresses.prefix_len = u32::from(mask).count_ones() as u8;
                }
                _ => return self.fail(line, format!("bad --netmask_ip={value}")),
            },
            // Output and environment options with no meaning in virtual time.
            "verbose" | "debug" | "non_fatal" | "dry_run" | "speed" | "is_anyip"
            | "send_omit_free" | "code_command" | "code_format" | "code_sockopt" => {}
            _ => return self.skip(line, format!("option --{name} is not supported")),
        }
        Ok(())
    }

    /// The engine, created on first use so that commands and buffer options before it
    /// shape its configuration.
    pub(crate) fn stack(&mut self) -> &mut Stack {
        let config = &self.config;
        self.stack.get_or_insert_with(|| Stack::new(config.clone()))
    }

    /// When an event happens and the window it may happen in.
    fn event_times(&self, event: &Event, inbound: bool) -> EventTimes {
        let anchor = match self.last_event {
            Some((true, at)) if inbound => at,
            _ => self.now,
        };
        let since = match event.time {
            Time::Absolute(t) => (Instant::ZERO + micros(t)).saturating_duration_since(self.now),
            Time::Relative(d) | Time::Range { start: d, .. } | Time::Blocking { start: d, .. } => {
                micros(d)
            }
            Time::Any => Duration::ZERO,
        };
        let dynamic = since.as_secs_f64() * self.tolerance_percent / 100.0;
        let tol = micros(self.tolerance as i64).max(Duration::from_secs_f64(dynamic));
        let point = |at: Instant| EventTimes {
            at,
            earliest: at - tol,
            latest: at + tol,
            end: at,
        };
        match event.time {
            Time::Absolute(t) => point(Instant::ZERO + micros(t)),
            Time::Relative(d) => point(anchor + micros(d)),
            Time::Any => EventTimes {
                latest: Instant::from_secs(1 << 40),
                ..point(self.now)
            },
            Time::Range {
                start,
                end,
                relative,
            } => {
                let base = if relative { anchor } else { Instant::ZERO };
                EventTimes {
                    latest: base + micros(end) + tol,
                    ..point(base + micros(start))
                }
            }
            Time::Blocking {
                start,
                end,
                relative,
            } => {
                // `+a...b`: both ends from the same anchor (packetdrill's rule).
                let base = if relative { anchor } else { Instant::ZERO };
                EventTimes {
                    end: base + micros(end),
                    ..point(base + micros(start))
                }
            }
        }
    }

    fn event(&mut self, event: &Event) -> Step {
        let inbound = matches!(
            &event.kind,
            EventKind::Tcp(TcpLine {
                direction: Direction::Inbound,
                ..
            }) | EventKind::Icmp(_)
        );
        let times = self.event_times(event, inbound);
        if let EventKind::Tcp(line) = &event.kind
            && line.direction == Direction::Outbound
        {
            self.expect_outbound(event.line, line, times)?;
            self.last_event = Some((false, times.at));
            return Ok(());
        }
        // An event the clock has passed (after a late outbound segment) happens now.
        let at = times.at.max(self.now);
        self.advance_to(event.line, at, false)?;
        self.check_unexpected(event.line)?;
        match &event.kind {
            EventKind::Tcp(line) => self.inject_tcp(event.line, line)?,
            EventKind::Icmp(line) => self.inject_icmp(event.line, line)?,
            EventKind::Syscall(call) => self.start_call(event.line, call, times.end.max(at))?,
            EventKind::Command(command) => self.command(event.line, command)?,
            EventKind::Code(code) => self.code(event.line, code)?,
        }
        self.transmit()?;
        self.poll_blocked()?;
        self.last_event = Some((inbound, at));
        Ok(())
    }

    fn command(&mut self, line: usize, command: &str) -> Step {
        // TcpConfig has no PartialEq: its Debug text tells whether a command changed it.
        let before = format!("{:?}", self.config.tcp);
        let mut config = self.config.clone();
        match setup::apply_command(command, &mut config, &mut self.keepalive) {
            CommandEffect::Applied => {
                if self.stack.is_some() && format!("{:?}", config.tcp) != before {
                    return self.skip(
                        line,
                        format!("`{command}` changes the configuration after the engine started"),
                    );
                }
                self.config = config;
                Ok(())
            }
            CommandEffect::Skip(reason) => self.skip(line, reason),
        }
    }

    fn code(&mut self, line: usize, code: &str) -> Step {
        let values = self.sockets.tcp_info_values(self);
        match code::evaluate(code, &values) {
            Ok(()) => Ok(()),
            Err(CodeError::Failed(message)) => self.fail(line, message),
            Err(CodeError::Unevaluable(reason)) => {
                self.skip(line, format!("%{{ }}% block not evaluable: {reason}"))
            }
        }
    }

    // ---- time and the wire ----

    /// Runs timers due before `until` (at `until` too when `inclusive`), then sets the clock
    /// to `until`. Stops early, with an error, when a segment no line expects appears or a
    /// blocked call passes its return time.
    fn advance_to(&mut self, line: usize, until: Instant, inclusive: bool) -> Step {
        loop {
            self.check_unexpected(line)?;
            self.check_blocked_overdue()?;
            let Some(deadline) = self.stack.as_ref().and_then(Stack::poll_timeout) else {
                break;
            };
            let due = if inclusive {
                deadline <= until
            } else {
                deadline < until
            };
            if !due {
                break;
            }
            self.fire_timers(line, deadline)?;
        }
        self.now = self.now.max(until);
        self.check_blocked_overdue()?;
        Ok(())
    }

    /// Runs the engine's timers at `deadline` and collects what they send. A deadline that
    /// does not move on after many rounds at the same instant is an engine bug, reported
    /// rather than looped on.
    fn fire_timers(&mut self, line: usize, deadline: Instant) -> Step {
        if deadline <= self.now {
            self.stalled += 1;
            if self.stalled > 10_000 {
                return self.fail(
                    line,
                    format!("the engine's next deadline stays at {deadline} after 10000 rounds"),
                );
            }
        } else {
            self.stalled = 0;
        }
        self.now = self.now.max(deadline);
        if let Some(stack) = self.stack.as_mut() {
            stack.handle_timeout(self.now);
        }
        self.transmit()?;
        self.poll_blocked()
    }

    /// A blocked call past its return time (plus tolerance) is a failure.
    fn check_blocked_overdue(&mut self) -> Step {
        let tol = micros(self.tolerance as i64);
        if let Some(blocked) = self.blocked.iter().find(|b| self.now > b.end + tol) {
            let (line, name, end) = (blocked.line, blocked.call.name.clone(), blocked.end);
            // Checked before each step: nothing happened between the end of the tolerance
            // and now, so the call was still blocked then.
            let mut report = self.report(
                Some(line),
                format!(
                    "{name}() expected to return at {end} but still blocked at {}",
                    end + tol
                ),
            );
            report.time = end + tol;
            return Err(Stop::Fail(report));
        }
        Ok(())
    }

    fn check_unexpected(&mut self, line: usize) -> Step {
        if self.finished {
            self.pending.clear();
            return Ok(());
        }
        if let Some(sent) = self.pending.front() {
            let text = self.describe_sent(sent);
            let at = sent.at;
            let mut report = self.report(
                (line != 0).then_some(line),
                format!(
                    "unexpected outbound segment {text} (the script expects none before this line)"
                ),
            );
            report.time = at;
            report.actual = Some(text);
            return Err(Stop::Fail(report));
        }
        Ok(())
    }

    /// Collects what the engine sends now: ARP requests are answered at once (the peer is
    /// always there), TCP segments are queued for the script to expect.
    pub(crate) fn transmit(&mut self) -> Step {
        for _ in 0..64 {
            let Some(stack) = self.stack.as_mut() else {
                return Ok(());
            };
            let mut sink = VecSink::new();
            let _ = stack.poll_transmit(self.now, &mut sink);
            if sink.frames.is_empty() {
                break;
            }
            for frame in sink.frames {
                self.outbound_frame(frame);
            }
        }
        self.drain_events();
        Ok(())
    }

    /// Takes the engine's events: the runner queries states directly, but counts the
    /// connections each listener has ready, which poll() on a listener reports.
    fn drain_events(&mut self) {
        let Some(stack) = self.stack.as_mut() else {
            return;
        };
        while let Some(event) = stack.poll_event() {
            if let rawtcp_core::Event::Acceptable(listener) = event {
                *self.acceptable.entry(listener).or_insert(0) += 1;
            }
        }
    }

    fn outbound_frame(&mut self, frame: Vec<u8>) {
        let mut reply = None;
        let mut sent = None;
        if let Ok(dissection) = dissect(&frame, RxChecksum::Verify) {
            match dissection.network {
                Network::Arp(request) if request.operation == Operation::Request => {
                    reply = Some(arp_reply(&request));
                }
                Network::Ipv4 {
                    header,
                    transport: Transport::Tcp(tcp),
                } => {
                    // Kept without the cookie, which borrows the frame; `tfo` records it.
                    let options = TcpOptions {
                        max_seg_size: tcp.options.max_seg_size,
                        window_scale: tcp.options.window_scale,
                        sack_permitted: tcp.options.sack_permitted,
                        sack_blocks: tcp.options.sack_blocks,
                        timestamps: tcp.options.timestamps,
                        tfo_cookie: None,
                    };
                    sent = Some(Sent {
                        at: self.now,
                        src: SocketAddrV4::new(header.src_addr, tcp.src_port),
                        dst: SocketAddrV4::new(header.dst_addr, tcp.dst_port),
                        flags: tcp.flags,
                        seq: tcp.seq_number.raw(),
                        ack: tcp.ack_number.raw(),
                        window: tcp.window_len,
                        urgent: tcp.urgent_pointer,
                        len: tcp.payload.len() as u32,
                        options,
                        tfo: tcp.options.tfo_cookie.is_some(),
                    });
                }
                _ => {}
            }
        }
        if let Some(sent) = sent {
            self.trace.push(TraceItem::Segment(sent.clone(), true));
            self.pending.push_back(sent);
            self.wire.push(Crossing {
                at: self.now,
                outbound: true,
                frame,
            });
        }
        if let Some(reply) = reply
            && let Some(stack) = self.stack.as_mut()
        {
            stack.handle_frame(self.now, &reply, RxChecksum::Verify);
        }
    }

    fn inject(&mut self, frame: Vec<u8>, sent: Option<Sent>) {
        if let Some(sent) = sent {
            self.trace.push(TraceItem::Segment(sent, false));
        }
        let now = self.now;
        self.stack().handle_frame(now, &frame, RxChecksum::Verify);
        self.wire.push(Crossing {
            at: now,
            outbound: false,
            frame,
        });
    }

    // ---- calls ----

    fn start_call(&mut self, line: usize, call: &crate::script::Syscall, end: Instant) -> Step {
        let mut state = CallState::default();
        match crate::socket::attempt(self, line, call, &mut state)? {
            Some(result) => self.finish_call(line, call, result, end),
            None => {
                self.blocked.push(Blocked {
                    line,
                    call: call.clone(),
                    state,
                    end,
                });
                Ok(())
            }
        }
    }

    fn finish_call(
        &mut self,
        line: usize,
        call: &crate::script::Syscall,
        result: Result<i64, &'static str>,
        end: Instant,
    ) -> Step {
        let tol = micros(self.tolerance as i64);
        let expected = &call.result;
        let matches = match result {
            Ok(value) => value == expected.value && expected.errno.is_none(),
            Err(errno) => {
                expected.value == -1 && expected.errno.as_deref().is_none_or(|e| e == errno)
            }
        };
        let actual = match result {
            Ok(value) => value.to_string(),
            Err(errno) => format!("-1 {errno}"),
        };
        let wanted = match &expected.errno {
            Some(errno) => format!("{} {errno}", expected.value),
            None => expected.value.to_string(),
        };
        if !matches {
            let mut report = self.report(
                Some(line),
                format!("{}() returned {actual}, expected {wanted}", call.name),
            );
            report.expected = Some(wanted);
            report.actual = Some(actual);
            return Err(Stop::Fail(report));
        }
        if self.now + tol < end || self.now > end + tol {
            return self.fail(
                line,
                format!(
                    "{}() returned at {}, expected at {end} (tolerance {} µs)",
                    call.name, self.now, self.tolerance
                ),
            );
        }
        Ok(())
    }

    /// Retries every blocked call; those that can return now do.
    pub(crate) fn poll_blocked(&mut self) -> Step {
        let mut index = 0;
        while index < self.blocked.len() {
            let mut blocked = self.blocked.remove(index);
            let result =
                crate::socket::attempt(self, blocked.line, &blocked.call, &mut blocked.state)?;
            match result {
                Some(result) => {
                    self.finish_call(blocked.line, &blocked.call, result, blocked.end)?;
                    self.transmit()?;
                    index = 0;
                }
                None => {
                    self.blocked.insert(index, blocked);
                    index += 1;
                }
            }
        }
        Ok(())
    }

    // ---- outbound lines ----

    fn expect_outbound(&mut self, line: usize, expected: &TcpLine, times: EventTimes) -> Step {
        let EventTimes {
            at,
            earliest,
            latest,
            ..
        } = times;
        // Wait, deadline by deadline, for a segment or the end of the window.
        while self.pending.is_empty() {
            self.check_blocked_overdue()?;
            let deadline = self.stack.as_ref().and_then(Stack::poll_timeout);
            match deadline {
                Some(deadline) if deadline <= latest => self.fire_timers(line, deadline)?,
                _ => {
                    let text = self.describe_expected(expected);
                    let later = self.look_ahead();
                    let mut message = format!(
                        "missing outbound segment: expected {text} at {at}, nothing was sent by {latest}"
                    );
                    if let Some(sent) = &later {
                        let when = sent.at;
                        let verdict = if self.compare(expected, sent).is_ok() {
                            "it came late"
                        } else {
                            "the next segment"
                        };
                        let _ = write!(
                            message,
                            "; {verdict}, at {when}: {}",
                            self.describe_sent(sent)
                        );
                    }
                    let mut report = self.report(Some(line), message);
                    report.expected = Some(text);
                    report.actual = later.map(|sent| self.describe_sent(&sent));
                    report.time = latest.min(Instant::from_secs(1 << 30));
                    return Err(Stop::Fail(report));
                }
            }
        }
        let Some(first) = self.pending.front().cloned() else {
            return Ok(());
        };
        let mut actual = first;
        let mut taken = 1;
        // Consecutive segments may make up one scripted segment larger than the MSS.
        if !self.strict_segments && expected.len > actual.len && !actual.flags.syn() {
            let mut merged = actual.clone();
            for next in self.pending.iter().skip(1) {
                if merged.len >= expected.len
                    || next.seq != merged.seq.wrapping_add(merged.len)
                    || next.flags.syn()
                    || merged.flags.fin()
                {
                    break;
                }
                merged.len += next.len;
                merged.flags |= next.flags;
                merged.ack = next.ack;
                merged.window = next.window;
                merged.options = next.options;
                taken += 1;
            }
            if merged.len == expected.len {
                actual = merged;
            } else {
                taken = 1;
            }
        }
        // Our ISN, from our first SYN and again from the SYN of each new incarnation (a SYN
        // with a sequence number other than the previous SYN's; retransmissions repeat it).
        if actual.flags.syn() && self.last_syn_seq != Some(actual.seq) {
            self.local_isn = Some(actual.seq.wrapping_sub(expected.seq_start));
            self.last_syn_seq = Some(actual.seq);
        }
        if let Err(message) = self.compare(expected, &actual) {
            let expected_text = self.describe_expected(expected);
            let actual_text = self.describe_sent(&actual);
            let mut report = self.report(
                Some(line),
                format!("{message}\n  expected: {expected_text}\n  actual:   {actual_text}"),
            );
            report.time = actual.at;
            report.expected = Some(expected_text);
            report.actual = Some(actual_text);
            return Err(Stop::Fail(report));
        }
        if actual.at < earliest || actual.at > latest {
            let expected_text = self.describe_expected(expected);
            let mut report = self.report(
                Some(line),
                format!(
                    "timing error: expected {expected_text} at {at} (tolerance {} µs), sent at {}",
                    self.tolerance, actual.at
                ),
            );
            report.time = actual.at;
            report.expected = Some(format!("at {at}"));
            report.actual = Some(format!("at {}", actual.at));
            return Err(Stop::Fail(report));
        }
        for _ in 0..taken {
            self.pending.pop_front();
        }
        // TSval mapping for the peer's TSecr.
        if let (Some(ts), Some(script_val)) = (actual.options.timestamps, script_ts_val(expected)) {
            self.ts_base.get_or_insert((script_val, ts.tsval));
            self.ts_sent.push_back((script_val, ts.tsval));
            if self.ts_sent.len() > 64 {
                self.ts_sent.pop_front();
            }
        }
        self.now = self.now.max(actual.at);
        Ok(())
    }

    /// For a failure report only: what the engine sends next, if anything, within an hour
    /// of virtual time.
    fn look_ahead(&mut self) -> Option<Sent> {
        let horizon = self.now + Duration::from_secs(3600);
        for _ in 0..10_000 {
            if let Some(sent) = self.pending.front() {
                return Some(sent.clone());
            }
            let deadline = self.stack.as_ref()?.poll_timeout()?;
            if deadline > horizon {
                return None;
            }
            self.now = self.now.max(deadline);
            let now = self.now;
            self.stack.as_mut()?.handle_timeout(now);
            let _ = self.transmit();
        }
        None
    }

    fn compare(&self, expected: &TcpLine, actual: &Sent) -> Result<(), String> {
        if let Some(flow) = self.flow
            && (actual.src.port() != flow.local_port
                || actual.dst.port() != flow.remote_port
                || *actual.dst.ip() != self.addresses.remote)
        {
            return Err(format!(
                "segment of another connection ({} > {})",
                actual.src, actual.dst
            ));
        }
        if expected.ecn.is_some() {
            return Err("IP ECN markings are not supported".to_string());
        }
        if actual.flags != expected.flags {
            return Err(format!(
                "wrong flags: expected [{}], got [{}]",
                expected.flags, actual.flags
            ));
        }
        let isn = self.local_isn.unwrap_or(0);
        let seq = actual.seq.wrapping_sub(isn);
        if seq != expected.seq_start {
            return Err(format!(
                "wrong sequence number: expected {}, got {seq}",
                expected.seq_start
            ));
        }
        if actual.len != expected.len {
            return Err(format!(
                "wrong payload length: expected {}, got {}",
                expected.len, actual.len
            ));
        }
        if let Some(ack) = expected.ack
            && expected.flags.ack()
            && actual.ack != ack
        {
            return Err(format!(
                "wrong ack number: expected {ack}, got {}",
                actual.ack
            ));
        }
        if let Some(win) = expected.win
            && actual.window != win
        {
            return Err(format!(
                "wrong window: expected {win}, got {}",
                actual.window
            ));
        }
        if let Some(urg) = expected.urg
            && actual.urgent != urg
        {
            return Err(format!(
                "wrong urgent pointer: expected {urg}, got {}",
                actual.urgent
            ));
        }
        self.compare_options(expected, actual)
    }

    fn compare_options(&self, expected: &TcpLine, actual: &Sent) -> Result<(), String> {
        let wanted = match &expected.options {
            Some(OptionsSpec::Wildcard) => return Ok(()),
            None => TcpOptions::default(),
            Some(OptionsSpec::List(list)) => options_of(list, 0, |ecr| ecr)
                .map_err(|name| format!("option `{name}` cannot be checked"))?,
        };
        let got = &actual.options;
        let mut differences = Vec::new();
        if wanted.max_seg_size != got.max_seg_size {
            differences.push(format!(
                "mss {:?} vs {:?}",
                wanted.max_seg_size, got.max_seg_size
            ));
        }
        if wanted.window_scale != got.window_scale {
            differences.push(format!(
                "wscale {:?} vs {:?}",
                wanted.window_scale, got.window_scale
            ));
        }
        if wanted.sack_permitted != got.sack_permitted {
            differences.push(format!(
                "sackOK {} vs {}",
                wanted.sack_permitted, got.sack_permitted
            ));
        }
        match (wanted.timestamps, got.timestamps) {
            (None, None) => {}
            (Some(w), Some(g)) if w.tsecr == g.tsecr => {
                if let Some(problem) = self.check_tsval(w.tsval, g.tsval) {
                    differences.push(problem);
                }
            }
            (Some(w), Some(g)) => differences.push(format!("TS ecr {} vs {}", w.tsecr, g.tsecr)),
            (w, g) => differences.push(format!(
                "TS {} vs {}",
                if w.is_some() { "present" } else { "absent" },
                if g.is_some() { "present" } else { "absent" }
            )),
        }
        if wanted.sack_blocks.as_slice() != got.sack_blocks.as_slice() {
            let text = |blocks: &rawtcp_wire::tcp::SackBlocks| {
                let list: Vec<String> = blocks
                    .as_slice()
                    .iter()
                    .map(|(l, r)| format!("{}:{}", l.raw(), r.raw()))
                    .collect();
                format!("[{}]", list.join(" "))
            };
            differences.push(format!(
                "sack {} vs {}",
                text(&wanted.sack_blocks),
                text(&got.sack_blocks)
            ));
        }
        if actual.tfo {
            differences.push("unexpected Fast Open cookie".to_string());
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "wrong options (expected vs actual): {}",
                differences.join("; ")
            ))
        }
    }

    /// With `--tcp_ts_tick_usecs`, the TSval must have moved since the first one as far as
    /// the script's did, within the tolerance. The engine's clock ticks every millisecond.
    fn check_tsval(&self, script: u32, live: u32) -> Option<String> {
        let tick = i64::from(self.ts_tick_usecs?);
        let (base_script, base_live) = self.ts_base?;
        let script_us = i64::from(script.wrapping_sub(base_script) as i32) * tick;
        let live_us = i64::from(live.wrapping_sub(base_live) as i32) * 1000;
        let slack = self.tolerance as i64 + 1000;
        ((script_us - live_us).abs() > slack).then(|| {
            format!(
                "TS val moved {} µs since the first, the script says {} µs",
                live_us, script_us
            )
        })
    }

    // ---- inbound lines ----

    fn flow_for_inbound(&self, line: usize) -> Step<Flow> {
        match self.flow {
            Some(flow) => Ok(flow),
            None => self.fail(
                line,
                "inbound packet before any socket listens or connects (no connection to address it to)",
            ),
        }
    }

    fn inject_tcp(&mut self, line: usize, spec: &TcpLine) -> Step {
        let flow = self.flow_for_inbound(line)?;
        if let Some(ecn) = &spec.ecn {
            return self.skip(line, format!("IP ECN marking [{ecn}] is not supported"));
        }
        let isn = self.local_isn.unwrap_or(0);
        let mut options: TcpOptions<'static> = TcpOptions::default();
        if let Some(OptionsSpec::List(list)) = &spec.options {
            options = match options_of(list, isn, |ecr| self.map_ecr(ecr)) {
                Ok(options) => options,
                Err(name) => {
                    return self.skip(line, format!("TCP option `{name}` is not supported"));
                }
            };
        } else if let Some(OptionsSpec::Wildcard) = spec.options {
            return self.fail(line, "`<...>` is only meaningful on outbound packets");
        }
        if options.buffer_len() > 40 {
            return self.fail(line, "the options do not fit in 40 bytes");
        }
        // One IPv4 datagram: 65535 bytes less the IPv4 and TCP headers.
        let room = 65_535 - 20 - 20 - options.buffer_len();
        if spec.len as usize > room {
            return self.fail(
                line,
                format!(
                    "a {}-byte payload does not fit in one IPv4 datagram",
                    spec.len
                ),
            );
        }
        let payload = vec![0u8; spec.len as usize];
        let ack = match spec.ack {
            Some(ack) if spec.flags.ack() => ack.wrapping_add(isn),
            _ => 0,
        };
        let repr = TcpRepr {
            src_port: flow.remote_port,
            dst_port: flow.local_port,
            seq_number: SeqNum::new(spec.seq_start),
            ack_number: SeqNum::new(ack),
            flags: spec.flags,
            window_len: spec.win.unwrap_or(65_535),
            urgent_pointer: spec.urg.unwrap_or(0),
            options,
            payload: &payload,
        };
        let frame = self.frame(Transport::Tcp(repr));
        let sent = Sent {
            at: self.now,
            src: SocketAddrV4::new(self.addresses.remote, flow.remote_port),
            dst: SocketAddrV4::new(self.addresses.local, flow.local_port),
            flags: repr.flags,
            seq: repr.seq_number.raw(),
            ack,
            window: repr.window_len,
            urgent: repr.urgent_pointer,
            len: spec.len,
            options,
            tfo: false,
        };
        self.inject(frame, Some(sent));
        Ok(())
    }

    fn map_ecr(&self, ecr: u32) -> u32 {
        if let Some((_, live)) = self.ts_sent.iter().rev().find(|(script, _)| *script == ecr) {
            return *live;
        }
        match self.ts_sent.back() {
            Some((script, live)) if ecr != 0 => ecr.wrapping_add(live.wrapping_sub(*script)),
            _ => ecr,
        }
    }

    fn inject_icmp(&mut self, line: usize, spec: &IcmpLine) -> Step {
        let flow = self.flow_for_inbound(line)?;
        let isn = self.local_isn.unwrap_or(0);
        let (seq, len) = match spec.quoted {
            Some((start, _, len)) => (start.wrapping_add(isn), len),
            None => (self.sockets.flow_snd_una(self).unwrap_or(isn), 0),
        };
        // The quoted datagram: our segment's IPv4 header and its first 8 TCP bytes.
        let mut quoted_tcp = [0u8; 8];
        quoted_tcp[0..2].copy_from_slice(&flow.local_port.to_be_bytes());
        quoted_tcp[2..4].copy_from_slice(&flow.remote_port.to_be_bytes());
        quoted_tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        let quoted_header = Ipv4Repr::new(
            self.addresses.local,
            self.addresses.remote,
            IpProtocol::Tcp,
            20 + len as usize,
        );
        let code = spec.code.as_str();
        let message = match spec.kind.as_str() {
            "unreachable" => {
                let reason = match code {
                    "net_unreachable" => DstUnreachable::NetUnreachable,
                    "host_unreachable" => DstUnreachable::HostUnreachable,
                    "protocol_unreachable" => DstUnreachable::ProtoUnreachable,
                    "port_unreachable" => DstUnreachable::PortUnreachable,
                    "frag_needed" => DstUnreachable::FragRequired,
                    "source_route_failed" => DstUnreachable::SrcRouteFailed,
                    "net_unknown" => DstUnreachable::DstNetUnknown,
                    "host_unknown" => DstUnreachable::DstHostUnknown,
                    "source_host_isolated" => DstUnreachable::SrcHostIsolated,
                    "net_prohibited" => DstUnreachable::NetProhibited,
                    "host_prohibited" => DstUnreachable::HostProhibited,
                    "net_unreachable_for_tos" => DstUnreachable::NetUnreachToS,
                    "host_unreachable_for_tos" => DstUnreachable::HostUnreachToS,
                    "packet_filtered" => DstUnreachable::CommProhibited,
                    "precedence_violation" => DstUnreachable::HostPrecedenceViolation,
                    "precedence_cutoff" => DstUnreachable::PrecedenceCutoff,
                    other => {
                        return self.skip(
                            line,
                            format!("ICMP unreachable code `{other}` is not supported"),
                        );
                    }
                };
                Icmpv4Repr::DstUnreachable {
                    reason,
                    next_hop_mtu: spec.mtu.unwrap_or(0),
                    header: quoted_header,
                    data: &quoted_tcp,
                }
            }
            "time_exceeded" => Icmpv4Repr::TimeExceeded {
                reason: if code == "fragment_reassembly_time_exceeded" {
                    TimeExceeded::FragExpired
                } else {
                    TimeExceeded::TtlExpired
                },
                header: quoted_header,
                data: &quoted_tcp,
            },
            other => return self.skip(line, format!("ICMP type `{other}` is not supported")),
        };
        let frame = self.frame(Transport::Icmp(message));
        self.trace.push(TraceItem::Text(format!(
            "{:>9}  {} → {}  ICMP {} {}",
            micros_text(self.now),
            self.addresses.remote,
            self.addresses.local,
            spec.kind,
            spec.code
        )));
        self.inject(frame, None);
        Ok(())
    }

    fn frame(&self, transport: Transport<'_>) -> Vec<u8> {
        let protocol = match transport {
            Transport::Icmp(_) => IpProtocol::Icmp,
            _ => IpProtocol::Tcp,
        };
        let dissection = Dissection {
            ethernet: EthernetRepr {
                src_addr: REMOTE_MAC,
                dst_addr: setup::LOCAL_MAC,
                vlan_tci: None,
                ethertype: EtherType::Ipv4,
            },
            network: Network::Ipv4 {
                header: Ipv4Repr::new(self.addresses.remote, self.addresses.local, protocol, 0),
                transport,
            },
        };
        let mut frame = vec![0u8; dissection.buffer_len()];
        dissection.emit(&mut frame);
        frame
    }

    // ---- text ----

    fn relative_seq(&self, sent: &Sent, outbound: bool) -> (u32, u32) {
        let isn = self.local_isn.unwrap_or(0);
        if outbound {
            (sent.seq.wrapping_sub(isn), sent.ack)
        } else {
            (sent.seq, sent.ack.wrapping_sub(isn))
        }
    }

    fn describe_sent(&self, sent: &Sent) -> String {
        let (seq, ack) = self.relative_seq(sent, true);
        let mut text = format!(
            "{} {}:{}({})",
            flags_text(sent.flags),
            seq,
            seq.wrapping_add(sent.len),
            sent.len
        );
        if sent.flags.ack() {
            let _ = write!(text, " ack {ack}");
        }
        let _ = write!(text, " win {}", sent.window);
        let options = options_text(&sent.options);
        if !options.is_empty() {
            let _ = write!(text, " <{options}>");
        }
        text
    }

    fn describe_expected(&self, line: &TcpLine) -> String {
        let mut text = format!(
            "{} {}:{}({})",
            flags_text(line.flags),
            line.seq_start,
            line.seq_end,
            line.len
        );
        if let Some(ack) = line.ack {
            let _ = write!(text, " ack {ack}");
        }
        if let Some(win) = line.win {
            let _ = write!(text, " win {win}");
        }
        match &line.options {
            None => {}
            Some(OptionsSpec::Wildcard) => text.push_str(" <...>"),
            Some(OptionsSpec::List(list)) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|o| match o {
                        TcpOptionSpec::Nop => "nop".to_string(),
                        TcpOptionSpec::Eol => "eol".to_string(),
                        TcpOptionSpec::Mss(m) => format!("mss {m}"),
                        TcpOptionSpec::WindowScale(s) => format!("wscale {s}"),
                        TcpOptionSpec::SackPermitted => "sackOK".to_string(),
                        TcpOptionSpec::Sack(blocks) => {
                            let b: Vec<String> =
                                blocks.iter().map(|(l, r)| format!("{l}:{r}")).collect();
                            format!("sack {}", b.join(" "))
                        }
                        TcpOptionSpec::Timestamps { val, ecr } => format!("TS val {val} ecr {ecr}"),
                        TcpOptionSpec::Unsupported(name) => name.clone(),
                    })
                    .collect();
                let _ = write!(text, " <{}>", parts.join(","));
            }
        }
        text
    }

    fn trace_line(&self, sent: &Sent, outbound: bool) -> String {
        let (seq, ack) = self.relative_seq(sent, outbound);
        let ack = if sent.flags.ack() {
            ack.to_string()
        } else {
            String::new()
        };
        // The columns of the `hello` example's trace.
        let line = format!(
            "{:>9}  {:<45} {:<6} {:>6} {:>6} {:>5} {:>6}  {}",
            micros_text(sent.at),
            format!("{} → {}", sent.src, sent.dst),
            format!("[{}]", sent.flags),
            seq,
            ack,
            sent.len,
            sent.window,
            options_text(&sent.options)
        );
        line.trim_end().to_string()
    }

    pub(crate) fn state_of(&self, id: rawtcp_core::ConnectionId) -> Option<State> {
        self.stack.as_ref().and_then(|s| s.tcp_state(id))
    }
}

/// The header of the trace lines ([`Outcome::trace`]), as the `hello` example prints it.
pub fn trace_header() -> String {
    format!(
        "{:>9}  {:<45} {:<6} {:>6} {:>6} {:>5} {:>6}  options",
        "time", "segment", "flags", "seq", "ack", "len", "win"
    )
}

fn micros_text(at: Instant) -> String {
    let us = at.as_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn script_ts_val(line: &TcpLine) -> Option<u32> {
    match &line.options {
        Some(OptionsSpec::List(list)) => list.iter().find_map(|o| match o {
            TcpOptionSpec::Timestamps { val, .. } => Some(*val),
            _ => None,
        }),
        _ => None,
    }
}

/// The options a script line lists, for the wire: SACK edges moved by `sack_offset` (the ISN
/// they are relative to), each TS ecr through `ecr`. `Err` names an option the wire crate
/// cannot express.
fn options_of(
    list: &[TcpOptionSpec],
    sack_offset: u32,
    ecr: impl Fn(u32) -> u32,
) -> Result<TcpOptions<'static>, &str> {
    let mut options = TcpOptions::default();
    for option in list {
        match option {
            TcpOptionSpec::Nop | TcpOptionSpec::Eol => {}
            TcpOptionSpec::Mss(mss) => options.max_seg_size = Some(*mss),
            TcpOptionSpec::WindowScale(shift) => options.window_scale = Some(*shift),
            TcpOptionSpec::SackPermitted => options.sack_permitted = true,
            TcpOptionSpec::Sack(blocks) => {
                for (left, right) in blocks {
                    options.sack_blocks.push(
                        SeqNum::new(left.wrapping_add(sack_offset)),
                        SeqNum::new(right.wrapping_add(sack_offset)),
                    );
                }
            }
            TcpOptionSpec::Timestamps { val, ecr: echoed } => {
                options.timestamps = Some(Timestamps {
                    tsval: *val,
                    tsecr: ecr(*echoed),
                });
            }
            TcpOptionSpec::Unsupported(name) => return Err(name),
        }
    }
    Ok(options)
}

/// packetdrill's flag letters: the wire crate's, with `-` for none.
fn flags_text(flags: TcpFlags) -> String {
    if flags.bits() == 0 {
        "-".to_string()
    } else {
        flags.to_string()
    }
}

fn options_text(options: &TcpOptions<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(mss) = options.max_seg_size {
        parts.push(format!("mss {mss}"));
    }
    if options.sack_permitted {
        parts.push("sackOK".to_string());
    }
    if let Some(ts) = options.timestamps {
        parts.push(format!("TS val {} ecr {}", ts.tsval, ts.tsecr));
    }
    if let Some(shift) = options.window_scale {
        parts.push(format!("wscale {shift}"));
    }
    if !options.sack_blocks.is_empty() {
        let blocks: Vec<String> = options
            .sack_blocks
            .as_slice()
            .iter()
            .map(|(l, r)| format!("{}:{}", l.raw(), r.raw()))
            .collect();
        parts.push(format!("sack {}", blocks.join(" ")));
    }
    parts.join(",")
}

fn arp_reply(request: &ArpRepr) -> Vec<u8> {
    let reply = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: REMOTE_MAC,
        source_protocol_addr: request.target_protocol_addr,
        target_hardware_addr: request.source_hardware_addr,
        target_protocol_addr: request.source_protocol_addr,
    };
    let dissection = Dissection {
        ethernet: EthernetRepr {
            src_addr: REMOTE_MAC,
            dst_addr: request.source_hardware_addr,
            vlan_tci: None,
            ethertype: EtherType::Arp,
        },
        network: Network::Arp(reply),
    };
    let mut frame = vec![0u8; dissection.buffer_len()];
    dissection.emit(&mut frame);
    frame
}
