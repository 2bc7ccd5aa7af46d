//! Profiles, script options and the shell commands a script may hold, mapped onto the
//! engine's [`Config`]. No command is ever executed: a known configuration command changes
//! the configuration, anything else makes the script skip.

use core::time::Duration;
use std::net::Ipv4Addr;

use rawtcp_core::{Config, Ipv4Cidr};
use rawtcp_wire::ethernet::EthernetAddress;

/// Which choices the engine makes where the RFCs leave room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The engine's own defaults.
    #[default]
    Rfc,
    /// Linux's choices, as far as the engine's configuration can express them.
    Linux,
}

impl Profile {
    /// `rfc` or `linux`.
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "rfc" => Some(Profile::Rfc),
            "linux" => Some(Profile::Linux),
            _ => None,
        }
    }

    /// What the profile sets that the engine cannot: printed by the CLI so that a reader
    /// knows which Linux choices a script still sees differently.
    pub fn unhonoured(self) -> &'static [&'static str] {
        match self {
            Profile::Rfc => &[],
            Profile::Linux => &[
                "initial window 10 segments (the engine's initial window is not configurable)",
                "quick-ACK after the handshake and after loss (the engine has none)",
                "a receive window that starts small and grows (the engine advertises its whole 15 MiB buffer, which gives Linux's window scale 8)",
            ],
        }
    }
}

/// The host the script talks to and the engine's address: packetdrill's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub(crate) local: Ipv4Addr,
    pub(crate) remote: Ipv4Addr,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) prefix_len: u8,
    pub(crate) bind_port: u16,
    pub(crate) connect_port: u16,
    /// The remote end's port for connections to a listener.
    pub(crate) remote_port: u16,
}

impl Default for Addresses {
    fn default() -> Addresses {
        Addresses {
            local: Ipv4Addr::new(192, 168, 0, 1),
            remote: Ipv4Addr::new(192, 0, 2, 1),
            gateway: Ipv4Addr::new(192, 168, 0, 2),
            prefix_len: 16,
            bind_port: 8080,
            connect_port: 8080,
            remote_port: 48_879,
        }
    }
}

pub(crate) const LOCAL_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
pub(crate) const REMOTE_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

/// The engine's configuration for a profile.
pub(crate) fn base_config(profile: Profile, addresses: &Addresses) -> Config {
    let mut config = Config::new(
        LOCAL_MAC,
        Ipv4Cidr::new(addresses.local, addresses.prefix_len),
    );
    config.gateway = Some(addresses.gateway);
    config.seed = 0x5eed_d811;
    // The address is the engine's from the first event: no RFC 5227 probing delays it.
    config.conflict_detection.enabled = false;
    // The simulated peer answers ARP at once; a long cache keeps ARP out of the timing.
    config.arp.cache_ttl = Duration::from_secs(365 * 24 * 3600);
    // One connection per script: no rate limit should hide an answer a script expects.
    config.icmp_error_rate = 1000;
    config.icmp_error_burst = 1000;
    config.reset_rate = 1000;
    config.reset_burst = 1000;
    if profile == Profile::Linux {
        let tcp = &mut config.tcp;
        tcp.rto_initial = Duration::from_secs(1);
        tcp.rto_min = Duration::from_millis(200);
        tcp.rto_max = Duration::from_secs(120);
        tcp.syn_retries = 6;
        tcp.synack_retries = 5;
        tcp.max_retransmits = 15;
        tcp.delayed_ack = Duration::from_millis(40);
        tcp.fin_wait_2_timeout = Duration::from_secs(60);
        tcp.msl = Duration::from_secs(30);
        // tcp_rfc1337 = 0: a RST ends TIME-WAIT.
        tcp.rfc1337 = false;
        // Linux takes segments without timestamps after negotiating them.
        tcp.timestamps_required = false;
        // tcp_challenge_ack_limit: unlimited since Linux 6.0 (the per-socket limit stays).
        tcp.challenge_ack_limit = 0;
        // Linux scales its window for its largest receive buffer: window scale 8 for the
        // 15 MiB tcp_rmem[2] the kernel's and Google's test setups use. The engine scales for
        // its buffer, so the buffer is that large (it is allocated as data arrives).
        tcp.recv_buffer = 15 * 1024 * 1024;
        // tcp_wmem[1].
        tcp.send_buffer = 16_384;
    }
    config
}

/// What a command did to the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandEffect {
    /// Applied (or known to change nothing the engine has).
    Applied,
    /// The script cannot run: the reason names the command.
    Skip(String),
}

/// The keepalive parameters the sysctls set, applied when a socket turns SO_KEEPALIVE on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepaliveDefaults {
    pub(crate) idle: Duration,
    pub(crate) interval: Duration,
    pub(crate) probes: u32,
}

impl KeepaliveDefaults {
    /// The engine's defaults (2 h, 75 s, 10 probes), or Linux's 9 probes.
    pub(crate) fn for_profile(profile: Profile) -> KeepaliveDefaults {
        let engine = rawtcp_core::Keepalive::default();
        KeepaliveDefaults {
            idle: engine.idle,
            interval: engine.interval,
            probes: if profile == Profile::Linux {
                9
            } else {
                engine.probes
            },
        }
    }
}

