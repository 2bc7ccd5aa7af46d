//! Network namespaces and veth pairs for tests and benchmarks against the Linux kernel on one
//! machine (TESTBED.md): every namespace gets a unique name with the process id and is deleted
//! when its guard is dropped, also when a test panics. Traffic stays between namespaces the
//! caller created. Needs root; drives `ip` from iproute2.

use std::io;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use rawtcp_wire::ethernet::EthernetAddress;

use crate::forward::{ForwarderConfig, LossyPath};

/// Whether this process runs as root (user id 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .is_some_and(|line| line.split_whitespace().nth(2) == Some("0"))
}

/// True when the tests that need root can run; prints one line naming `test` when they
/// cannot, so a skip is visible in the output.
pub fn have_root(test: &str) -> bool {
    let root = is_root();
    if !root {
        println!("skipping {test}: needs root (network namespaces, AF_PACKET)");
    }
    root
}

/// Runs a command; an error carries its stderr.
fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let output = Command::new(program).args(args).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output)
}

/// Pins the calling thread to CPU `cpu`, so that a benchmark's threads do not share a core.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    crate::sys::pin_to_cpu(cpu)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of our own, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `rt-ROLE-PID-N` with its loopback up. The first call in a process also deletes
    /// the namespaces of this form whose process is gone (killed before its `Drop` ran, as a
    /// bench under `timeout` is).
    pub fn new(role: &str) -> io::Result<Netns> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(delete_orphaned_namespaces);
        let name = format!(
            "rt-{role}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`, failing on a non-zero exit.
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a program inside the namespace (`ip netns exec`) and returns its output whatever
    /// its exit status.
    pub fn exec(&self, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
    }

    /// Runs a program inside the namespace (`ip netns exec`), failing on a non-zero exit
    /// with the program's stderr in the error.
    pub fn exec_checked(&self, args: &[&str]) -> io::Result<Output> {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) -> io::Result<()> {
        crate::netns::enter(&self.name)
    }
}

/// Deletes every `rt-ROLE-PID-N` namespace whose process no longer runs.
fn delete_orphaned_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(pid) = owner_pid(name) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(name);
        }
    }
}

/// The PID in a namespace name [`Netns::new`] made (`rt-ROLE-PID-N`); `None` for any other.
fn owner_pid(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix("rt-")?.rsplitn(3, '-');
    parts.next()?.parse::<usize>().ok()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next().filter(|role| !role.is_empty())?;
    Some(pid)
}

