//! The impaired path: `--loss`, `--delay`, `--jitter`, `--reorder`, `--duplicate`, `--rate`.
//!
//! Over veth (`--link fwd`, which any fault option implies) the client's and the server's
//! namespaces are joined through a third that holds rawtcp-netio's userspace forwarder
//! (`tc netem` in userspace), so kernel↔kernel and the pair under test cross the very same
//! impaired path in one run. Over `--link mem` the same faults go into the MemLink. Each
//! direction gets the faults independently; `--delay` is the round trip added, half of it
//! each way.

use std::io;
use std::time::Duration;

use rawtcp::core::link::LinkConfig;
use rawtcp::netio::forward::{ForwarderConfig, ForwarderStats, LossyPath};
use rawtcp::netio::testbed::Netns;

use crate::measure::Metric;

/// The fault options of the command line.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct FaultArgs {
    /// Probability a frame is lost, each way: 1% or 0.01. Puts the forwarder in place of a veth.
    #[arg(long, global = true, default_value = "0", value_parser = parse_probability)]
    pub(crate) loss: f64,
    /// Round-trip time added (e.g. 10ms: 5 ms each way). Puts the forwarder in place of a veth.
    #[arg(long, global = true, default_value = "0ms", value_parser = crate::parse_duration)]
    pub(crate) delay: Duration,
    /// Extra delay of each frame, uniform in [0, JITTER], each way (jitter reorders too).
    #[arg(long, global = true, default_value = "0ms", value_parser = crate::parse_duration)]
    pub(crate) jitter: Duration,
    /// Probability a frame is held back 1 ms and overtaken, each way: 1% or 0.01.
    #[arg(long, global = true, default_value = "0", value_parser = parse_probability)]
    pub(crate) reorder: f64,
    /// Probability a frame is delivered twice, each way: 1% or 0.01.
    #[arg(long, global = true, default_value = "0", value_parser = parse_probability)]
    pub(crate) duplicate: f64,
    /// Link rate each way (e.g. 100mbit, 1gbit) [default: unlimited].
    #[arg(long, global = true, value_parser = parse_rate)]
    pub(crate) rate: Option<u64>,
    /// Frames the forwarder holds in flight each way, at most; more are tail-dropped (and
    /// reported as `fwd queue drops`).
    #[arg(long, global = true, default_value_t = 20_000)]
    pub(crate) queue_limit: usize,
}

impl FaultArgs {
    /// Whether any fault is asked for (the queue limit alone is none).
    pub(crate) fn any(&self) -> bool {
        self.loss > 0.0
            || self.reorder > 0.0
            || self.duplicate > 0.0
            || !self.delay.is_zero()
            || !self.jitter.is_zero()
            || self.rate.is_some()
    }

    /// One direction's faults on a link of `mtu`.
    pub(crate) fn link_config(&self, mtu: usize) -> LinkConfig {
        LinkConfig {
            mtu,
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            delay: self.delay / 2,
            jitter: self.jitter,
            rate: self.rate,
            queue_limit: Some(self.queue_limit),
            ..LinkConfig::default()
        }
    }

    /// One line for the report's header.
    pub(crate) fn describe(&self) -> String {
        let rate = self.rate.map_or("unlimited".to_string(), |r| {
            format!("{} Mbit/s", r * 8 / 1_000_000)
        });
        format!(
            "path: loss {}%, +{:?} RTT ({:?} each way), jitter {:?}, reorder {}%, duplicate {}%, \
             rate {rate}, each way",
            self.loss * 100.0,
            self.delay,
            self.delay / 2,
            self.jitter,
            self.reorder * 100.0,
            self.duplicate * 100.0,
        )
    }
}

