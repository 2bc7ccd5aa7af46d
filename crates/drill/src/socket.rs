//! System calls mapped onto the engine, with the return values and errnos of a Linux socket.
//!
//! File descriptors are the script's own: `socket() = 4` makes descriptor 4, as packetdrill
//! maps script descriptors to live ones; a call that does not name one gets the lowest free
//! from 3, as Linux gives. An error a connection ended with is reported once, as Linux's
//! `sk_err` is: the next read then sees the end of the stream and the next write `EPIPE`.
//!
//! What the engine cannot do makes the script skip with the reason: per-socket buffer sizes
//! after the engine started, TCP_MAXSEG, SO_LINGER with a timeout, Fast Open, a second
//! listener on a port (SO_REUSEPORT).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use rawtcp_core::{ConnError, ConnectionId, Keepalive, ListenOptions, ListenerId, State, TcpError};

use crate::run::{Flow, Runner, Step};
use crate::script::{Expr, Syscall};

/// What a call has done so far, for calls that block and are retried.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallState {
    /// Bytes a blocking write has queued.
    written: usize,
    /// The call has started its work (a connect sent its SYN).
    started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fresh,
    Listener(ListenerId),
    Conn(ConnectionId),
}

#[derive(Debug, Clone)]
struct Socket {
    kind: Kind,
    nonblocking: bool,
    bound: Option<SocketAddrV4>,
    nodelay: bool,
    keepalive: bool,
    keep_idle: Option<u64>,
    keep_interval: Option<u64>,
    keep_count: Option<u32>,
    linger_zero: bool,
    error_reported: bool,
    /// shutdown(SHUT_RD) or SHUT_RDWR was called.
    read_shut: bool,
    /// Values set with setsockopt, returned by getsockopt: (level, name) → value.
    values: BTreeMap<String, i64>,
}

impl Socket {
    fn new(nonblocking: bool) -> Socket {
        Socket {
            kind: Kind::Fresh,
            nonblocking,
            bound: None,
            nodelay: false,
            keepalive: false,
            keep_idle: None,
            keep_interval: None,
            keep_count: None,
            linger_zero: false,
            error_reported: false,
            read_shut: false,
            values: BTreeMap::new(),
        }
    }
}

/// The script's file descriptors.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    fds: BTreeMap<i64, Socket>,
    /// The connection TCP_INFO reads: the latest accepted or connected.
    current: Option<ConnectionId>,
}

/// The most bytes one read or write call moves (the data is held in memory).
const MAX_IO: usize = 64 << 20;

/// The result of one attempt: `None` would block.
type Attempt = Option<Result<i64, &'static str>>;

fn errno_of(error: ConnError) -> &'static str {
    match error {
        ConnError::Refused => "ECONNREFUSED",
        ConnError::Reset => "ECONNRESET",
        ConnError::TimedOut => "ETIMEDOUT",
        ConnError::Unreachable | ConnError::NeighborUnreachable => "EHOSTUNREACH",
    }
}

/// Linux's errno numbers, for SO_ERROR.
fn errno_number(name: &str) -> Option<i64> {
    Some(match name {
        "EPERM" => 1,
        "EBADF" => 9,
        "EAGAIN" | "EWOULDBLOCK" => 11,
        "EINVAL" => 22,
        "EPIPE" => 32,
        "ENOPROTOOPT" => 92,
        "EOPNOTSUPP" => 95,
        "EADDRINUSE" => 98,
        "EADDRNOTAVAIL" => 99,
        "ENETUNREACH" => 101,
        "ECONNABORTED" => 103,
        "ECONNRESET" => 104,
        "EISCONN" => 106,
        "ENOTCONN" => 107,
        "ETIMEDOUT" => 110,
        "ECONNREFUSED" => 111,
        "EHOSTUNREACH" => 113,
        "EALREADY" => 114,
        "EINPROGRESS" => 115,
        _ => return None,
    })
}

/// Linux's numbers for the symbols scripts pass as flags and values.
fn symbol_value(name: &str) -> Option<i64> {
    Some(match name {
        "NULL" => 0,
        "O_RDONLY" => 0,
        "O_WRONLY" => 1,
        "O_RDWR" => 2,
        "O_NONBLOCK" => 0x800,
        "SOCK_STREAM" => 1,
        "SOCK_DGRAM" => 2,
        "SOCK_NONBLOCK" => 0x800,
        "SOCK_CLOEXEC" => 0x80000,
        "MSG_PEEK" => 2,
        "MSG_DONTWAIT" => 0x40,
        "MSG_NOSIGNAL" => 0x4000,
        "MSG_WAITALL" => 0x100,
        "MSG_MORE" => 0x8000,
        "MSG_FASTOPEN" => 0x2000_0000,
        "MSG_ZEROCOPY" => 0x400_0000,
        "MSG_EOR" => 0x80,
        "POLLIN" => 0x1,
        "POLLPRI" => 0x2,
        "POLLOUT" => 0x4,
        "POLLERR" => 0x8,
        "POLLHUP" => 0x10,
        "POLLNVAL" => 0x20,
        "POLLRDNORM" => 0x40,
        "POLLWRNORM" => 0x100,
        "POLLRDHUP" => 0x2000,
        "SHUT_RD" => 0,
        "SHUT_WR" => 1,
        "SHUT_RDWR" => 2,
        "F_GETFL" => 3,
        "F_SETFL" => 4,
        _ => return None,
    })
}