/// Applies one backquoted command (possibly several lines, `;` or `&&` separated).
pub(crate) fn apply_command(
    command: &str,
    config: &mut Config,
    keepalive: &mut KeepaliveDefaults,
) -> CommandEffect {
    for part in command
        .split(['\n', ';'])
        .flat_map(|line| line.split("&&"))
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let effect = apply_one(part, config, keepalive);
        if effect != CommandEffect::Applied {
            return effect;
        }
    }
    CommandEffect::Applied
}

fn apply_one(
    command: &str,
    config: &mut Config,
    keepalive: &mut KeepaliveDefaults,
) -> CommandEffect {
    let owned = shell_words(command);
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    let Some(&program) = words.first() else {
        return CommandEffect::Applied;
    };
    // The common setup scripts reset the sysctls to Linux's defaults: the profile already
    // holds them.
    if program.ends_with("defaults.sh") {
        return CommandEffect::Applied;
    }
    // Restoring the host's sysctls after a test, flushing the host's TCP metrics cache and
    // turning the tun device's offloads off change nothing the engine has.
    if program.contains("sysctl_restore")
        || words.starts_with(&["ip", "tcp_metrics", "flush"])
        || (program == "ethtool"
            && words.get(1) == Some(&"-K")
            && words.len() >= 5
            && words.iter().skip(4).step_by(2).all(|w| *w == "off"))
    {
        return CommandEffect::Applied;
    }
    // packetdrill's helper: `set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0 ...`.
    if program.ends_with("set_sysctls.py") {
        for word in &words[1..] {
            let Some((path, value)) = word.split_once('=') else {
                return skip(command);
            };
            let Some(name) = path.strip_prefix("/proc/sys/") else {
                return skip(command);
            };
            if let Err(reason) = apply_sysctl(&name.replace('/', "."), value, config, keepalive) {
                return CommandEffect::Skip(format!("`{command}`: {reason}"));
            }
        }
        return CommandEffect::Applied;
    }
    if program == "sysctl" {
        let mut applied = false;
        for word in &words[1..] {
            if word.starts_with('-') {
                continue;
            }
            let Some((name, value)) = word.split_once('=') else {
                return skip(command);
            };
            if let Err(reason) = apply_sysctl(name, value.trim_matches('"'), config, keepalive) {
                return CommandEffect::Skip(format!("`{command}`: {reason}"));
            }
            applied = true;
        }
        return if applied {
            CommandEffect::Applied
        } else {
            skip(command)
        };
    }
    // `echo 0 > /proc/sys/net/ipv4/tcp_timestamps`
    if program == "echo"
        && let Some(gt) = words.iter().position(|w| *w == ">")
        && let Some(path) = words.get(gt + 1).and_then(|p| p.strip_prefix("/proc/sys/"))
    {
        let value = words.get(1..gt).unwrap_or(&[]).join(" ");
        let name = path.replace('/', ".");
        return match apply_sysctl(&name, value.trim_matches('"'), config, keepalive) {
            Ok(()) => CommandEffect::Applied,
            Err(reason) => CommandEffect::Skip(format!("`{command}`: {reason}")),
        };
    }
    skip(command)
}

/// Splits a command line into words as a shell would for the simple cases: blanks separate,
/// single and double quotes group (and are removed).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn skip(command: &str) -> CommandEffect {
    CommandEffect::Skip(format!(
        "shell command `{command}` is not a configuration this runner knows (never executed)"
    ))
}

fn number(value: &str) -> Result<u64, String> {
    let value = value.trim();
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    }
    .map_err(|_| format!("`{value}` is not a number"))
}

fn flag(value: &str) -> Result<bool, String> {
    Ok(number(value)? != 0)
}

