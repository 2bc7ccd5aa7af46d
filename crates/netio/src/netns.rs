//! Entering a named network namespace, for tests and the bench harness that run a stack (or
//! a kernel socket) inside a namespace they created with `ip netns add`.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use crate::sys;

/// Moves the calling thread into network namespace `name` (from `/var/run/netns/NAME`).
/// Sockets and devices opened afterwards by this thread belong to that namespace; other
/// threads are not affected. Needs CAP_SYS_ADMIN.
pub fn enter(name: &str) -> io::Result<()> {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path)
        .map_err(|error| io::Error::new(error.kind(), format!("{path}: {error}")))?;
    sys::setns_net(&OwnedFd::from(file))
}