/// The forwarder between the client's `d0` and the server's `p0`.
pub(crate) fn path(
    client: &Netns,
    server: &Netns,
    mtu: usize,
    faults: &FaultArgs,
    seed: u64,
) -> io::Result<LossyPath> {
    let config = ForwarderConfig {
        // The machine is shared: the bridge must keep the model's timing while the two sides
        // keep both cores busy, as the kernel's own forwarding would (in softirq).
        realtime: true,
        ..ForwarderConfig::symmetric(faults.link_config(mtu), seed)
    };
    LossyPath::new(client, server, mtu as u32, config)
}

/// What the forwarder did during one run: its counters after, less those before.
pub(crate) fn metrics(before: ForwarderStats, after: ForwarderStats) -> Vec<Metric> {
    let both = |of: fn(&rawtcp::netio::forward::DirectionStats) -> u64| {
        let now = of(&after.a_to_b) + of(&after.b_to_a);
        let then = of(&before.a_to_b) + of(&before.b_to_a);
        now.saturating_sub(then) as f64
    };
    vec![
        Metric::lower("fwd model drops", "frames", both(|d| d.model_drops())),
        Metric::lower("fwd queue drops", "frames", both(|d| d.queue_drops())),
        // Must stay 0: a frame the bridge lost itself is a fault nobody asked for.
        Metric::lower("fwd own drops", "frames", both(|d| d.own_drops())),
        // Frames the bridge handed on over a millisecond after their time: delay nobody
        // asked for (a starved bridge), which a run with many of them should not be trusted for.
        Metric::lower("fwd late frames", "frames", both(|d| d.late)),
    ]
}

/// `1%`, `0.5 %` or a fraction `0.01`.
fn parse_probability(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(percent) => (percent.trim(), 0.01),
        None => (trimmed, 1.0),
    };
    let value = number
        .parse::<f64>()
        .map_err(|_| format!("expected a probability like 1% or 0.01, got {text:?}"))?
        * scale;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("a probability is within 0..=100%, got {text:?}"));
    }
    Ok(value)
}

/// `100mbit`, `1gbit`, `500kbit` or bits per second; returns bytes per second.
fn parse_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let bare = lower
        .strip_suffix("bit/s")
        .or_else(|| lower.strip_suffix("bps"))
        .or_else(|| lower.strip_suffix("bit"))
        .unwrap_or(&lower);
    let (number, scale) = match bare.char_indices().last() {
        Some((at, 'k')) => (&bare[..at], 1e3),
        Some((at, 'm')) => (&bare[..at], 1e6),
        Some((at, 'g')) => (&bare[..at], 1e9),
        _ => (bare, 1.0),
    };
    let bits = number
        .parse::<f64>()
        .map_err(|_| format!("expected a rate like 100mbit or 1gbit, got {text:?}"))?
        * scale;
    if !bits.is_finite() || bits < 8.0 {
        return Err(format!("a rate of at least 8 bit/s, got {text:?}"));
    }
    Ok((bits / 8.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_as_percent_or_fraction() {
        assert_eq!(parse_probability("1%"), Ok(0.01));
        assert_eq!(parse_probability("0.01"), Ok(0.01));
        assert_eq!(parse_probability("0"), Ok(0.0));
        assert!(parse_probability("101%").is_err());
        assert!(parse_probability("2").is_err());
        assert!(parse_probability("lots").is_err());
    }

    #[test]
    fn rates_in_bits_become_bytes() {
        assert_eq!(parse_rate("100mbit"), Ok(12_500_000));
        assert_eq!(parse_rate("1Gbit"), Ok(125_000_000));
        assert_eq!(parse_rate("8000"), Ok(1000));
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn delay_is_split_between_the_directions() {
        let args = FaultArgs {
            loss: 0.01,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            reorder: 0.0,
            duplicate: 0.0,
            rate: None,
            queue_limit: 100,
        };
        let config = args.link_config(1500);
        assert_eq!(config.delay, Duration::from_millis(5));
        assert_eq!(config.queue_limit, Some(100));
        assert!(args.any());
    }
}