/// One sysctl onto the configuration: the Linux sysctls for what the engine has, and the
/// ones that turn off what the engine does not have.
fn apply_sysctl(
    name: &str,
    value: &str,
    config: &mut Config,
    keepalive: &mut KeepaliveDefaults,
) -> Result<(), String> {
    let tcp = &mut config.tcp;
    let name = name.trim();
    match name {
        "net.ipv4.tcp_timestamps" => tcp.timestamps = flag(value)?,
        "net.ipv4.tcp_sack" => tcp.sack = flag(value)?,
        "net.ipv4.tcp_window_scaling" => tcp.window_scaling = flag(value)?,
        "net.ipv4.tcp_syn_retries" => tcp.syn_retries = number(value)? as u32,
        "net.ipv4.tcp_synack_retries" => tcp.synack_retries = number(value)? as u32,
        "net.ipv4.tcp_retries2" => tcp.max_retransmits = number(value)? as u32,
        // Linux: 0 off, 1-2 early retransmit (not in the engine), 3-4 with the tail loss
        // probe (RFC 8985 §7).
        "net.ipv4.tcp_early_retrans" => tcp.tail_loss_probe = number(value)? >= 3,
        "net.ipv4.tcp_rfc1337" => tcp.rfc1337 = flag(value)?,
        "net.ipv4.tcp_min_snd_mss" => tcp.min_snd_mss = number(value)? as usize,
        "net.ipv4.route.min_pmtu" => tcp.min_path_mtu = number(value)? as usize,
        "net.ipv4.tcp_challenge_ack_limit" => {
            // Linux's INT_MAX (its default since 6.0) is no limit.
            let limit = number(value)?;
            tcp.challenge_ack_limit = if limit >= i32::MAX as u64 {
                0
            } else {
                limit as u32
            };
        }
        // Linux: bit 0x1 is RACK loss detection (RFC 8985 §6); the others tune it.
        "net.ipv4.tcp_recovery" => tcp.rack = number(value)? & 1 == 1,
        "net.ipv4.tcp_fin_timeout" => {
            tcp.fin_wait_2_timeout = Duration::from_secs(number(value)?);
        }
        "net.ipv4.tcp_rto_min_us" => tcp.rto_min = Duration::from_micros(number(value)?),
        "net.ipv4.tcp_keepalive_time" => keepalive.idle = Duration::from_secs(number(value)?),
        "net.ipv4.tcp_keepalive_intvl" => {
            keepalive.interval = Duration::from_secs(number(value)?);
        }
        "net.ipv4.tcp_keepalive_probes" => keepalive.probes = number(value)? as u32,
        "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => {
            let sizes: Vec<&str> = value.split_whitespace().collect();
            let Some(default) = sizes.get(1) else {
                return Err("expected three sizes, min default max".to_string());
            };
            let size = number(default)? as usize;
            if name.ends_with("rmem") {
                tcp.recv_buffer = size;
            } else {
                tcp.send_buffer = size;
            }
        }
        // Limits and features the engine does not have: setting them to "off" changes
        // nothing; asking for them is a skip.
        "net.ipv4.tcp_ecn" => off_only(value, "ECN")?,
        "net.ipv4.tcp_syncookies" => off_only(value, "SYN cookies")?,
        "net.ipv4.tcp_fastopen" => off_only(value, "TCP Fast Open")?,
        "net.ipv4.tcp_autocorking" => off_only(value, "autocorking")?,
        "net.ipv4.tcp_mtu_probing" => off_only(value, "MTU probing")?,
        "net.ipv4.tcp_tw_reuse" => off_only(value, "client TIME-WAIT reuse")?,
        "net.ipv4.tcp_moderate_rcvbuf" => off_only(value, "receive buffer auto-tuning")?,
        "net.ipv4.tcp_no_metrics_save"
        | "net.ipv4.tcp_min_tso_segs"
        | "net.core.rmem_max"
        | "net.core.wmem_max"
        | "net.core.rmem_default"
        | "net.core.wmem_default"
        | "net.ipv4.tcp_retries1"
        | "net.ipv4.tcp_orphan_retries" => {
            // No metrics cache, no TSO sizing, no SO_*BUF clamp in the engine; the
            // orphan and "retries1" counts have no engine counterpart that a script observes.
            number(value)?;
        }
        _ => return Err(format!("sysctl {name} has no counterpart in the engine")),
    }
    Ok(())
}

fn off_only(value: &str, feature: &str) -> Result<(), String> {
    if flag(value)? {
        Err(format!("the engine has no {feature}"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sysctls_change_the_config() {
        let mut config = base_config(Profile::Rfc, &Addresses::default());
        let mut keepalive = KeepaliveDefaults::for_profile(Profile::Rfc);
        let effect = apply_command(
            "sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0\n\
             echo 3 > /proc/sys/net/ipv4/tcp_syn_retries; sysctl -w net.ipv4.tcp_keepalive_time=60\n\
             ../common/set_sysctls.py /proc/sys/net/ipv4/tcp_window_scaling=0\n\
             ethtool -K tun0 tso off gso off\n/tmp/sysctl_restore_${PPID}.sh",
            &mut config,
            &mut keepalive,
        );
        assert_eq!(effect, CommandEffect::Applied);
        assert!(!config.tcp.timestamps && !config.tcp.sack && !config.tcp.window_scaling);
        assert_eq!(config.tcp.syn_retries, 3);
        assert_eq!(keepalive.idle, Duration::from_secs(60));
    }

    #[test]
    fn other_commands_skip_naming_the_command() {
        let mut config = base_config(Profile::Rfc, &Addresses::default());
        let mut keepalive = KeepaliveDefaults::for_profile(Profile::Rfc);
        for command in [
            "tc qdisc add dev tun0 root netem delay 10ms",
            "sysctl -q net.ipv4.tcp_ecn=1",
            "sysctl -q net.ipv4.tcp_frobnicate=1",
        ] {
            match apply_command(command, &mut config, &mut keepalive) {
                CommandEffect::Skip(reason) => assert!(reason.contains(command), "{reason}"),
                CommandEffect::Applied => panic!("{command} applied"),
            }
        }
    }
}