/// An integer argument: a number, a symbol, `A|B`, or `[N]`.
fn int(expr: Option<&Expr>) -> Option<i64> {
    match expr? {
        Expr::Int(value) => Some(*value),
        Expr::Symbol(name) => symbol_value(name).or_else(|| errno_number(name)),
        Expr::BitOr(terms) => terms
            .iter()
            .try_fold(0, |acc, term| Some(acc | int(Some(term))?)),
        Expr::Array(items) if items.len() == 1 => int(items.first()),
        Expr::Call(name, args) if name == "htons" || name == "htonl" => int(args.first()),
        _ => None,
    }
}

/// A flags argument: absent or `...` is 0; a flag this runner does not know is all ones,
/// which no call accepts, so the script skips naming the flags.
fn flags_arg(expr: Option<&Expr>) -> i64 {
    match expr {
        None | Some(Expr::Ellipsis) => 0,
        Some(expr) => int(Some(expr)).unwrap_or(-1),
    }
}

/// The byte count and flags of a read or write call (iovecs summed for the msg calls).
fn length_and_flags(name: &str, args: &[Expr]) -> Option<(usize, i64)> {
    let count = |expr: Option<&Expr>| int(expr).and_then(|n| usize::try_from(n).ok());
    match name {
        "recvmsg" | "sendmsg" => Some((
            args.get(1).and_then(|m| iov_len(m.field("msg_iov")))?,
            flags_arg(args.get(2)),
        )),
        "read" | "write" => Some((count(args.get(2))?, 0)),
        _ => Some((count(args.get(2))?, flags_arg(args.get(3)))),
    }
}

fn symbol(expr: Option<&Expr>) -> Option<&str> {
    match expr? {
        Expr::Symbol(name) => Some(name),
        _ => None,
    }
}

/// A sockaddr argument: `...` (None) or `{sin_port=htons(N), sin_addr=inet_addr("A")}`.
fn sockaddr(expr: Option<&Expr>) -> (Option<u16>, Option<Ipv4Addr>) {
    let Some(expr) = expr else {
        return (None, None);
    };
    let port = int(expr.field("sin_port")).and_then(|p| u16::try_from(p).ok());
    let address = match expr.field("sin_addr") {
        Some(Expr::Call(name, args)) if name == "inet_addr" => match args.first() {
            Some(Expr::Str(text)) => text.parse().ok(),
            _ => None,
        },
        _ => None,
    };
    (port, address)
}

/// Total length of an iovec array (`[{..., 100}, {..., 200}]`).
fn iov_len(expr: Option<&Expr>) -> Option<usize> {
    let Some(Expr::Array(items)) = expr else {
        return None;
    };
    items.iter().try_fold(0usize, |acc, item| match item {
        Expr::Struct(fields) => {
            let len = fields
                .iter()
                .find(|(name, _)| name.as_deref() == Some("iov_len"))
                .or_else(|| fields.get(1))
                .and_then(|(_, value)| int(Some(value)))?;
            Some(acc + usize::try_from(len).ok()?)
        }
        _ => None,
    })
}