/// `ip netns del NAME`, best effort.
fn delete_namespace(name: &str) {
    let _ = Command::new("ip").args(["netns", "del", name]).output();
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Creates a veth pair with `d0` in `dut` and `p0` in `peer`, made directly inside the
/// namespaces (the root namespace never sees it, and parallel tests cannot clash on names).
/// Both ends stay down, without addresses.
pub fn veth_pair(dut: &Netns, peer: &Netns) -> io::Result<()> {
    veth_between(dut, "d0", peer, "p0")
}

/// Creates a veth pair with `a_name` in `a` and `b_name` in `b`, made directly inside the
/// namespaces. Both ends stay down, without addresses.
pub fn veth_between(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> io::Result<()> {
    run(
        "ip",
        &[
            "link",
            "add",
            a_name,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_name,
            "netns",
            b.name(),
        ],
    )
    .map(drop)
}

/// How to build a [`VethBed`].
#[derive(Debug, Clone)]
pub struct VethConfig {
    /// MTU of both ends.
    pub mtu: u32,
    /// MAC of `d0`, the device-under-test end.
    pub dut_mac: EthernetAddress,
    /// MAC of `p0`, the peer end.
    pub peer_mac: EthernetAddress,
    /// The peer kernel's address on `p0`, with prefix (`10.9.0.1/24`).
    pub peer_addr: String,
}

impl Default for VethConfig {
    fn default() -> VethConfig {
        VethConfig {
            mtu: 1500,
            dut_mac: EthernetAddress([0x02, 0, 0, 0, 0x0d, 0x01]),
            peer_mac: EthernetAddress([0x02, 0, 0, 0, 0x0e, 0x01]),
            peer_addr: "10.9.0.1/24".to_string(),
        }
    }
}

/// Two namespaces joined by a veth, per TESTBED.md's recipe: `d0` in the DUT namespace with
/// no kernel address (the stack under test owns an address there through AF_PACKET, so the
/// DUT kernel neither answers ARP for it nor resets its connections) and `p0` in the peer
/// namespace with the kernel's address. IPv6 is off on both ends.
#[derive(Debug)]
pub struct VethBed {
    /// The device-under-test namespace (holds `d0`).
    pub dut: Netns,
    /// The peer namespace (holds `p0`).
    pub peer: Netns,
    /// The configuration it was built with.
    pub config: VethConfig,
}

impl VethBed {
    /// Builds the bed.
    pub fn new(config: VethConfig) -> io::Result<VethBed> {
        let dut = Netns::new("dut")?;
        let peer = Netns::new("peer")?;
        veth_pair(&dut, &peer)?;
        Self::configure(dut, peer, config)
    }

    /// Builds the bed with a lossy path in place of the direct veth: `d0` and `p0` are
    /// bridged through a third namespace by a [`Forwarder`](crate::forward::Forwarder)
    /// applying `faults` (see [`LossyPath`] for the offloads it turns off). Drop the path
    /// before the bed, or together with it.
    pub fn through(
        config: VethConfig,
        faults: ForwarderConfig,
    ) -> io::Result<(VethBed, LossyPath)> {
        let dut = Netns::new("dut")?;
        let peer = Netns::new("peer")?;
        let path = LossyPath::new(&dut, &peer, config.mtu, faults)?;
        Ok((Self::configure(dut, peer, config)?, path))
    }

    fn configure(dut: Netns, peer: Netns, config: VethConfig) -> io::Result<VethBed> {
        let mtu = config.mtu.to_string();
        dut.ip(&[
            "link",
            "set",
            "d0",
            "address",
            &config.dut_mac.to_string(),
            "mtu",
            &mtu,
            "up",
        ])?;
        peer.ip(&[
            "link",
            "set",
            "p0",
            "address",
            &config.peer_mac.to_string(),
            "mtu",
            &mtu,
            "up",
        ])?;
        peer.ip(&["addr", "add", &config.peer_addr, "dev", "p0"])?;
        dut.exec(&["sysctl", "-qw", "net.ipv6.conf.d0.disable_ipv6=1"])?;
        peer.exec(&["sysctl", "-qw", "net.ipv6.conf.p0.disable_ipv6=1"])?;
        Ok(VethBed { dut, peer, config })
    }

    /// Steers the receive processing of `d0` (the softirq work a veth otherwise does on the
    /// sending CPU) to the CPUs in `mask`, with RPS.
    pub fn dut_receive_steering(&self, mask: u32) -> io::Result<()> {
        let command = format!("echo {mask:x} > /sys/class/net/d0/queues/rx-0/rps_cpus");
        self.dut.exec_checked(&["sh", "-c", &command]).map(drop)
    }

    /// Turns the peer's transmit offloads (checksum, TSO, GSO) on or off with ethtool.
    pub fn peer_offloads(&self, on: bool) -> io::Result<()> {
        let state = if on { "on" } else { "off" };
        self.peer
            .exec_checked(&[
                "ethtool", "-K", "p0", "tx", state, "tso", state, "gso", state,
            ])
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn only_names_netns_made_are_read_as_owned_by_a_pid() {
        assert_eq!(owner_pid("rt-bench-c-6530-0"), Some(6530));
        assert_eq!(owner_pid("rt-dut-12-3"), Some(12));
        assert_eq!(owner_pid("rt-12-3"), None);
        assert_eq!(owner_pid("rt-dut-x-3"), None);
        assert_eq!(owner_pid("docker-dut-12-3"), None);
        assert_eq!(owner_pid("rt-dut-12-"), None);
    }
}
