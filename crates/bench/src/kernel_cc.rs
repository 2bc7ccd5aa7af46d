//! `--kernel-cc`: the congestion control of the kernel's sides.
//!
//! A namespace takes the machine's default (`net.ipv4.tcp_congestion_control`), which need
//! not be Linux's own default, CUBIC: some machines run BBR, which does not back off for
//! random loss at all, and a lossy-path comparison then measures something else. The harness
//! sets it on each kernel socket (TCP_CONGESTION, which a namespace's sysctl may refuse for
//! an algorithm the machine does not allow unprivileged users; root may set any loaded one).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// The kernel's congestion control in the harness's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KernelCc {
    /// CUBIC (RFC 9438), Linux's default.
    Cubic,
    /// BBR.
    Bbr,
    /// NewReno.
    Reno,
    /// Whatever new namespaces get on this machine.
    System,
}

static CHOSEN: OnceLock<KernelCc> = OnceLock::new();

impl KernelCc {
    /// Makes `self` the algorithm of every kernel socket the harness opens from now on.
    pub(crate) fn choose(self) {
        let _ = CHOSEN.set(self);
    }

    fn name(self) -> Option<&'static str> {
        match self {
            KernelCc::Cubic => Some("cubic"),
            KernelCc::Bbr => Some("bbr"),
            KernelCc::Reno => Some("reno"),
            KernelCc::System => None,
        }
    }

    /// The algorithm new namespaces' kernels use: this one, or the machine's default.
    pub(crate) fn describe(self) -> String {
        match self {
            KernelCc::System => {
                std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
                    .map(|name| format!("{} (the system's)", name.trim()))
                    .unwrap_or_else(|_| "the system's".to_string())
            }
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// Sets the chosen algorithm on a kernel TCP socket (accepted sockets inherit a listener's).
pub(crate) fn apply(socket: &impl AsRawFd) -> io::Result<()> {
    let Some(name) = CHOSEN.get().and_then(|cc| cc.name()) else {
        return Ok(());
    };
    // SAFETY: `name` is live for the call and its length is passed; the descriptor is the
    // caller's open socket.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if ret < 0 {
        let error = io::Error::last_os_error();
        return Err(io::Error::new(
            error.kind(),
            format!("TCP_CONGESTION {name} (--kernel-cc): {error}"),
        ));
    }
    Ok(())
}