fn linux_state(state: State) -> i64 {
    match state {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

impl Sockets {
    /// A new descriptor: the one the script names (packetdrill maps script descriptors to
    /// live ones, so a script may start at 4), else the lowest free one from 3.
    fn allocate(&mut self, socket: Socket, wanted: i64) -> i64 {
        if wanted >= 0 && !self.fds.contains_key(&wanted) {
            self.fds.insert(wanted, socket);
            return wanted;
        }
        let mut fd = 3;
        while self.fds.contains_key(&fd) {
            fd += 1;
        }
        self.fds.insert(fd, socket);
        fd
    }

    /// TCP_INFO of the current connection, as Linux names the fields. Fields the engine
    /// does not count are absent, so an assertion on them is unevaluable.
    pub(crate) fn tcp_info_values(&self, runner: &Runner) -> BTreeMap<&'static str, i64> {
        let mut values = BTreeMap::new();
        let Some(id) = self.current else {
            return values;
        };
        let Some(info) = runner.stack.as_ref().and_then(|s| s.tcp_info(id)) else {
            // The engine forgot the connection: it is closed, and nothing else is known.
            values.insert("tcpi_state", linux_state(State::Closed));
            return values;
        };
        let us = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let mss = info.mss.max(1) as i64;
        values.insert("tcpi_state", linux_state(info.state));
        values.insert("tcpi_snd_mss", mss);
        values.insert("tcpi_snd_cwnd", i64::from(info.cwnd) / mss);
        values.insert("tcpi_rto", us(info.rto));
        if let Some(srtt) = info.srtt {
            values.insert("tcpi_rtt", us(srtt));
            values.insert("tcpi_rttvar", us(info.rttvar));
        }
        let stats = info.stats;
        let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        values.insert("tcpi_total_retrans", count(stats.retransmitted_segments));
        values.insert("tcpi_segs_out", count(stats.segments_out));
        values.insert("tcpi_segs_in", count(stats.segments_in));
        values.insert("tcpi_bytes_acked", count(stats.bytes_acked));
        values.insert("tcpi_bytes_received", count(stats.bytes_delivered));
        values.insert("tcpi_bytes_sent", count(stats.bytes_out));
        values.insert("tcpi_bytes_retrans", count(stats.bytes_retransmitted));
        values.insert("tcpi_snd_wnd", i64::from(info.snd_wnd));
        let in_flight = (info.snd_nxt - info.snd_una) as usize;
        values.insert(
            "tcpi_notsent_bytes",
            info.send_queue.saturating_sub(in_flight) as i64,
        );
        values
    }

    /// SND.UNA of the current connection, for an ICMP line that quotes no segment.
    pub(crate) fn flow_snd_una(&self, runner: &Runner) -> Option<u32> {
        let id = self.current?;
        Some(runner.stack.as_ref()?.tcp_info(id)?.snd_una.raw())
    }
}

/// One attempt at a call: `Ok(None)` when it would block (the runner retries it).
pub(crate) fn attempt(
    runner: &mut Runner,
    line: usize,
    call: &Syscall,
    state: &mut CallState,
) -> Step<Attempt> {
    let args = &call.args;
    let fd_arg = int(args.first());
    let name = call.name.as_str();
    if name == "socket" {
        return socket_call(runner, line, args, call.result.value);
    }
    if name == "poll" {
        return poll_call(runner, line, args);
    }
    let Some(fd) = fd_arg else {
        return runner.skip(
            line,
            format!("{name}(): the first argument is not a file descriptor"),
        );
    };
    let Some(socket) = runner.sockets.fds.get(&fd).cloned() else {
        return Ok(Some(Err("EBADF")));
    };
    match name {
        "bind" => {
            if socket.bound.is_some() || socket.kind != Kind::Fresh {
                return Ok(Some(Err("EINVAL")));
            }
            let (port, address) = sockaddr(args.get(1));
            let port = port.unwrap_or(runner.addresses.bind_port);
            let address = address.unwrap_or(Ipv4Addr::UNSPECIFIED);
            // SO_REUSEPORT on both lets a second socket bind; listen() then says whether the
            // engine can take it.
            let reuse = |s: &Socket| {
                s.values
                    .get("SOL_SOCKET:SO_REUSEPORT")
                    .is_some_and(|v| *v != 0)
            };
            let taken = runner.sockets.fds.values().any(|s| {
                s.bound.is_some_and(|b| b.port() == port)
                    && s.kind != Kind::Fresh
                    && !(reuse(s) && reuse(&socket))
            });
            if taken {
                return Ok(Some(Err("EADDRINUSE")));
            }
            set(runner, fd, |s| {
                s.bound = Some(SocketAddrV4::new(address, port))
            });
            Ok(Some(Ok(0)))
        }
        "listen" => {
            match socket.kind {
                Kind::Listener(_) => return Ok(Some(Ok(0))),
                Kind::Conn(_) => return Ok(Some(Err("EINVAL"))),
                Kind::Fresh => {}
            }
            let backlog = int(args.get(1)).unwrap_or(128).max(1) as usize;
            let local = socket.bound.unwrap_or(SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                runner.addresses.bind_port,
            ));
            let reuse_port = |s: &Socket| {
                s.values
                    .get("SOL_SOCKET:SO_REUSEPORT")
                    .is_some_and(|v| *v != 0)
            };
            let options = ListenOptions {
                backlog: Some(backlog),
                reuse_port: reuse_port(&socket),
            };
            match runner.stack().tcp_listen_with(local, options) {
                Ok(listener) => {
                    set(runner, fd, |s| s.kind = Kind::Listener(listener));
                    runner.flow = Some(Flow {
                        local_port: local.port(),
                        remote_port: runner.addresses.remote_port,
                    });
                    Ok(Some(Ok(0)))
                }
                Err(error) => Ok(Some(Err(tcp_errno(error)))),
            }
        }
        "accept" | "accept4" => {
            let Kind::Listener(listener) = socket.kind else {
                return Ok(Some(Err("EINVAL")));
            };
            let accepted = runner.stack().tcp_accept(listener);
            let ready = runner.acceptable.entry(listener).or_insert(0);
            match accepted {
                Ok(Some(_)) => *ready = ready.saturating_sub(1),
                _ => *ready = 0,
            }
            match accepted {
                Ok(Some(id)) => {
                    let mut accepted = Socket::new(false);
                    accepted.kind = Kind::Conn(id);
                    // Linux: accepted sockets inherit the listener's options, not O_NONBLOCK.
                    accepted.nodelay = socket.nodelay;
                    accepted.keepalive = socket.keepalive;
                    accepted.keep_idle = socket.keep_idle;
                    accepted.keep_interval = socket.keep_interval;
                    accepted.keep_count = socket.keep_count;
                    accepted.linger_zero = socket.linger_zero;
                    accepted.values = socket.values.clone();
                    apply_options(runner, &accepted, id);
                    runner.sockets.current = Some(id);
                    Ok(Some(Ok(runner
                        .sockets
                        .allocate(accepted, call.result.value))))
                }
                Ok(None) if socket.nonblocking => Ok(Some(Err("EAGAIN"))),
                Ok(None) => Ok(None),
                Err(error) => Ok(Some(Err(tcp_errno(error)))),
            }
        }
        "connect" => connect_call(runner, fd, &socket, args, state),
        "read" | "recv" | "recvfrom" | "recvmsg" => {
            let Some((len, flags)) = length_and_flags(name, args) else {
                return runner.skip(line, format!("{name}(): cannot read the length argument"));
            };
            if len > MAX_IO {
                return runner.skip(
                    line,
                    format!("{name}() of {len} bytes: this runner moves at most {MAX_IO} per call"),
                );
            }
            if flags & !(0x2 | 0x40 | 0x100) != 0 {
                return runner.skip(
                    line,
                    format!("{name}(): flags {flags:#x} are not supported"),
                );
            }
            Ok(read_call(runner, fd, &socket, len, flags))
        }
        "write" | "send" | "sendto" | "sendmsg" => {
            let Some((len, flags)) = length_and_flags(name, args) else {
                return runner.skip(line, format!("{name}(): cannot read the length argument"));
            };
            if len > MAX_IO {
                return runner.skip(
                    line,
                    format!("{name}() of {len} bytes: this runner moves at most {MAX_IO} per call"),
                );
            }
            if flags & 0x2000_0000 != 0 {
                return runner.skip(
                    line,
                    format!("{name}() with MSG_FASTOPEN: the engine has no TCP Fast Open"),
                );
            }
            if flags & !(0x40 | 0x4000) != 0 {
                return runner.skip(
                    line,
                    format!("{name}(): flags {flags:#x} are not supported"),
                );
            }
            Ok(write_call(runner, fd, &socket, len, flags, state))
        }
        "shutdown" => {
            let Kind::Conn(id) = socket.kind else {
                return Ok(Some(Err("ENOTCONN")));
            };
            let how = int(args.get(1)).unwrap_or(1);
            let now = runner.now;
            if how == 0 || how == 2 {
                // Linux: reads after SHUT_RD see the end of the stream.
                set(runner, fd, |s| s.read_shut = true);
                if let Err(error) = runner.stack().tcp_shutdown_read(now, id) {
                    return Ok(Some(Err(match error {
                        TcpError::InvalidHandle => "ENOTCONN",
                        error => tcp_errno(error),
                    })));
                }
            }
            if how == 0 {
                return Ok(Some(Ok(0)));
            }
            match runner.stack().tcp_shutdown(now, id) {
                Ok(()) => Ok(Some(Ok(0))),
                Err(TcpError::InvalidHandle) => Ok(Some(Err("ENOTCONN"))),
                Err(error) => Ok(Some(Err(tcp_errno(error)))),
            }
        }
        "close" => {
            runner.sockets.fds.remove(&fd);
            let now = runner.now;
            match socket.kind {
                Kind::Fresh => {}
                Kind::Listener(listener) => {
                    let _ = runner.stack().tcp_unlisten(now, listener);
                }
                Kind::Conn(id) => {
                    let _ = if socket.linger_zero {
                        runner.stack().tcp_abort(now, id)
                    } else {
                        runner.stack().tcp_close(now, id)
                    };
                }
            }
            Ok(Some(Ok(0)))
        }
        "setsockopt" => setsockopt_call(runner, line, fd, &socket, args),
        "getsockopt" => getsockopt_call(runner, line, fd, &socket, args),
        "fcntl" => {
            let command = int(args.get(1));
            match command {
                Some(3) => Ok(Some(Ok(2 | if socket.nonblocking { 0x800 } else { 0 }))),
                Some(4) => {
                    let flags = int(args.get(2)).unwrap_or(0);
                    set(runner, fd, |s| s.nonblocking = flags & 0x800 != 0);
                    Ok(Some(Ok(0)))
                }
                _ => runner.skip(line, "fcntl(): only F_GETFL and F_SETFL are supported"),
            }
        }
        "ioctl" => {
            let Kind::Conn(id) = socket.kind else {
                return Ok(Some(Err("EINVAL")));
            };
            let Some(info) = runner.stack.as_ref().and_then(|s| s.tcp_info(id)) else {
                return Ok(Some(Err("EINVAL")));
            };
            let value = match symbol(args.get(1)) {
                Some("SIOCINQ" | "FIONREAD") => info.recv_queue,
                Some("SIOCOUTQ" | "TIOCOUTQ") => info.send_queue,
                other => {
                    return runner.skip(
                        line,
                        format!("ioctl {} is not supported", other.unwrap_or("?")),
                    );
                }
            };
            check_value(runner, line, "ioctl", args.get(2), value as i64)?;
            Ok(Some(Ok(0)))
        }
        _ => runner.skip(line, format!("system call {name}() is not supported")),
    }
}

