//! A parsed packetdrill script: option lines and timed events, each with its line number.

use rawtcp_wire::tcp::TcpFlags;

/// A whole script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// `--name=value` lines, in order.
    pub options: Vec<(usize, String, String)>,
    /// The events, in script order.
    pub events: Vec<Event>,
}

/// One timed line of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1-based line where the event starts.
    pub line: usize,
    /// When it happens.
    pub time: Time,
    /// What happens.
    pub kind: EventKind,
}

/// A time as the script writes it, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// `N`: since the start of the script.
    Absolute(i64),
    /// `+N`: after the previous event.
    Relative(i64),
    /// `*`: whenever.
    Any,
    /// `a~b`: any time in the range; `relative` when written `+a~+b`.
    Range {
        /// Earliest.
        start: i64,
        /// Latest.
        end: i64,
        /// Both ends relative to the previous event.
        relative: bool,
    },
    /// `a...b`: a system call that starts at `a` and returns at `b`.
    Blocking {
        /// Start.
        start: i64,
        /// Return.
        end: i64,
        /// Both ends relative to the previous event.
        relative: bool,
    },
}

/// What an event does.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A TCP segment, `<` inbound (injected) or `>` outbound (expected).
    Tcp(TcpLine),
    /// An inbound ICMP message.
    Icmp(IcmpLine),
    /// A system call with its expected result.
    Syscall(Syscall),
    /// A backquoted shell command (never executed).
    Command(String),
    /// A `%{ ... }%` block.
    Code(String),
}

/// Direction of a packet line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: from the remote peer to the engine.
    Inbound,
    /// `>`: from the engine, expected.
    Outbound,
}

/// A TCP packet line.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpLine {
    /// `<` or `>`.
    pub direction: Direction,
    /// Control bits.
    pub flags: TcpFlags,
    /// First sequence number (relative for outbound).
    pub seq_start: u32,
    /// Sequence number after the data.
    pub seq_end: u32,
    /// Payload length in parentheses.
    pub len: u32,
    /// `ack N`.
    pub ack: Option<u32>,
    /// `win N`.
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// Options: `None` when the line has none, `Some(Wildcard)` for `<...>`.
    pub options: Option<OptionsSpec>,
    /// An IP-level ECN marking in brackets (`[ect0]`), kept to say it is unsupported.
    pub ecn: Option<String>,
}

/// The options of a packet line.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionsSpec {
    /// `<...>`: any options.
    Wildcard,
    /// A list.
    List(Vec<TcpOptionSpec>),
}

/// One option as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TcpOptionSpec {
    /// `nop`.
    Nop,
    /// `eol`.
    Eol,
    /// `mss N`.
    Mss(u16),
    /// `wscale N`.
    WindowScale(u8),
    /// `sackOK`.
    SackPermitted,
    /// `sack a:b c:d ...`.
    Sack(Vec<(u32, u32)>),
    /// `TS val N ecr N`.
    Timestamps {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// An option this runner cannot build or check (Fast Open, MD5, experimental ...).
    Unsupported(String),
}

/// An ICMP line: `< icmp unreachable port_unreachable [mtu N] [seq:end(len)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct IcmpLine {
    /// `unreachable`, `time_exceeded`, ...
    pub kind: String,
    /// The code's name, e.g. `frag_needed`, `port_unreachable`.
    pub code: String,
    /// `mtu N`.
    pub mtu: Option<u16>,
    /// The quoted TCP sequence range (outbound space), if given.
    pub quoted: Option<(u32, u32, u32)>,
}

/// A system call line.
#[derive(Debug, Clone, PartialEq)]
pub struct Syscall {
    /// Its name.
    pub name: String,
    /// Its arguments.
    pub args: Vec<Expr>,
    /// What it must return.
    pub result: Expected,
}

/// The expected result of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The return value (`-1` for errors).
    pub value: i64,
    /// The errno's name after `-1`, if given.
    pub errno: Option<String>,
}

/// An argument expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `...`
    Ellipsis,
    /// A number.
    Int(i64),
    /// A quoted string.
    Str(String),
    /// A symbol such as `SOCK_STREAM` or `NULL`.
    Symbol(String),
    /// `A|B|C`.
    BitOr(Vec<Expr>),
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// `{name=value, value}`: fields, named or not.
    Struct(Vec<(Option<String>, Expr)>),
    /// `htons(8080)`, `inet_addr("1.2.3.4")`.
    Call(String, Vec<Expr>),
}

impl Expr {
    /// The field `name` of a struct expression.
    pub fn field(&self, name: &str) -> Option<&Expr> {
        match self {
            Expr::Struct(fields) => fields
                .iter()
                .find(|(field, _)| field.as_deref() == Some(name))
                .map(|(_, value)| value),
            _ => None,
        }
    }
}
