//! rawtcp-drill: runs [packetdrill](https://github.com/google/packetdrill) scripts against
//! the rawtcp engine ([`rawtcp_core::Stack`]) in virtual time.
//!
//! A script interleaves socket calls with the segments expected on the wire and their timing.
//! Here the engine is the system under test and the runner plays everything else: it injects
//! the script's inbound segments as Ethernet frames, answers ARP for the peer, maps the
//! socket calls onto the engine's `tcp_*` calls with the return values and errnos a Linux
//! socket gives, and checks every segment the engine sends against the script's outbound
//! lines. Time is a parameter of the engine, so a script of two hours of keepalive runs in
//! microseconds, and every run of a script is the same run.
//!
//! Nothing is executed on the host: backquoted shell commands are read as configuration
//! (known sysctls map onto [`rawtcp_core::Config`]) or make the script skip.
//!
//! # What it reads
//! - Option lines `--tolerance_usecs`, `--tolerance_percent`, `--local_ip`, `--remote_ip`,
//!   `--gateway_ip`, `--bind_port`, `--connect_port`, `--mtu`, `--ip_version=ipv4`,
//!   `--netmask_ip`, `--strict_segments`, `--tcp_ts_tick_usecs` (checks outbound TSvals),
//!   `--profile`; those that only steer packetdrill's host are accepted, unknown ones skip.
//! - Times `N`, `+N`, `*`, `a~b`, `+a~+b`, `a...b` and `+a...b` (a call that blocks).
//! - TCP lines both ways: flags `S F R P . U E W -`, `seq:end(len)`, `ack`, `win`, `urg`,
//!   options `mss`, `nop`, `eol`, `sackOK`, `wscale`, `TS val N ecr N`, `sack a:b ...` and
//!   `<...>`; inbound ICMP `unreachable CODE [mtu N] [seq:end(len)]` and `time_exceeded`.
//! - Calls: socket, bind, listen, accept, connect, read, recv, recvfrom, recvmsg, write,
//!   send, sendto, sendmsg, shutdown, close, setsockopt and getsockopt (SO_REUSEADDR,
//!   SO_REUSEPORT, SO_KEEPALIVE, SO_LINGER 0, SO_RCVBUF, SO_SNDBUF, SO_ERROR, SO_TYPE,
//!   TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT), fcntl
//!   F_GETFL/F_SETFL, poll, ioctl SIOCINQ/FIONREAD and SIOCOUTQ/TIOCOUTQ.
//! - `%{ assert ... }%` over `tcpi_state`, `tcpi_snd_cwnd`, `tcpi_snd_mss`, `tcpi_rto`,
//!   `tcpi_rtt`, `tcpi_rttvar`, `tcpi_total_retrans`, `tcpi_segs_in/out`,
//!   `tcpi_bytes_acked/received/sent/retrans`, `tcpi_snd_wnd`, `tcpi_notsent_bytes`.
//! - Commands `sysctl`, `echo N > /proc/sys/...` and `set_sysctls.py` for the sysctls
//!   `net.ipv4.tcp_timestamps`, `tcp_sack`, `tcp_window_scaling`, `tcp_syn_retries`,
//!   `tcp_synack_retries`, `tcp_retries2`, `tcp_early_retrans`, `tcp_recovery` (bit 1:
//!   RACK), `tcp_fin_timeout`, `tcp_rto_min_us`,
//!   `tcp_keepalive_time`/`_intvl`/`_probes`, `tcp_rmem`, `tcp_wmem`; `tcp_ecn`,
//!   `tcp_syncookies`, `tcp_fastopen`, `tcp_autocorking`, `tcp_mtu_probing`, `tcp_tw_reuse`
//!   and `tcp_moderate_rcvbuf` when set to 0 (the engine has none of them); and the setup and
//!   restore scripts of the public suites (`defaults.sh`, `sysctl_restore_*.sh`).
//!
//! ```
//! use rawtcp_drill::{Options, Verdict, run_script};
//! let outcome = run_script("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", &Options::default());
//! assert_eq!(outcome.verdict, Verdict::Pass);
//! ```
#![deny(unsafe_code)]

mod code;
mod parse;
mod run;
pub mod script;
mod setup;
mod socket;

pub use parse::{ParseError, parse};
pub use run::{Crossing, Options, Outcome, Report, Verdict, run_script, trace_header};
pub use setup::Profile;