fn set(runner: &mut Runner, fd: i64, change: impl FnOnce(&mut Socket)) {
    if let Some(socket) = runner.sockets.fds.get_mut(&fd) {
        change(socket);
    }
}

fn tcp_errno(error: TcpError) -> &'static str {
    match error {
        TcpError::InvalidHandle => "EBADF",
        TcpError::AddrInUse => "EADDRINUSE",
        TcpError::AddrNotAvailable => "EADDRNOTAVAIL",
        TcpError::InvalidInput => "EINVAL",
        TcpError::WouldBlock => "EAGAIN",
        TcpError::NotConnected => "ENOTCONN",
        TcpError::BrokenPipe => "EPIPE",
        TcpError::LimitReached => "ENOBUFS",
        TcpError::Connection(error) => errno_of(error),
    }
}

fn check_value(
    runner: &Runner,
    line: usize,
    call: &str,
    expected: Option<&Expr>,
    value: i64,
) -> Step {
    match expected {
        None | Some(Expr::Ellipsis) => Ok(()),
        Some(expr) => match int(Some(expr)) {
            Some(wanted) if wanted == value => Ok(()),
            Some(wanted) => runner.fail(
                line,
                format!("{call}() gave [{value}], the script expects [{wanted}]"),
            ),
            None => runner.skip(line, format!("{call}(): cannot read the expected value")),
        },
    }
}

