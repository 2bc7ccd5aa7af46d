//! The script parser: packetdrill's language, read by hand with one byte cursor.
//!
//! Any input gives a [`Script`] or a [`ParseError`] naming the line; nothing panics. Comments
//! are `// ...` to the end of the line and `/* ... */`. Option lines (`--name=value`) may
//! appear before the first event; a backquoted command or a `%{ }%` block may span lines.

use core::fmt;

use rawtcp_wire::tcp::TcpFlags;

use crate::script::{
    Direction, Event, EventKind, Expected, Expr, IcmpLine, OptionsSpec, Script, Syscall, TcpLine,
    TcpOptionSpec, Time,
};

/// Why a script could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = core::result::Result<T, ParseError>;

/// Reads a whole script.
///
/// # Examples
/// ```
/// let script = rawtcp_drill::parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n").unwrap();
/// assert_eq!(script.events.len(), 1);
/// let error = rawtcp_drill::parse("0 < S 0:0(0\n").unwrap_err();
/// assert_eq!(error.line, 1);
/// ```
pub fn parse(text: &str) -> Result<Script> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut script = Script::default();
    loop {
        cursor.skip_space(true)?;
        if cursor.at_end() {
            break;
        }
        if cursor.starts_with("--") {
            let line = cursor.line;
            let text = cursor.rest_of_line();
            let text = text.trim_start_matches('-');
            let (name, value) = match text.split_once('=') {
                Some((name, value)) => (name.trim(), value.trim()),
                None => (text.trim(), ""),
            };
            script
                .options
                .push((line, name.to_string(), value.to_string()));
            continue;
        }
        script.events.push(cursor.event()?);
    }
    Ok(script)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Cursor<'_> {
    fn error<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(ParseError {
            line: self.line,
            message: message.into(),
        })
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn starts_with(&self, s: &str) -> bool {
        self.bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s.as_bytes()))
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            for _ in 0..s.len() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<()> {
        self.skip_space(false)?;
        if self.eat(s) {
            Ok(())
        } else {
            self.error(format!("expected `{s}`, found {}", self.found()))
        }
    }

    fn found(&self) -> String {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(rest.len())
            .min(24);
        if end == 0 {
            "the end of the line".to_string()
        } else {
            format!("`{}`", String::from_utf8_lossy(&rest[..end]))
        }
    }

    fn rest_of_line(&mut self) -> String {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'\n' {
                break;
            }
            self.pos += 1;
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        match text.find("//") {
            Some(comment) => text[..comment].trim().to_string(),
            None => text.trim().to_string(),
        }
    }

    /// Skips blanks and comments; newlines too when `newlines`.
    fn skip_space(&mut self, newlines: bool) -> Result<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => {
                    self.bump();
                }
                Some(b'\n') if newlines => {
                    self.bump();
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let line = self.line;
                    self.bump();
                    self.bump();
                    loop {
                        if self.at_end() {
                            return Err(ParseError {
                                line,
                                message: "unterminated /* comment".to_string(),
                            });
                        }
                        if self.eat("*/") {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(is_ident) {
            self.pos += 1;
        }
        Some(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned())
    }

    /// An unsigned integer: decimal or `0x` hex.
    fn unsigned(&mut self) -> Result<u64> {
        self.skip_space(false)?;
        let start = self.pos;
        let (radix, digits_start) = if self.starts_with("0x") || self.starts_with("0X") {
            self.pos += 2;
            (16, self.pos)
        } else {
            (10, self.pos)
        };
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            if radix == 10 && !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                break;
            }
            self.pos += 1;
        }
        let digits = String::from_utf8_lossy(&self.bytes[digits_start..self.pos]).into_owned();
        match u64::from_str_radix(&digits, radix) {
            Ok(value) => Ok(value),
            Err(_) => {
                self.pos = start;
                self.error(format!("expected a number, found {}", self.found()))
            }
        }
    }

    fn u32_value(&mut self, what: &str) -> Result<u32> {
        let value = self.unsigned()?;
        u32::try_from(value).or_else(|_| self.error(format!("{what} {value} is over 2^32 - 1")))
    }

    fn u16_value(&mut self, what: &str) -> Result<u16> {
        let value = self.unsigned()?;
        u16::try_from(value).or_else(|_| self.error(format!("{what} {value} is over 65535")))
    }

    /// Seconds with an optional fraction (`1`, `.1`, `0.100`), as microseconds.
    fn seconds(&mut self) -> Result<i64> {
        let start = self.pos;
        let mut whole: i64 = 0;
        let mut digits = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(i64::from(b - b'0')))
                .ok_or_else(|| ParseError {
                    line: self.line,
                    message: "time too large".to_string(),
                })?;
            digits += 1;
            self.pos += 1;
        }
        let mut micros: i64 = 0;
        // A `.` starts a fraction, but `...` is the blocking-call ellipsis.
        if self.peek() == Some(b'.') && !self.starts_with("...") {
            self.pos += 1;
            let mut scale = 100_000;
            while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
                micros += i64::from(b - b'0') * scale;
                scale /= 10;
                digits += 1;
                self.pos += 1;
            }
        }
        if digits == 0 {
            self.pos = start;
            return self.error(format!("expected a time, found {}", self.found()));
        }
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(micros))
            .ok_or_else(|| ParseError {
                line: self.line,
                message: "time too large".to_string(),
            })
    }

    /// `+N` or `N`: (micros, relative).
    fn time_point(&mut self) -> Result<(i64, bool)> {
        let relative = self.eat("+");
        Ok((self.seconds()?, relative))
    }

    fn time(&mut self) -> Result<Time> {
        if self.eat("*") {
            return Ok(Time::Any);
        }
        let starts_time = matches!(self.peek(), Some(b'+' | b'0'..=b'9'))
            || (self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()));
        if !starts_time {
            // Commands and code blocks may omit the time: they run after the previous event.
            return Ok(Time::Relative(0));
        }
        let (start, relative) = self.time_point()?;
        if self.eat("~") {
            let (end, _) = self.time_point()?;
            return Ok(Time::Range {
                start,
                end,
                relative,
            });
        }
        if self.eat("...") {
            let (end, _) = self.time_point()?;
            return Ok(Time::Blocking {
                start,
                end,
                relative,
            });
        }
        Ok(if relative {
            Time::Relative(start)
        } else {
            Time::Absolute(start)
        })
    }

    fn event(&mut self) -> Result<Event> {
        let line = self.line;
        let time = self.time()?;
        self.skip_space(false)?;
        let kind = match self.peek() {
            Some(b'<') => {
                self.bump();
                self.packet(Direction::Inbound)?
            }
            Some(b'>') => {
                self.bump();
                self.packet(Direction::Outbound)?
            }
            Some(b'`') => {
                self.bump();
                let start = self.pos;
                while self.peek().is_some_and(|b| b != b'`') {
                    self.bump();
                }
                if self.at_end() {
                    return Err(ParseError {
                        line,
                        message: "unterminated backquoted command".to_string(),
                    });
                }
                let command = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
                self.bump();
                EventKind::Command(command.trim().to_string())
            }
            Some(b'%') if self.peek_at(1) == Some(b'{') => {
                self.pos += 2;
                let start = self.pos;
                while !self.at_end() && !self.starts_with("}%") {
                    self.bump();
                }
                if self.at_end() {
                    return Err(ParseError {
                        line,
                        message: "unterminated %{ block".to_string(),
                    });
                }
                let code = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
                self.pos += 2;
                EventKind::Code(code)
            }
            Some(b) if is_ident_start(b) => EventKind::Syscall(self.syscall()?),
            _ => return self.error(format!("expected an event, found {}", self.found())),
        };
        self.end_of_line()?;
        Ok(Event { line, time, kind })
    }

    fn end_of_line(&mut self) -> Result<()> {
        self.skip_space(false)?;
        match self.peek() {
            None | Some(b'\n') => Ok(()),
            Some(b';') => {
                self.bump();
                self.end_of_line()
            }
            _ => self.error(format!("unexpected {} after the event", self.found())),
        }
    }

    fn packet(&mut self, direction: Direction) -> Result<EventKind> {
        self.skip_space(false)?;
        let mut ecn = None;
        if self.eat("[") {
            let start = self.pos;
            while self.peek().is_some_and(|b| b != b']' && b != b'\n') {
                self.bump();
            }
            ecn = Some(String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned());
            self.expect("]")?;
            self.skip_space(false)?;
        }
        if self.starts_with("icmp") && !self.peek_at(4).is_some_and(is_ident) {
            self.pos += 4;
            return Ok(EventKind::Icmp(self.icmp()?));
        }
        if self.starts_with("udp") || self.starts_with("sctp") {
            return self.error("only TCP and ICMP packet lines are supported");
        }
        let flags = self.flags()?;
        self.skip_space(false)?;
        let seq_start = self.u32_value("sequence number")?;
        self.expect(":")?;
        let seq_end = self.u32_value("sequence number")?;
        self.expect("(")?;
        let len = self.u32_value("length")?;
        self.expect(")")?;
        let mut line = TcpLine {
            direction,
            flags,
            seq_start,
            seq_end,
            len,
            ack: None,
            win: None,
            urg: None,
            options: None,
            ecn,
        };
        loop {
            self.skip_space(false)?;
            if self.eat("<") {
                line.options = Some(self.options()?);
                continue;
            }
            let save = (self.pos, self.line);
            match self.ident().as_deref() {
                Some("ack") => line.ack = Some(self.u32_value("ack")?),
                Some("win") => line.win = Some(self.u16_value("window")?),
                Some("urg") => line.urg = Some(self.u16_value("urgent pointer")?),
                Some(other) => {
                    (self.pos, self.line) = save;
                    return self.error(format!("unknown packet field `{other}`"));
                }
                None => break,
            }
        }
        Ok(EventKind::Tcp(line))
    }

    fn flags(&mut self) -> Result<TcpFlags> {
        let mut flags = TcpFlags::EMPTY;
        let mut any = false;
        while let Some(b) = self.peek() {
            let flag = match b {
                b'S' => TcpFlags::SYN,
                b'F' => TcpFlags::FIN,
                b'R' => TcpFlags::RST,
                b'P' => TcpFlags::PSH,
                b'.' => TcpFlags::ACK,
                b'U' => TcpFlags::URG,
                b'E' => TcpFlags::ECE,
                b'W' => TcpFlags::CWR,
                b'-' => TcpFlags::EMPTY,
                _ => break,
            };
            flags |= flag;
            any = true;
            self.pos += 1;
        }
        if !any || self.peek().is_some_and(is_ident) {
            return self.error(format!("expected TCP flags, found {}", self.found()));
        }
        Ok(flags)
    }

    fn options(&mut self) -> Result<OptionsSpec> {
        self.skip_space(false)?;
        if self.eat("...") {
            self.expect(">")?;
            return Ok(OptionsSpec::Wildcard);
        }
        let mut list = Vec::new();
        loop {
            self.skip_space(false)?;
            if self.eat(">") {
                return Ok(OptionsSpec::List(list));
            }
            let Some(name) = self.ident() else {
                return self.error(format!("expected a TCP option, found {}", self.found()));
            };
            let option = match name.as_str() {
                "nop" => TcpOptionSpec::Nop,
                "eol" => TcpOptionSpec::Eol,
                "mss" => TcpOptionSpec::Mss(self.u16_value("mss")?),
                "wscale" => {
                    let shift = self.unsigned()?;
                    match u8::try_from(shift) {
                        Ok(shift) => TcpOptionSpec::WindowScale(shift),
                        Err(_) => return self.error(format!("wscale {shift} is over 255")),
                    }
                }
                "sackOK" => TcpOptionSpec::SackPermitted,
                "sack" => {
                    let mut blocks = Vec::new();
                    loop {
                        self.skip_space(false)?;
                        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                            break;
                        }
                        let left = self.u32_value("SACK edge")?;
                        self.expect(":")?;
                        let right = self.u32_value("SACK edge")?;
                        blocks.push((left, right));
                    }
                    if blocks.is_empty() {
                        return self.error("`sack` needs at least one block a:b");
                    }
                    TcpOptionSpec::Sack(blocks)
                }
                "TS" => {
                    self.skip_space(false)?;
                    if self.ident().as_deref() != Some("val") {
                        return self.error("expected `TS val N ecr N`");
                    }
                    let val = self.u32_value("TS val")?;
                    self.skip_space(false)?;
                    if self.ident().as_deref() != Some("ecr") {
                        return self.error("expected `ecr N` after `TS val N`");
                    }
                    let ecr = self.u32_value("TS ecr")?;
                    TcpOptionSpec::Timestamps { val, ecr }
                }
                other => {
                    // Fast Open cookies, MD5, experimental options: kept as text up to the
                    // next comma so the runner can say what it cannot do.
                    let mut text = other.to_string();
                    while self
                        .peek()
                        .is_some_and(|b| b != b',' && b != b'>' && b != b'\n')
                    {
                        if let Some(b) = self.bump() {
                            text.push(char::from(b));
                        }
                    }
                    TcpOptionSpec::Unsupported(text.trim().to_string())
                }
            };
            list.push(option);
            self.skip_space(false)?;
            if self.eat(",") {
                continue;
            }
            if self.peek() != Some(b'>') {
                return self.error(format!("expected `,` or `>`, found {}", self.found()));
            }
        }
    }

    fn icmp(&mut self) -> Result<IcmpLine> {
        self.skip_space(false)?;
        let Some(kind) = self.ident() else {
            return self.error("expected an ICMP type such as `unreachable`");
        };
        self.skip_space(false)?;
        let code = self.ident().unwrap_or_default();
        let mut line = IcmpLine {
            kind,
            code,
            mtu: None,
            quoted: None,
        };
        loop {
            self.skip_space(false)?;
            if self.eat("[") {
                self.skip_space(false)?;
                let start = self.u32_value("sequence number")?;
                self.expect(":")?;
                let end = self.u32_value("sequence number")?;
                self.expect("(")?;
                let len = self.u32_value("length")?;
                self.expect(")")?;
                self.expect("]")?;
                line.quoted = Some((start, end, len));
                continue;
            }
            let save = (self.pos, self.line);
            match self.ident().as_deref() {
                Some("mtu") => line.mtu = Some(self.u16_value("mtu")?),
                Some(other) => {
                    (self.pos, self.line) = save;
                    return self.error(format!("unknown ICMP field `{other}`"));
                }
                None => return Ok(line),
            }
        }
    }

    fn syscall(&mut self) -> Result<Syscall> {
        let name = self.ident().unwrap_or_default();
        self.expect("(")?;
        let args = self.expr_list(")")?;
        self.expect("=")?;
        self.skip_space(false)?;
        let negative = self.eat("-");
        let value = self.unsigned()?;
        let value = i64::try_from(value).or_else(|_| self.error("return value too large"))?;
        let value = if negative { -value } else { value };
        self.skip_space(false)?;
        let errno = self.ident();
        self.skip_space(false)?;
        if self.peek() == Some(b'(') {
            // The errno's text, `(Operation now in progress)`, possibly nested.
            let mut depth = 0;
            while let Some(b) = self.peek() {
                if b == b'\n' {
                    return self.error("unterminated `(` after the errno");
                }
                self.bump();
                match b {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Syscall {
            name,
            args,
            result: Expected { value, errno },
        })
    }

    fn expr_list(&mut self, close: &str) -> Result<Vec<Expr>> {
        let mut list = Vec::new();
        self.skip_space(true)?;
        if self.eat(close) {
            return Ok(list);
        }
        loop {
            list.push(self.expr()?);
            self.skip_space(true)?;
            if self.eat(close) {
                return Ok(list);
            }
            if !self.eat(",") {
                return self.error(format!("expected `,` or `{close}`, found {}", self.found()));
            }
        }
    }

    fn expr(&mut self) -> Result<Expr> {
        let first = self.term()?;
        self.skip_space(true)?;
        if self.peek() != Some(b'|') {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.eat("|") {
            terms.push(self.term()?);
            self.skip_space(true)?;
        }
        Ok(Expr::BitOr(terms))
    }

    fn term(&mut self) -> Result<Expr> {
        self.skip_space(true)?;
        if self.eat("...") {
            return Ok(Expr::Ellipsis);
        }
        if self.eat("[") {
            return Ok(Expr::Array(self.expr_list("]")?));
        }
        if self.eat("{") {
            let mut fields = Vec::new();
            self.skip_space(true)?;
            if self.eat("}") {
                return Ok(Expr::Struct(fields));
            }
            loop {
                self.skip_space(true)?;
                let save = (self.pos, self.line);
                let mut name = None;
                if let Some(ident) = self.ident() {
                    // `msg_iov(1)=...`: the count in parentheses is decoration.
                    self.skip_space(false)?;
                    if self.peek() == Some(b'(') {
                        let paren = (self.pos, self.line);
                        self.bump();
                        let _ = self.unsigned();
                        if self.eat(")") && {
                            self.skip_space(false)?;
                            self.peek() == Some(b'=')
                        } {
                        } else {
                            (self.pos, self.line) = paren;
                        }
                    }
                    self.skip_space(false)?;
                    if self.eat("=") {
                        name = Some(ident);
                    } else {
                        (self.pos, self.line) = save;
                    }
                }
                let value = self.expr()?;
                fields.push((name, value));
                self.skip_space(true)?;
                if self.eat("}") {
                    return Ok(Expr::Struct(fields));
                }
                if !self.eat(",") {
                    return self.error(format!("expected `,` or `}}`, found {}", self.found()));
                }
            }
        }
        if self.peek() == Some(b'"') {
            self.bump();
            let mut text = String::new();
            loop {
                if matches!(self.peek(), None | Some(b'\n')) {
                    return self.error("unterminated string");
                }
                match self.bump() {
                    None | Some(b'\n') => return self.error("unterminated string"),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        if let Some(b) = self.bump() {
                            text.push(char::from(b));
                        }
                    }
                    Some(b) => text.push(char::from(b)),
                }
            }
            return Ok(Expr::Str(text));
        }
        if self.peek() == Some(b'-') || self.peek().is_some_and(|b| b.is_ascii_digit()) {
            let negative = self.eat("-");
            let value = self.unsigned()?;
            let value = i64::try_from(value).or_else(|_| self.error("number too large"))?;
            return Ok(Expr::Int(if negative { -value } else { value }));
        }
        if let Some(ident) = self.ident() {
            self.skip_space(false)?;
            if self.eat("(") {
                let args = self.expr_list(")")?;
                return Ok(Expr::Call(ident, args));
            }
            return Ok(Expr::Symbol(ident));
        }
        self.error(format!("expected an argument, found {}", self.found()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_lines() {
        let text = "--tolerance_usecs=10000\n\
            `sysctl -q net.ipv4.tcp_timestamps=0`\n\
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
            +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n\
            +.1 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>\n\
            +0 > S. 0:0(0) ack 1 <...>\n\
            +0...0.100 read(4, ..., 2000) = 2000\n\
            0.1~0.2 > . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 200,sack 1:2 3:4>\n\
            +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
            * < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n\
            %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%\n";
        let script = parse(text).unwrap();
        assert_eq!(script.options[0].1, "tolerance_usecs");
        assert_eq!(script.options[0].2, "10000");
        assert_eq!(script.events.len(), 10);
        let EventKind::Tcp(syn) = &script.events[3].kind else {
            panic!("not a packet: {:?}", script.events[3]);
        };
        assert_eq!(syn.win, Some(32792));
        assert_eq!(script.events[3].time, Time::Relative(100_000));
        assert_eq!(
            script.events[5].time,
            Time::Blocking {
                start: 0,
                end: 100_000,
                relative: true
            }
        );
        assert_eq!(
            script.events[6].time,
            Time::Range {
                start: 100_000,
                end: 200_000,
                relative: false
            }
        );
        let EventKind::Syscall(connect) = &script.events[7].kind else {
            panic!("not a call");
        };
        assert_eq!(connect.result.value, -1);
        assert_eq!(connect.result.errno.as_deref(), Some("EINPROGRESS"));
        let EventKind::Icmp(icmp) = &script.events[8].kind else {
            panic!("not icmp");
        };
        assert_eq!(icmp.mtu, Some(1200));
        assert_eq!(icmp.quoted, Some((1, 1461, 1460)));
    }

    #[test]
    fn reads_structs_and_iovecs() {
        let text = "0 sendmsg(4, {msg_name(0)=NULL, msg_namelen=0, msg_iov(2)=[{..., 100}, {..., 200}], msg_flags=0}, 0) = 300\n\
                    0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1\n\
                    0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
                    0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.168.0.1\")}, 16) = 0\n";
        let script = parse(text).unwrap();
        let EventKind::Syscall(sendmsg) = &script.events[0].kind else {
            panic!("not a call");
        };
        let Some(Expr::Array(iov)) = sendmsg.args[1].field("msg_iov") else {
            panic!("no iov: {:?}", sendmsg.args[1]);
        };
        assert_eq!(iov.len(), 2);
        assert_eq!(
            iov[1],
            Expr::Struct(vec![(None, Expr::Ellipsis), (None, Expr::Int(200))])
        );
        let EventKind::Syscall(bind) = &script.events[3].kind else {
            panic!("not a call");
        };
        assert_eq!(
            bind.args[1].field("sin_port"),
            Some(&Expr::Call("htons".into(), vec![Expr::Int(8080)]))
        );
    }

    #[test]
    fn reads_the_constructs_of_the_public_suites() {
        // Written here to exercise what Google's and the kernel's scripts use: a command over
        // several lines, comments after events, `+0...0`, blanks inside option lists,
        // unknown options, ECN brackets, a call over several lines, the errno's text, the
        // result's decoration, a multi-line code block.
        let text = "--ip_version=ipv4\n\
            `./defaults.sh\n./set_sysctls.py /proc/sys/net/ipv4/tcp_min_tso_segs=10\n`\n\
            0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 4 // the kernel's start at 4\n\
            +0...0 connect(4, ..., ...) = 0\n\
            +0 > S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,nop,wscale 8>\n\
            +0 < [ect0] S. 0:0(0) ack 1 win 65535 <mss 1460,nop, nop, sack 1:2,FO abcd1234,nop,nop>\n\
            +0...0.010 poll([{fd=4,\n                 events=POLLIN|POLLOUT|POLLERR,\n                 revents=POLLOUT}], 1, 100) = 1\n\
            +0 fcntl(4, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)\n\
            +0 sendto(4, ..., 0, MSG_FASTOPEN, ..., ...) = -1 EINPROGRESS (Operation is now in progress)\n\
            +0 %{\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\nassert (tcpi_options & TCPI_OPT_SYN_DATA) == 0\n}%\n\
            +0~+.04 > .  1:1(0) ack 1\n\
            `/tmp/sysctl_restore_${PPID}.sh`\n";
        let script = parse(text).unwrap();
        assert_eq!(script.events.len(), 11);
        let EventKind::Tcp(synack) = &script.events[4].kind else {
            panic!("not a packet: {:?}", script.events[4]);
        };
        assert_eq!(synack.ecn.as_deref(), Some("ect0"));
        let Some(OptionsSpec::List(options)) = &synack.options else {
            panic!("no options");
        };
        assert!(options.contains(&TcpOptionSpec::Unsupported("FO abcd1234".into())));
        assert!(options.contains(&TcpOptionSpec::Sack(vec![(1, 2)])));
        assert_eq!(script.events[5].line, 9, "the poll starts on line 9");
        assert_eq!(script.events[6].line, 12, "and takes three");
        assert_eq!(
            script.events[8].time,
            Time::Relative(0),
            "a code block keeps its +0"
        );
    }

    #[test]
    fn errors_name_their_line() {
        for (text, line) in [
            ("0 socket(..., SOCK_STREAM) = 3\n+0 < S 0:0 win 1\n", 2),
            ("\n\n0 > S. 0:0(0) ack <mss 1460>\n", 3),
            ("0 < S 0:0(0) win 99999\n", 1),
            ("0 `sysctl\n\n", 1),
            ("0 %{ assert 1\n", 1),
            ("/* open\n", 1),
            ("0 read(4, \"abc) = 1\n", 1),
            ("0 < S 0:0(0) <mss 1460\n", 1),
            ("0 close(4) = 99999999999999999999\n", 1),
            ("0 < X 0:0(0)\n", 1),
            ("0 < S 0:0(0) wnd 5\n", 1),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of a rich script, and a few bytes of noise, parse or fail cleanly.
        let text = "0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
                    +.1~+.2 < S. 0:0(0) ack 1 win 5 urg 3 <TS val 1 ecr 2,sack 1:2,FOEXP 12ab>\n\
                    0...0.1 recv(4, ..., 10, MSG_PEEK) = -1 EAGAIN (Resource (temporarily) unavailable)\n";
        for end in 0..=text.len() {
            let _ = parse(&text[..end]);
        }
        for noise in [
            "\u{0}\u{1}",
            "+",
            "~",
            "...",
            "0 <",
            "0 >",
            "0 x(",
            "%{",
            "`",
            "0 x(} = 1",
        ] {
            let _ = parse(noise);
        }
    }
}
