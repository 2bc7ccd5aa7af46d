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