fn socket_call(runner: &mut Runner, line: usize, args: &[Expr], wanted: i64) -> Step<Attempt> {
    match args.first() {
        None | Some(Expr::Ellipsis) => {}
        Some(Expr::Symbol(family)) if family == "AF_INET" || family == "PF_INET" => {}
        Some(other) => {
            return runner.skip(
                line,
                format!("socket family {other:?} is not supported (IPv4 only)"),
            );
        }
    }
    let kind = int(args.get(1)).unwrap_or(1);
    if kind & 0xf != 1 {
        return runner.skip(line, "only SOCK_STREAM sockets are supported");
    }
    let fd = runner
        .sockets
        .allocate(Socket::new(kind & 0x800 != 0), wanted);
    Ok(Some(Ok(fd)))
}

fn apply_options(runner: &mut Runner, socket: &Socket, id: ConnectionId) {
    let now = runner.now;
    let keepalive = socket.keepalive.then(|| {
        let defaults = runner.keepalive;
        Keepalive {
            idle: socket.keep_idle.map_or(defaults.idle, Duration::from_secs),
            interval: socket
                .keep_interval
                .map_or(defaults.interval, Duration::from_secs),
            probes: socket.keep_count.unwrap_or(defaults.probes),
        }
    });
    let nodelay = socket.nodelay;
    let stack = runner.stack();
    let _ = stack.tcp_set_nodelay(now, id, nodelay);
    let _ = stack.tcp_set_keepalive(now, id, keepalive);
}

