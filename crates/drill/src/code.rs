//! `%{ ... }%` blocks: a small evaluator for the `assert` lines scripts write over TCP_INFO.
//!
//! A block is Python in packetdrill; here each line must be `assert EXPR[, message]` with
//! integers, `tcpi_*` names, the `TCP_*` state constants, `+ - * / // %`, comparisons
//! (chained as in Python), `and`, `or`, `not` and parentheses. Anything else, or a name the
//! engine has no value for, makes the block unevaluable: the script then skips.

use std::collections::BTreeMap;

/// Why a block did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodeError {
    /// An assertion was false.
    Failed(String),
    /// The block cannot be evaluated here.
    Unevaluable(String),
}

/// Evaluates a block against `values`.
pub(crate) fn evaluate(code: &str, values: &BTreeMap<&'static str, i64>) -> Result<(), CodeError> {
    for raw in code.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some(rest) = line.strip_prefix("assert ") else {
            return Err(CodeError::Unevaluable(format!(
                "only `assert` lines can be evaluated, not `{line}`"
            )));
        };
        let tokens = tokenize(rest).map_err(CodeError::Unevaluable)?;
        let mut parser = Parser {
            tokens: &tokens,
            pos: 0,
            values,
        };
        let value = parser.or().map_err(CodeError::Unevaluable)?;
        // `, message` after the expression is Python's assertion message.
        match parser.tokens.get(parser.pos) {
            None | Some(Token::Comma) => {}
            Some(other) => {
                return Err(CodeError::Unevaluable(format!(
                    "unexpected `{other:?}` in `{line}`"
                )));
            }
        }
        if value == 0 {
            let names: Vec<String> = tokens
                .iter()
                .filter_map(|t| match t {
                    Token::Name(n) => values.get(n.as_str()).map(|v| format!("{n} = {v}")),
                    _ => None,
                })
                .collect();
            return Err(CodeError::Failed(format!(
                "assertion failed: `{rest}` ({})",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Int(i64),
    Name(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\r' => i += 1,
            b'0'..=b'9' => {
                let start = i;
                while bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric()) {
                    i += 1;
                }
                let digits = &text[start..i];
                let value = match digits.strip_prefix("0x") {
                    Some(hex) => i64::from_str_radix(hex, 16),
                    None => digits.parse(),
                };
                tokens.push(Token::Int(
                    value.map_err(|_| format!("`{digits}` is not an integer"))?,
                ));
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
                {
                    i += 1;
                }
                let name = &text[start..i];
                tokens.push(match name {
                    "and" => Token::Op("and"),
                    "or" => Token::Op("or"),
                    "not" => Token::Op("not"),
                    _ => Token::Name(name.to_string()),
                });
            }
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b',' => {
                // Everything after the first top-level comma is the message.
                tokens.push(Token::Comma);
                break;
            }
            _ => {
                let two = text.get(i..i + 2).unwrap_or("");
                let op = ["==", "!=", "<=", ">=", "//"]
                    .into_iter()
                    .find(|op| *op == two)
                    .or_else(|| {
                        ["<", ">", "+", "-", "*", "/", "%", "&", "|"]
                            .into_iter()
                            .find(|op| op.as_bytes()[0] == b)
                    })
                    .ok_or_else(|| format!("cannot evaluate `{}`", char::from(b)))?;
                tokens.push(Token::Op(op));
                i += op.len();
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    values: &'a BTreeMap<&'static str, i64>,
}

impl Parser<'_> {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<i64, String> {
        let mut value = self.and()?;
        while self.peek_op() == Some("or") {
            self.pos += 1;
            let right = self.and()?;
            value = i64::from(value != 0 || right != 0);
        }
        Ok(value)
    }

    fn and(&mut self) -> Result<i64, String> {
        let mut value = self.not()?;
        while self.peek_op() == Some("and") {
            self.pos += 1;
            let right = self.not()?;
            value = i64::from(value != 0 && right != 0);
        }
        Ok(value)
    }

    fn not(&mut self) -> Result<i64, String> {
        if self.peek_op() == Some("not") {
            self.pos += 1;
            return Ok(i64::from(self.not()? == 0));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<i64, String> {
        let mut left = self.bit_or()?;
        let mut result = true;
        let mut compared = false;
        while let Some(op) = self
            .peek_op()
            .filter(|op| ["==", "!=", "<", "<=", ">", ">="].contains(op))
        {
            self.pos += 1;
            let right = self.bit_or()?;
            let holds = match op {
                "==" => left == right,
                "!=" => left != right,
                "<" => left < right,
                "<=" => left <= right,
                ">" => left > right,
                _ => left >= right,
            };
            result &= holds;
            compared = true;
            left = right;
        }
        Ok(if compared { i64::from(result) } else { left })
    }

    fn bit_or(&mut self) -> Result<i64, String> {
        let mut value = self.bit_and()?;
        while self.peek_op() == Some("|") {
            self.pos += 1;
            value |= self.bit_and()?;
        }
        Ok(value)
    }

    fn bit_and(&mut self) -> Result<i64, String> {
        let mut value = self.sum()?;
        while self.peek_op() == Some("&") {
            self.pos += 1;
            value &= self.sum()?;
        }
        Ok(value)
    }

    fn sum(&mut self) -> Result<i64, String> {
        let mut value = self.product()?;
        while let Some(op) = self.peek_op().filter(|op| *op == "+" || *op == "-") {
            self.pos += 1;
            let right = self.product()?;
            value = if op == "+" {
                value.saturating_add(right)
            } else {
                value.saturating_sub(right)
            };
        }
        Ok(value)
    }

    fn product(&mut self) -> Result<i64, String> {
        let mut value = self.unary()?;
        while let Some(op) = self
            .peek_op()
            .filter(|op| ["*", "/", "//", "%"].contains(op))
        {
            self.pos += 1;
            let right = self.unary()?;
            value = match op {
                "*" => value.saturating_mul(right),
                "%" => value.checked_rem_euclid(right).ok_or("modulo by zero")?,
                _ => value.checked_div_euclid(right).ok_or("division by zero")?,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<i64, String> {
        if self.peek_op() == Some("-") {
            self.pos += 1;
            return Ok(self.unary()?.saturating_neg());
        }
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Int(value)) => {
                self.pos += 1;
                Ok(value)
            }
            Some(Token::Name(name)) => {
                self.pos += 1;
                if let Some(value) = state_constant(&name) {
                    return Ok(value);
                }
                self.values.get(name.as_str()).copied().ok_or_else(|| {
                    format!("`{name}` has no value from the engine's connection statistics")
                })
            }
            Some(Token::Open) => {
                self.pos += 1;
                let value = self.or()?;
                if self.tokens.get(self.pos) != Some(&Token::Close) {
                    return Err("missing `)`".to_string());
                }
                self.pos += 1;
                Ok(value)
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Linux's TCP state numbers (include/net/tcp_states.h).
fn state_constant(name: &str) -> Option<i64> {
    Some(match name {
        "TCP_ESTABLISHED" => 1,
        "TCP_SYN_SENT" => 2,
        "TCP_SYN_RECV" => 3,
        "TCP_FIN_WAIT1" => 4,
        "TCP_FIN_WAIT2" => 5,
        "TCP_TIME_WAIT" => 6,
        "TCP_CLOSE" => 7,
        "TCP_CLOSE_WAIT" => 8,
        "TCP_LAST_ACK" => 9,
        "TCP_LISTEN" => 10,
        "TCP_CLOSING" => 11,
        "TCPI_OPT_TIMESTAMPS" => 1,
        "TCPI_OPT_SACK" => 2,
        "TCPI_OPT_WSCALE" => 4,
        "TCPI_OPT_ECN" => 8,
        "TCPI_OPT_ECN_SEEN" => 16,
        "TCPI_OPT_SYN_DATA" => 32,
        "True" => 1,
        "False" => 0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, i64> {
        BTreeMap::from([
            ("tcpi_snd_cwnd", 10),
            ("tcpi_state", 1),
            ("tcpi_rto", 1_000_000),
        ])
    }

    #[test]
    fn true_assertions_pass_and_false_ones_fail() {
        let code = "\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\n\
                    assert tcpi_state == TCP_ESTABLISHED and not tcpi_rto < 200000 # comment\n\
                    assert 190000 <= tcpi_rto // 5 <= 210000\n\
                    assert (tcpi_snd_cwnd & 8) != 0 and (tcpi_state | TCPI_OPT_SACK) == 3\n";
        assert_eq!(evaluate(code, &values()), Ok(()));
        match evaluate("assert tcpi_snd_cwnd == 3 * (2 + 1)", &values()) {
            Err(CodeError::Failed(message)) => assert!(message.contains("tcpi_snd_cwnd = 10")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_it_cannot_evaluate_is_unevaluable() {
        for code in [
            "assert tcpi_snd_ssthresh == 7",
            "import os",
            "assert tcpi_snd_cwnd == [1]",
            "assert (tcpi_snd_cwnd == 10",
            "assert 1 / 0",
        ] {
            assert!(
                matches!(evaluate(code, &values()), Err(CodeError::Unevaluable(_))),
                "{code}"
            );
        }
    }
}