fn connect_call(
    runner: &mut Runner,
    fd: i64,
    socket: &Socket,
    args: &[Expr],
    state: &mut CallState,
) -> Step<Attempt> {
    match socket.kind {
        Kind::Listener(_) => Ok(Some(Err("EISCONN"))),
        Kind::Fresh => {
            let (port, address) = sockaddr(args.get(1));
            let remote = SocketAddrV4::new(
                address.unwrap_or(runner.addresses.remote),
                port.unwrap_or(runner.addresses.connect_port),
            );
            let now = runner.now;
            let local_port = socket.bound.map(|b| b.port());
            match runner.stack().tcp_connect(now, remote, local_port) {
                Ok(id) => {
                    set(runner, fd, |s| s.kind = Kind::Conn(id));
                    apply_options(runner, socket, id);
                    runner.sockets.current = Some(id);
                    if let Some(info) = runner.stack.as_ref().and_then(|s| s.tcp_info(id)) {
                        runner.flow = Some(Flow {
                            local_port: info.local.port(),
                            remote_port: remote.port(),
                        });
                    }
                    state.started = true;
                    if socket.nonblocking {
                        Ok(Some(Err("EINPROGRESS")))
                    } else {
                        Ok(None)
                    }
                }
                Err(error) => Ok(Some(Err(tcp_errno(error)))),
            }
        }
        Kind::Conn(id) => {
            let connection_state = runner.state_of(id);
            let error = runner.stack.as_ref().and_then(|s| s.tcp_error(id));
            if let Some(error) = error {
                if socket.error_reported {
                    return Ok(Some(Err("ECONNABORTED")));
                }
                set(runner, fd, |s| s.error_reported = true);
                return Ok(Some(Err(errno_of(error))));
            }
            match connection_state {
                Some(State::SynSent | State::SynReceived) if state.started => Ok(None),
                Some(State::SynSent | State::SynReceived) => Ok(Some(Err("EALREADY"))),
                Some(_) if state.started => Ok(Some(Ok(0))),
                _ => Ok(Some(Err("EISCONN"))),
            }
        }
    }
}

fn pending_error(
    runner: &mut Runner,
    fd: i64,
    socket: &Socket,
    id: ConnectionId,
) -> Option<&'static str> {
    if socket.error_reported {
        return None;
    }
    let error = runner.stack.as_ref().and_then(|s| s.tcp_error(id))?;
    set(runner, fd, |s| s.error_reported = true);
    Some(errno_of(error))
}

fn read_call(runner: &mut Runner, fd: i64, socket: &Socket, len: usize, flags: i64) -> Attempt {
    let Kind::Conn(id) = socket.kind else {
        return Some(Err(if matches!(socket.kind, Kind::Listener(_)) {
            "EINVAL"
        } else {
            "ENOTCONN"
        }));
    };
    if socket.read_shut {
        return Some(Ok(0));
    }
    let nonblocking = socket.nonblocking || flags & 0x40 != 0;
    let now = runner.now;
    let mut buffer = vec![0u8; len];
    let result = if flags & 2 != 0 {
        match runner.stack().tcp_peek(now, id, &mut buffer) {
            Ok(0) if len > 0 => {
                let open = matches!(
                    runner.state_of(id),
                    Some(
                        State::SynSent
                            | State::SynReceived
                            | State::Established
                            | State::FinWait1
                            | State::FinWait2
                    )
                );
                if open {
                    Err(TcpError::WouldBlock)
                } else {
                    Ok(0)
                }
            }
            other => other,
        }
    } else {
        runner.stack().tcp_recv(now, id, &mut buffer)
    };
    match result {
        Ok(n) => Some(Ok(n as i64)),
        Err(TcpError::WouldBlock) => {
            if matches!(
                runner.state_of(id),
                Some(State::SynSent | State::SynReceived)
            ) && nonblocking
            {
                return Some(Err("EAGAIN"));
            }
            if nonblocking {
                Some(Err("EAGAIN"))
            } else {
                None
            }
        }
        Err(TcpError::Connection(error)) => {
            if socket.error_reported {
                Some(Ok(0))
            } else {
                set(runner, fd, |s| s.error_reported = true);
                Some(Err(errno_of(error)))
            }
        }
        Err(TcpError::InvalidHandle) => match pending_error(runner, fd, socket, id) {
            Some(errno) => Some(Err(errno)),
            None => Some(Ok(0)),
        },
        Err(error) => Some(Err(tcp_errno(error))),
    }
}

fn write_call(
    runner: &mut Runner,
    fd: i64,
    socket: &Socket,
    len: usize,
    flags: i64,
    state: &mut CallState,
) -> Attempt {
    let Kind::Conn(id) = socket.kind else {
        return Some(Err("EPIPE"));
    };
    let nonblocking = socket.nonblocking || flags & 0x40 != 0;
    let now = runner.now;
    if matches!(
        runner.state_of(id),
        Some(State::SynSent | State::SynReceived)
    ) {
        // Linux waits for the handshake before queueing.
        return if nonblocking {
            Some(Err("EAGAIN"))
        } else {
            None
        };
    }
    if len == 0 {
        return Some(Ok(0));
    }
    let data = vec![0u8; len];
    loop {
        let rest = data.get(state.written..).unwrap_or(&[]);
        if rest.is_empty() {
            return Some(Ok(len as i64));
        }
        match runner.stack().tcp_send(now, id, rest) {
            Ok(n) => state.written += n,
            Err(TcpError::WouldBlock) => {
                return match (nonblocking, state.written) {
                    (true, 0) => Some(Err("EAGAIN")),
                    (true, written) => Some(Ok(written as i64)),
                    (false, _) => None,
                };
            }
            Err(TcpError::Connection(error)) => {
                if state.written > 0 {
                    return Some(Ok(state.written as i64));
                }
                if socket.error_reported {
                    return Some(Err("EPIPE"));
                }
                set(runner, fd, |s| s.error_reported = true);
                return Some(Err(errno_of(error)));
            }
            Err(TcpError::InvalidHandle | TcpError::BrokenPipe) => {
                if let Some(errno) = pending_error(runner, fd, socket, id) {
                    return Some(Err(errno));
                }
                return Some(Err("EPIPE"));
            }
            Err(error) => return Some(Err(tcp_errno(error))),
        }
    }
}

fn option_name(level: Option<&str>, name: Option<&str>) -> String {
    format!("{}:{}", level.unwrap_or("?"), name.unwrap_or("?"))
}

fn setsockopt_call(
    runner: &mut Runner,
    line: usize,
    fd: i64,
    socket: &Socket,
    args: &[Expr],
) -> Step<Attempt> {
    let level = symbol(args.get(1));
    let name = symbol(args.get(2));
    let value_expr = args.get(3);
    let key = option_name(level, name);
    let linux = runner.profile == crate::setup::Profile::Linux;
    let started = runner.stack.is_some();
    let value = int(value_expr);
    let conn = match socket.kind {
        Kind::Conn(id) => Some(id),
        _ => None,
    };
    match name {
        Some("SO_REUSEADDR" | "SO_REUSEPORT") => {}
        Some("SO_KEEPALIVE") => set(runner, fd, |s| s.keepalive = value.unwrap_or(0) != 0),
        Some("TCP_NODELAY") => set(runner, fd, |s| s.nodelay = value.unwrap_or(0) != 0),
        Some("TCP_KEEPIDLE") => set(runner, fd, |s| {
            s.keep_idle = value.and_then(|v| u64::try_from(v).ok())
        }),
        Some("TCP_KEEPINTVL") => set(runner, fd, |s| {
            s.keep_interval = value.and_then(|v| u64::try_from(v).ok())
        }),
        Some("TCP_KEEPCNT") => set(runner, fd, |s| {
            s.keep_count = value.and_then(|v| u32::try_from(v).ok())
        }),
        Some("SO_LINGER") => {
            let onoff = value_expr.and_then(|v| int(v.field("onoff").or(v.field("l_onoff"))));
            let linger = value_expr.and_then(|v| int(v.field("linger").or(v.field("l_linger"))));
            match (onoff, linger) {
                (Some(0), _) => set(runner, fd, |s| s.linger_zero = false),
                (Some(_), Some(0)) => set(runner, fd, |s| s.linger_zero = true),
                _ => {
                    return runner.skip(
                        line,
                        "SO_LINGER with a timeout is not supported (only {onoff=1, linger=0})",
                    );
                }
            }
        }
        Some(buffer @ ("SO_RCVBUF" | "SO_SNDBUF")) => {
            let Some(size) = value.and_then(|v| usize::try_from(v).ok()) else {
                return runner.skip(line, format!("{buffer}: cannot read the value"));
            };
            if started {
                return runner.skip(line, format!("{buffer} after the engine started: the engine's buffers are per stack, not per socket"));
            }
            // Linux doubles the value for its bookkeeping overhead.
            let size = if linux { size * 2 } else { size };
            if buffer == "SO_RCVBUF" {
                runner.config.tcp.recv_buffer = size;
            } else {
                runner.config.tcp.send_buffer = size;
            }
            let key2 = key.clone();
            set(runner, fd, |s| {
                s.values.insert(key2, size as i64);
            });
            return Ok(Some(Ok(0)));
        }
        Some("TCP_USER_TIMEOUT") => {
            let Some(ms) = value.and_then(|v| u64::try_from(v).ok()) else {
                return runner.skip(line, "TCP_USER_TIMEOUT: cannot read the value");
            };
            if started {
                return runner.skip(
                    line,
                    "TCP_USER_TIMEOUT after the engine started: the engine sets it per stack",
                );
            }
            runner.config.tcp.user_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        other => {
            return runner.skip(
                line,
                format!(
                    "setsockopt {} is not supported by the engine",
                    other.unwrap_or("?")
                ),
            );
        }
    }
    if let Some(v) = value {
        set(runner, fd, |s| {
            s.values.insert(key, v);
        });
    }
    if let (Some(id), Some(updated)) = (conn, runner.sockets.fds.get(&fd).cloned()) {
        apply_options(runner, &updated, id);
    }
    Ok(Some(Ok(0)))
}

fn getsockopt_call(
    runner: &mut Runner,
    line: usize,
    fd: i64,
    socket: &Socket,
    args: &[Expr],
) -> Step<Attempt> {
    let level = symbol(args.get(1));
    let name = symbol(args.get(2));
    let value = match name {
        Some("SO_ERROR") => match socket.kind {
            Kind::Conn(id) => pending_error(runner, fd, socket, id)
                .and_then(errno_number)
                .unwrap_or(0),
            _ => 0,
        },
        Some("SO_TYPE") => 1,
        Some("TCP_NODELAY") => i64::from(socket.nodelay),
        Some("SO_KEEPALIVE") => i64::from(socket.keepalive),
        Some(
            other @ ("TCP_KEEPIDLE" | "TCP_KEEPINTVL" | "TCP_KEEPCNT" | "SO_RCVBUF" | "SO_SNDBUF"
            | "SO_REUSEADDR" | "SO_REUSEPORT" | "TCP_USER_TIMEOUT"),
        ) => match socket.values.get(&option_name(level, Some(other))) {
            Some(value) => *value,
            None => {
                let defaults = runner.keepalive;
                match other {
                    "TCP_KEEPIDLE" => defaults.idle.as_secs() as i64,
                    "TCP_KEEPINTVL" => defaults.interval.as_secs() as i64,
                    "TCP_KEEPCNT" => i64::from(defaults.probes),
                    "SO_RCVBUF" => runner.config.tcp.recv_buffer as i64,
                    "SO_SNDBUF" => runner.config.tcp.send_buffer as i64,
                    _ => 0,
                }
            }
        },
        other => {
            return runner.skip(
                line,
                format!("getsockopt {} is not supported", other.unwrap_or("?")),
            );
        }
    };
    check_value(runner, line, "getsockopt", args.get(3), value)?;
    Ok(Some(Ok(0)))
}

fn poll_call(runner: &mut Runner, line: usize, args: &[Expr]) -> Step<Attempt> {
    let Some(Expr::Array(entries)) = args.first() else {
        return runner.skip(line, "poll(): cannot read the pollfd array");
    };
    let timeout = int(args.get(2)).unwrap_or(0);
    let mut ready = 0;
    let mut mismatches = Vec::new();
    for entry in entries {
        let (Some(fd), events) = (
            int(entry.field("fd")),
            int(entry.field("events")).unwrap_or(0),
        ) else {
            return runner.skip(line, "poll(): an entry has no fd");
        };
        let Some(socket) = runner.sockets.fds.get(&fd).cloned() else {
            continue;
        };
        let revents = match socket.kind {
            Kind::Listener(listener) => {
                let ready = runner.acceptable.get(&listener).is_some_and(|n| *n > 0);
                let readable = if ready { 0x1 | 0x40 } else { 0 };
                readable & events
            }
            Kind::Fresh => 0x10 | (events & 0x4),
            Kind::Conn(id) => poll_events(runner, id, &socket) & (events | 0x8 | 0x10),
        };
        if revents != 0 {
            ready += 1;
        }
        if let Some(wanted) = int(entry.field("revents"))
            && wanted != revents
        {
            mismatches.push(format!(
                "fd {fd}: revents {revents:#x}, the script expects {wanted:#x}"
            ));
        }
    }
    if ready == 0 && timeout != 0 {
        // Blocks until something is ready; the runner checks the return time.
        return Ok(None);
    }
    if !mismatches.is_empty() {
        return runner.fail(line, format!("poll(): {}", mismatches.join("; ")));
    }
    Ok(Some(Ok(ready)))
}

fn poll_events(runner: &mut Runner, id: ConnectionId, socket: &Socket) -> i64 {
    let now = runner.now;
    let Some(stack) = runner.stack.as_mut() else {
        return 0;
    };
    let info = stack.tcp_info(id);
    let state = stack.tcp_state(id);
    let error = stack.tcp_error(id);
    let mut events = 0;
    if error.is_some() && !socket.error_reported {
        events |= 0x8;
    }
    let peer_closed = matches!(
        state,
        Some(State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed)
            | None
    );
    if info.as_ref().is_some_and(|i| i.recv_queue > 0) || peer_closed || error.is_some() {
        events |= 0x1 | 0x40;
    }
    if peer_closed {
        events |= 0x2000;
    }
    let writable = matches!(state, Some(State::Established | State::CloseWait))
        && stack.tcp_send_space(now, id).is_ok_and(|n| n > 0);
    if writable || error.is_some() {
        events |= 0x4 | 0x100;
    }
    if error.is_some() || matches!(state, Some(State::Closed | State::TimeWait) | None) {
        events |= 0x10;
    }
    events
}
