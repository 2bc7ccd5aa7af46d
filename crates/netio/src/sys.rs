//! Every system call netio makes, and the only `unsafe` code in the crate.
//!
//! Each function takes and returns safe types; each `unsafe` block says why it is sound.
//! Batched calls build their `mmsghdr` arrays on the stack per call, so no raw pointer
//! outlives the call that uses it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use rawtcp_wire::ethernet::EthernetAddress;

use crate::batch::RecvSlot;

/// Frames moved per recvmmsg/sendmmsg call at most.
pub(crate) const MAX_BATCH: usize = 64;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An AF_PACKET SOCK_RAW socket that receives nothing until bound, non-blocking.
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor we own.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: fd was just returned by socket() and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt with a plain-data value.
fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to a live T of size_of::<T>() bytes for the duration of the call;
    // T is Copy (plain data) so the kernel reading its bytes is fine.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// setsockopt with an int value.
pub(crate) fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd.as_raw_fd(), level, name, &value)
}

/// getsockopt with an int value.
pub(crate) fn get_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` is a live int and `len` its size; the kernel writes at most `len` bytes.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// PACKET_STATISTICS: frames the socket received and dropped since the last call (reading
/// resets the kernel's counters), and with a TPACKET_V3 ring the times the ring froze
/// (`tp_freeze_q_cnt`: every block was in our hands); 0 without one, as the kernel then
/// writes only the first two fields.
pub(crate) fn packet_statistics(fd: &OwnedFd) -> io::Result<libc::tpacket_stats_v3> {
    let mut stats = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `stats` is a live tpacket_stats_v3 and `len` its size; the kernel writes at
    // most `len` bytes into it (fewer without a V3 ring) and updates `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    })?;
    Ok(stats)
}

/// Attaches a classic BPF program (SO_ATTACH_FILTER).
pub(crate) fn attach_filter(fd: &OwnedFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // The kernel copies the program during the call; `program` outlives it.
    setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        &fprog,
    )
}

/// Turns on promiscuous mode for the socket's life (PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC).
pub(crate) fn add_promiscuous(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: packet_mreq is plain data; all-zero is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { zeroed() };
    mreq.mr_ifindex = ifindex as libc::c_int;
    mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
    setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &mreq,
    )
}

/// Adds `mac` to the interface's unicast address list for the socket's life
/// (PACKET_ADD_MEMBERSHIP, PACKET_MR_UNICAST): the NIC delivers frames for it.
pub(crate) fn add_unicast(fd: &OwnedFd, ifindex: u32, mac: EthernetAddress) -> io::Result<()> {
    // SAFETY: packet_mreq is plain data; all-zero is a valid value.
    let mut mreq: libc::packet_mreq = unsafe { zeroed() };
    mreq.mr_ifindex = ifindex as libc::c_int;
    mreq.mr_type = libc::PACKET_MR_UNICAST as libc::c_ushort;
    mreq.mr_alen = 6;
    mreq.mr_address[..6].copy_from_slice(&mac.0);
    setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &mreq,
    )
}

/// Binds a packet socket to an interface and EtherType (network order applied here).
pub(crate) fn bind_packet(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: addr is a live sockaddr_ll and the length passed is its size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// The MTU of an interface (SIOCGIFMTU).
pub(crate) fn interface_mtu(fd: &OwnedFd, name: &str) -> io::Result<u32> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    copy_name(&mut req.ifr_name, name)?;
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_ifru.ifru_mtu of the live `req`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFMTU, &mut req) })?;
    // SAFETY: the ioctl succeeded, so the union holds the MTU.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

fn copy_name(dst: &mut [libc::c_char; libc::IFNAMSIZ], name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ));
    }
    for (d, s) in dst.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(())
}

/// What one received frame came with.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Received {
    /// Bytes written into the buffer.
    pub(crate) len: usize,
    /// The frame was longer than the buffer.
    pub(crate) truncated: bool,
    /// sll_pkttype: PACKET_HOST, PACKET_BROADCAST, PACKET_OUTGOING, ...
    pub(crate) pkttype: u8,
    /// tpacket_auxdata.tp_status, when PACKET_AUXDATA is on.
    pub(crate) status: Option<u32>,
    /// A VLAN tag the kernel stripped.
    pub(crate) vlan_tci: Option<u16>,
}

const CONTROL_LEN: usize = 64;

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; CONTROL_LEN]);

/// The two iovecs of a receive into `slot`: its head's spare capacity (`head_len` bytes of
/// it), then its tail.
fn slot_iovecs(slot: &mut RecvSlot<'_>) -> [libc::iovec; 2] {
    let spare = slot.head.spare_capacity_mut();
    let head_len = slot.head_len.min(spare.len());
    [
        libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: head_len,
        },
        libc::iovec {
            iov_base: slot.tail.as_mut_ptr().cast(),
            iov_len: slot.tail.len(),
        },
    ]
}

/// Records that the kernel wrote `written` bytes into `slot` through [`slot_iovecs`]: the
/// head's share of them becomes part of its length.
fn slot_filled(slot: &mut RecvSlot<'_>, written: usize) {
    let in_head = written
        .min(slot.head_len)
        .min(slot.head.capacity() - slot.head.len());
    // SAFETY: the kernel wrote `written` bytes through the iovecs of slot_iovecs, the first
    // of which covers min(head_len, spare capacity) bytes of the head's spare capacity
    // starting at its length: those `in_head` bytes are initialised now.
    unsafe { slot.head.set_len(slot.head.len() + in_head) };
}

/// recvmmsg into `slots` (at most MAX_BATCH), each message scattered over its slot's head and
/// tail, non-blocking: `WouldBlock` when nothing is waiting (the caller's readiness
/// bookkeeping needs to see it as such). `Received::len` counts the bytes of both.
pub(crate) fn recv_batch(
    fd: &OwnedFd,
    slots: &mut [RecvSlot<'_>],
    out: &mut [Received],
) -> io::Result<usize> {
    let n = slots.len().min(MAX_BATCH).min(out.len());
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: these are plain-data C structs; all-zero is a valid value of each.
    let mut iovecs: [[libc::iovec; 2]; MAX_BATCH] = unsafe { zeroed() };
    let mut addrs: [libc::sockaddr_ll; MAX_BATCH] = unsafe { zeroed() };
    let mut controls = [Control([0; CONTROL_LEN]); MAX_BATCH];
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        iovecs[i] = slot_iovecs(&mut slots[i]);
        let hdr = &mut headers[i].msg_hdr;
        hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
        hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        hdr.msg_iov = iovecs[i].as_mut_ptr();
        hdr.msg_iovlen = 2;
        hdr.msg_control = controls[i].0.as_mut_ptr().cast();
        hdr.msg_controllen = CONTROL_LEN;
    }
    // SAFETY: every pointer in headers[..n] points into the stack arrays above or into the
    // slots' heads and tails, all of which outlive the call; lengths match those buffers.
    let ret = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = ret as usize;
    for i in 0..got {
        let hdr = &headers[i].msg_hdr;
        let room = iovecs[i][0].iov_len + iovecs[i][1].iov_len;
        let written = (headers[i].msg_len as usize).min(room);
        slot_filled(&mut slots[i], written);
        let mut received = Received {
            len: written,
            truncated: hdr.msg_flags & libc::MSG_TRUNC != 0,
            pkttype: addrs[i].sll_pkttype,
            ..Received::default()
        };
        // SAFETY: msg_control/msg_controllen describe controls[i] as the kernel filled it;
        // CMSG_FIRSTHDR/NXTHDR stay within it and CMSG_DATA of a PACKET_AUXDATA message points
        // at a tpacket_auxdata, read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_PACKET
                    && (*cmsg).cmsg_type == libc::PACKET_AUXDATA
                {
                    let aux: libc::tpacket_auxdata =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    received.status = Some(aux.tp_status);
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        received.vlan_tci = Some(aux.tp_vlan_tci);
                    }
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        out[i] = received;
    }
    Ok(got)
}

/// One readv into `slot`'s head and tail (a TAP device: one frame per read), non-blocking:
/// the bytes read, `WouldBlock` when nothing is waiting.
pub(crate) fn read_slot(fd: &impl AsRawFd, slot: &mut RecvSlot<'_>) -> io::Result<usize> {
    let iovecs = slot_iovecs(slot);
    // SAFETY: both iovecs point into the slot's head and tail, which outlive the call, with
    // their lengths; readv writes at most that much.
    let ret = unsafe { libc::readv(fd.as_raw_fd(), iovecs.as_ptr(), 2) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = (ret as usize).min(iovecs[0].iov_len + iovecs[1].iov_len);
    slot_filled(slot, written);
    Ok(written)
}

/// sendmmsg of `frames` (at most MAX_BATCH) on a bound socket, non-blocking. Returns how many
/// were sent; `WouldBlock` when the socket buffer is full.
pub(crate) fn send_batch(fd: &OwnedFd, frames: &[&[u8]]) -> io::Result<usize> {
    let n = frames.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: plain-data C structs; all-zero is a valid value of each.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        // The kernel only reads through this pointer (sendmmsg).
        iovecs[i] = libc::iovec {
            iov_base: frames[i].as_ptr().cast_mut().cast(),
            iov_len: frames[i].len(),
        };
        headers[i].msg_hdr.msg_iov = &mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: headers[..n] point into `iovecs` and `frames`, which outlive the call.
    let ret = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as usize)
}

/// One recvmsg: the single-frame path, for comparison with the batched one. `WouldBlock`
/// when nothing is waiting.
pub(crate) fn recv_one(
    fd: &OwnedFd,
    slot: &mut RecvSlot<'_>,
    out: &mut Received,
) -> io::Result<usize> {
    let mut one = [Received::default()];
    let got = recv_batch(fd, std::slice::from_mut(slot), &mut one)?;
    *out = one[0];
    Ok(got)
}

/// One send: the single-frame path. `WouldBlock` when the socket buffer is full.
pub(crate) fn send_one(fd: &OwnedFd, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: frame is a live slice of frame.len() bytes; send only reads it.
    let ret = unsafe {
        libc::send(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(1)
}

/// Opens (creating if needed) TAP device `name` with IFF_TAP | IFF_NO_PI, non-blocking.
/// Returns the descriptor and the name the kernel gave it.
pub(crate) fn open_tap(name: &str, vnet_hdr: bool) -> io::Result<(OwnedFd, String)> {
    let path = CString::new("/dev/net/tun").expect("no NUL in a literal");
    // SAFETY: path is a valid NUL-terminated string for the duration of the call.
    let fd = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by open() and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    if !name.is_empty() {
        copy_name(&mut req.ifr_name, name)?;
    }
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the live `req`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) })?;
    let given: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok((fd, String::from_utf8_lossy(&given).into_owned()))
}

/// Moves the calling thread into the network namespace open at `ns` (setns, CLONE_NEWNET).
pub(crate) fn setns_net(ns: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and a flag; no memory is shared.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

/// An AF_INET datagram socket, unbound: a handle for interface ioctls that needs no privilege.
pub(crate) fn inet_dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor we own.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket() and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Registers a descriptor's owner with tokio's reactor; hands it back on failure.
pub(crate) fn register<T: AsRawFd>(io: T) -> Result<tokio::io::unix::AsyncFd<T>, (T, io::Error)> {
    // SAFETY: the AsyncFd takes ownership of `io` (an OwnedFd or a File), so the descriptor
    // stays open, and is the same one, for the AsyncFd's whole life; neither type changes
    // what as_raw_fd returns.
    unsafe { tokio::io::unix::AsyncFd::register(io) }.map_err(|error| error.into_parts())
}

/// Whether `fd` is readable right now, asked of the kernel (poll with a zero timeout), not
/// of tokio's cached readiness.
pub(crate) fn readable_now(fd: &impl AsRawFd) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `entry` is one live pollfd, and the count passed is 1; timeout 0 never blocks.
    let ready = check(unsafe { libc::poll(&mut entry, 1, 0) })?;
    Ok(ready == 1 && entry.revents & libc::POLLIN != 0)
}

/// A non-blocking CLOCK_MONOTONIC timerfd: readable once the time it is armed for has
/// come, with the kernel's high-resolution timers (tokio's own timers tick in milliseconds).
pub(crate) fn timerfd() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers; a non-negative result is a new descriptor.
    let fd = check(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by timerfd_create and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms `timer` to fire once, `after` from now (at least a nanosecond: zero would disarm it).
pub(crate) fn arm_timerfd(timer: &OwnedFd, after: std::time::Duration) -> io::Result<()> {
    let after = after.max(std::time::Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
        },
    };
    // SAFETY: `spec` is a live itimerspec for the duration of the call; the old value is not
    // asked for (null).
    check(unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })?;
    Ok(())
}

/// Reads a timerfd's expiry count (clearing it); `WouldBlock` when it has not fired.
pub(crate) fn read_timerfd(timer: &OwnedFd) -> io::Result<u64> {
    let mut count = [0u8; 8];
    // SAFETY: `count` is 8 writable bytes, the size a timerfd read needs.
    let read = unsafe { libc::read(timer.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(count))
}

/// Pins the calling thread to one CPU (sched_setaffinity).
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no CPU {cpu}"),
        ));
    }
    // SAFETY: cpu is below CPU_SETSIZE, checked above; `set` is a live cpu_set_t.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 is the calling thread.
    check(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// Gives the calling thread the real-time policy SCHED_FIFO at `priority` (1..=99): it then
/// runs whenever it is ready, ahead of every ordinary thread, as the kernel's softirq work
/// does (within the kernel's real-time throttling). Needs CAP_SYS_NICE.
pub(crate) fn set_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a live sched_param for the duration of the call; pid 0 is the
    // calling thread.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) })?;
    Ok(())
}

/// Header of a TPACKET_V2 frame: the status word sits at offset 0; for transmit, the frame
/// data starts at `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))` (32 bytes).
const TX_DATA_OFFSET: usize = 32;
const TX_LEN_OFFSET: usize = 4;

/// The shared mapping of a socket's packet ring (PACKET_TX_RING or PACKET_RX_RING), unmapped
/// when dropped.
struct RingMap {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared only with the kernel; its owner (a ring) gives
// access to it only through &mut self or, for reads of what the kernel handed over, &self.
unsafe impl Send for RingMap {}

impl RingMap {
    /// The 32-bit status word at `offset`, which the kernel reads and writes as well.
    fn word(&self, offset: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "a status word at {offset} of a ring of {} bytes",
            self.len
        );
        // SAFETY: the word lies inside the mapping and is 4-byte aligned (checked above; the
        // mapping starts on a page); the mapping lives as long as self. The kernel accesses
        // the word atomically, with barriers of its own (smp_wmb, flush_dcache_page) around
        // its stores to the frame or block the word hands over.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    /// The `len` bytes at `offset`.
    ///
    /// # Safety
    /// They must be in our hands: handed over by their status word (loaded with Acquire),
    /// which the kernel does not write again until we give it back, and not written by us
    /// while the borrow lives.
    unsafe fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        assert!(
            offset + len <= self.len,
            "{len} bytes at {offset} of a ring of {} bytes",
            self.len
        );
        // SAFETY: inside the mapping (checked above), which lives as long as self; nobody
        // writes the bytes while the borrow lives (the caller's promise).
        unsafe { std::slice::from_raw_parts(self.base.add(offset), len) }
    }

    /// Sets the socket's TPACKET `version`, asks the kernel for the ring `req` describes
    /// (`option`: PACKET_RX_RING or PACKET_TX_RING) and maps its `len` bytes; `populate`
    /// faults every page in at once, so the first frames meet no page fault.
    fn new<R: Copy>(
        fd: &OwnedFd,
        version: libc::tpacket_versions,
        option: libc::c_int,
        req: &R,
        len: usize,
        populate: bool,
    ) -> io::Result<RingMap> {
        set_int_option(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            version as libc::c_int,
        )?;
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, option, req)?;
        let flags = if populate {
            libc::MAP_SHARED | libc::MAP_POPULATE
        } else {
            libc::MAP_SHARED
        };
        // SAFETY: a fresh shared mapping of the ring the kernel allocated for this socket; the
        // result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(RingMap {
            base: base.cast(),
            len,
        })
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: base/len describe the mapping made in new(), unmapped once here.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// A PACKET_TX_RING (TPACKET_V2) mapped into our memory: frames are written into slots,
/// marked for sending, and one `send()` hands them all to the kernel.
pub(crate) struct TxRing {
    map: RingMap,
    frame_size: usize,
    frame_count: usize,
    next: usize,
}

impl std::fmt::Debug for TxRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxRing")
            .field("frame_size", &self.frame_size)
            .field("frame_count", &self.frame_count)
            .finish()
    }
}

impl TxRing {
    /// Sets TPACKET_V2 and maps a transmit ring of `frame_count` slots, each holding a frame
    /// of up to `max_frame_len` bytes. Must be called before the socket is bound.
    pub(crate) fn new(
        fd: &OwnedFd,
        max_frame_len: usize,
        frame_count: usize,
    ) -> io::Result<TxRing> {
        let page = 4096;
        let frame_size = (TX_DATA_OFFSET + max_frame_len).next_multiple_of(page);
        let frame_count = frame_count.max(1);
        let req = libc::tpacket_req {
            tp_block_size: frame_size as libc::c_uint,
            tp_block_nr: frame_count as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: frame_count as libc::c_uint,
        };
        let map = RingMap::new(
            fd,
            libc::tpacket_versions::TPACKET_V2,
            libc::PACKET_TX_RING,
            &req,
            frame_size * frame_count,
            false,
        )?;
        Ok(TxRing {
            map,
            frame_size,
            frame_count,
            next: 0,
        })
    }

    fn status(&self, slot: usize) -> &std::sync::atomic::AtomicU32 {
        // tp_status leads the slot's header.
        self.map.word(slot * self.frame_size)
    }

    /// Copies `frame` into the next slot and marks it for sending; false when that slot is
    /// still in the kernel's hands (the ring is full) or the frame is too long.
    pub(crate) fn push(&mut self, frame: &[u8]) -> bool {
        use std::sync::atomic::Ordering;
        if frame.len() > self.frame_size - TX_DATA_OFFSET {
            return false;
        }
        let slot = self.next;
        let status = self.status(slot).load(Ordering::Acquire);
        if status != libc::TP_STATUS_AVAILABLE && status != libc::TP_STATUS_WRONG_FORMAT {
            return false;
        }
        // SAFETY: the slot is ours (AVAILABLE): its bytes lie inside the mapping, at most
        // frame_size - TX_DATA_OFFSET long (checked above), and the kernel will not touch them
        // until we publish SEND_REQUEST below.
        unsafe {
            let header = self.map.base.add(slot * self.frame_size);
            std::ptr::copy_nonoverlapping(frame.as_ptr(), header.add(TX_DATA_OFFSET), frame.len());
            header
                .add(TX_LEN_OFFSET)
                .cast::<u32>()
                .write(frame.len() as u32);
        }
        self.status(slot)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.next = (slot + 1) % self.frame_count;
        true
    }

    /// Asks the kernel to send every slot marked for sending. `WouldBlock` when it could not
    /// take them all now (the socket buffer is full).
    pub(crate) fn flush(&self, fd: &OwnedFd) -> io::Result<()> {
        // SAFETY: a zero-length send with a null buffer is the documented way to kick a TX ring.
        let ret = unsafe { libc::send(fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// One frame in a [`RxRing`] block, borrowed until the callback that sees it returns.
#[derive(Debug)]
pub(crate) struct RingFrame<'a> {
    /// The frame from its Ethernet header on, as far as the kernel copied it.
    pub(crate) data: &'a [u8],
    /// The virtio-net header in front of the frame (the socket has PACKET_VNET_HDR).
    pub(crate) vnet: Option<&'a [u8]>,
    /// The frame's length on the wire (longer than `data` when the block cut it).
    pub(crate) len: usize,
    /// tp_status: TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID, TP_STATUS_VLAN_VALID, ...
    pub(crate) status: u32,
    /// sll_pkttype: PACKET_HOST, PACKET_OUTGOING, ...
    pub(crate) pkttype: u8,
    /// A VLAN tag the kernel stripped.
    pub(crate) vlan_tci: Option<u16>,
    /// The frame did not fit its slot of a frame ring, and the kernel queued the whole of it
    /// on the socket as well (TP_STATUS_COPY, PACKET_COPY_THRESH): `data` is cut short, and
    /// the next receive syscall returns the frame whole.
    pub(crate) copied: bool,
}

/// Where a TPACKET_V3 frame's header keeps its fields, and the sockaddr_ll after it
/// (`TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`).
const V3_NEXT_OFFSET: usize = 0;
const V3_SNAPLEN: usize = 12;
const V3_LEN: usize = 16;
const V3_STATUS: usize = 20;
const V3_MAC: usize = 24;
const V3_VLAN_TCI: usize = 32;
const V3_SOCKADDR: usize = 48;
const SLL_PKTTYPE: usize = 10;
/// The block descriptor: `tpacket_block_desc` with its `tpacket_hdr_v1`.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// struct virtio_net_hdr, which the kernel writes just before the frame.
const VNET_LEN: usize = 10;

/// A PACKET_RX_RING (TPACKET_V3) mapped into our memory: the kernel fills blocks of frames
/// and hands each block over whole (full, or partly filled when its retire timer fires);
/// we read its frames in place and return the block by writing its status back.
pub(crate) struct RxRing {
    map: RingMap,
    block_size: usize,
    block_count: usize,
    vnet: bool,
    /// The block read next (or being read).
    block: usize,
    /// Within a block in our hands: where its next frame's header is, and how many are left.
    cursor: Option<(usize, u32)>,
}

impl std::fmt::Debug for RxRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxRing")
            .field("block_size", &self.block_size)
            .field("block_count", &self.block_count)
            .field("block", &self.block)
            .finish()
    }
}

impl RxRing {
    /// Sets TPACKET_V3 and maps a receive ring of `block_count` blocks of `block_size` bytes
    /// (a multiple of the page size), each retired to us at the latest `retire_ms`
    /// milliseconds after its first frame. `vnet` says the socket has PACKET_VNET_HDR (which
    /// must be set before this). Call before the socket is bound.
    pub(crate) fn new(
        fd: &OwnedFd,
        block_size: usize,
        block_count: usize,
        retire_ms: u32,
        vnet: bool,
    ) -> io::Result<RxRing> {
        let page = 4096;
        if block_size == 0 || !block_size.is_multiple_of(page) || block_count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an RX ring needs at least one block, each a multiple of 4096 bytes",
            ));
        }
        // V3 frames are of any size within a block; the frame size only has to divide the
        // block for the kernel's frame count check.
        let frame_size = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as libc::c_uint,
            tp_block_nr: block_count as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: (block_size / frame_size * block_count) as libc::c_uint,
            tp_retire_blk_tov: retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        let map = RingMap::new(
            fd,
            libc::tpacket_versions::TPACKET_V3,
            libc::PACKET_RX_RING,
            &req,
            block_size * block_count,
            true,
        )?;
        Ok(RxRing {
            map,
            block_size,
            block_count,
            vnet,
            block: 0,
            cursor: None,
        })
    }

    fn block_status(&self, block: usize) -> &std::sync::atomic::AtomicU32 {
        self.map.word(block * self.block_size + BLOCK_STATUS)
    }

    /// The block's bytes. Only for a block in our hands (TP_STATUS_USER, loaded with
    /// Acquire), which the kernel does not write until we give it back.
    fn block_bytes(&self, block: usize) -> &[u8] {
        // SAFETY: the block is ours (see above), and only &mut self gives it back.
        unsafe { self.map.bytes(block * self.block_size, self.block_size) }
    }

    /// Whether a block waits in our hands (frames to read without a syscall).
    pub(crate) fn has_frames(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.cursor.is_some()
            || self.block_status(self.block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Hands up to `max` frames to `take`, in the order the kernel wrote them, returning each
    /// block to the kernel once its last frame has been taken. Returns how many were handed
    /// over; 0 when no block is in our hands.
    pub(crate) fn drain(&mut self, max: usize, mut take: impl FnMut(RingFrame<'_>)) -> usize {
        use std::sync::atomic::Ordering;
        let mut handed = 0;
        while handed < max {
            let (offset, left) = match self.cursor {
                Some(cursor) => cursor,
                None => {
                    if self.block_status(self.block).load(Ordering::Acquire) & libc::TP_STATUS_USER
                        == 0
                    {
                        break;
                    }
                    let bytes = self.block_bytes(self.block);
                    (
                        read_u32(bytes, BLOCK_FIRST_PKT) as usize,
                        read_u32(bytes, BLOCK_NUM_PKTS),
                    )
                }
            };
            let next = if left == 0 {
                None
            } else {
                let bytes = self.block_bytes(self.block);
                match frame_at(bytes, offset, self.vnet) {
                    Some((frame, next_offset)) => {
                        take(frame);
                        handed += 1;
                        (left > 1 && next_offset != 0).then(|| (offset + next_offset, left - 1))
                    }
                    // A header that does not fit the block: skip the rest of it.
                    None => None,
                }
            };
            self.cursor = next;
            if next.is_none() {
                // Every frame taken: the block goes back to the kernel, and we move on.
                self.block_status(self.block)
                    .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                self.block = (self.block + 1) % self.block_count;
            }
        }
        handed
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
}

/// The frame whose tpacket3_hdr is at `offset` of `block`, and tp_next_offset; `None` when
/// the header or the frame would reach past the block.
fn frame_at(block: &[u8], offset: usize, vnet: bool) -> Option<(RingFrame<'_>, usize)> {
    let header = block.get(offset..offset.checked_add(V3_SOCKADDR + SLL_PKTTYPE + 1)?)?;
    let mac = usize::from(read_u16(header, V3_MAC));
    let snaplen = read_u32(header, V3_SNAPLEN) as usize;
    let status = read_u32(header, V3_STATUS);
    // The frame (and its virtio-net header) come after the frame's header, never inside it.
    let vnet_len = if vnet { VNET_LEN } else { 0 };
    if mac < libc::TPACKET3_HDRLEN + vnet_len {
        return None;
    }
    let start = offset.checked_add(mac)?;
    let data = block.get(start..start.checked_add(snaplen)?)?;
    let vnet = if vnet {
        Some(block.get(start.checked_sub(VNET_LEN)?..start)?)
    } else {
        None
    };
    let frame = RingFrame {
        data,
        vnet,
        len: read_u32(header, V3_LEN) as usize,
        status,
        pkttype: header[V3_SOCKADDR + SLL_PKTTYPE],
        vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0)
            .then(|| read_u32(header, V3_VLAN_TCI) as u16),
        copied: false,
    };
    Some((frame, read_u32(header, V3_NEXT_OFFSET) as usize))
}

/// Where a TPACKET_V2 frame's header keeps its fields, and the sockaddr_ll after it
/// (`TPACKET_ALIGN(sizeof(struct tpacket2_hdr))`).
const V2_STATUS: usize = 0;
const V2_LEN: usize = 4;
const V2_SNAPLEN: usize = 8;
const V2_MAC: usize = 12;
const V2_VLAN_TCI: usize = 24;
const V2_SOCKADDR: usize = 32;
/// Where the kernel puts a frame in its slot, at most: `TPACKET_ALIGN(TPACKET2_HDRLEN + 16)`
/// and a virtio-net header (tpacket_rcv's netoff), less nothing for the MAC header.
const V2_FRAME_START_MAX: usize = 80 + VNET_LEN;
/// Bytes per block of a frame ring (at least one slot's): slots do not straddle blocks.
const V2_BLOCK: usize = 64 << 10;
/// The most memory a frame ring maps: its slot count is cut to fit.
const V2_RING_MAX: usize = 64 << 20;

/// A PACKET_RX_RING (TPACKET_V2) mapped into our memory: one slot per frame, each handed to
/// us on its own (the kernel wakes the reader per frame, as for a plain socket) and given
/// back by writing its status. A frame longer than a slot is cut there, and with
/// PACKET_COPY_THRESH also queued whole on the socket ([`RingFrame::copied`]).
pub(crate) struct RxFrameRing {
    map: RingMap,
    frame_size: usize,
    block_size: usize,
    frames_per_block: usize,
    frame_count: usize,
    vnet: bool,
    /// The slot read next.
    next: usize,
}

impl std::fmt::Debug for RxFrameRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxFrameRing")
            .field("frame_size", &self.frame_size)
            .field("frame_count", &self.frame_count)
            .field("next", &self.next)
            .finish()
    }
}

impl RxFrameRing {
    /// Sets TPACKET_V2 and PACKET_COPY_THRESH and maps a receive ring of at least `frames`
    /// slots (as many as fit [`V2_RING_MAX`], at most), each holding a frame of up to
    /// `frame_len` bytes. `vnet` says the socket has PACKET_VNET_HDR (set before this). Call
    /// before the socket is bound.
    pub(crate) fn new(
        fd: &OwnedFd,
        frame_len: usize,
        frames: usize,
        vnet: bool,
    ) -> io::Result<RxFrameRing> {
        let frame_size = (V2_FRAME_START_MAX + frame_len)
            .next_power_of_two()
            .max(2048);
        let block_size = V2_BLOCK.max(frame_size);
        // A frame too long for its slot is queued whole on the socket besides.
        set_int_option(fd, libc::SOL_PACKET, libc::PACKET_COPY_THRESH, 1)?;
        let frames_per_block = block_size / frame_size;
        let block_count = frames
            .div_ceil(frames_per_block)
            .min(V2_RING_MAX / block_size)
            .max(1);
        let frame_count = frames_per_block * block_count;
        let req = libc::tpacket_req {
            tp_block_size: block_size as libc::c_uint,
            tp_block_nr: block_count as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: frame_count as libc::c_uint,
        };
        let map = RingMap::new(
            fd,
            libc::tpacket_versions::TPACKET_V2,
            libc::PACKET_RX_RING,
            &req,
            block_size * block_count,
            true,
        )?;
        Ok(RxFrameRing {
            map,
            frame_size,
            block_size,
            frames_per_block,
            frame_count,
            vnet,
            next: 0,
        })
    }

    fn slot_offset(&self, slot: usize) -> usize {
        slot / self.frames_per_block * self.block_size
            + slot % self.frames_per_block * self.frame_size
    }

    fn status(&self, slot: usize) -> &std::sync::atomic::AtomicU32 {
        self.map.word(self.slot_offset(slot) + V2_STATUS)
    }

    /// The slot's bytes. Only for a slot in our hands (TP_STATUS_USER, loaded with Acquire),
    /// which the kernel does not write until we give it back.
    fn slot_bytes(&self, slot: usize) -> &[u8] {
        // SAFETY: the slot is ours (see above), and only &mut self gives it back.
        unsafe { self.map.bytes(self.slot_offset(slot), self.frame_size) }
    }

    /// Whether a frame waits in our hands.
    pub(crate) fn has_frames(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.status(self.next).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Hands up to `max` frames to `take`, in the order the kernel wrote them, returning each
    /// slot to the kernel once taken. Returns how many were handed over (a slot whose header
    /// does not hold together is given back unread, and counts); 0 when none is ours.
    pub(crate) fn drain(&mut self, max: usize, mut take: impl FnMut(RingFrame<'_>)) -> usize {
        use std::sync::atomic::Ordering;
        let mut handed = 0;
        while handed < max {
            let status = self.status(self.next).load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            if let Some(frame) = frame_in_slot(self.slot_bytes(self.next), status, self.vnet) {
                take(frame);
            }
            handed += 1;
            self.status(self.next)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % self.frame_count;
        }
        handed
    }
}

/// The frame in a TPACKET_V2 slot whose status word is `status`; `None` when the header
/// places it outside the slot.
fn frame_in_slot(slot: &[u8], status: u32, vnet: bool) -> Option<RingFrame<'_>> {
    let mac = usize::from(read_u16(slot, V2_MAC));
    let snaplen = read_u32(slot, V2_SNAPLEN) as usize;
    let vnet_len = if vnet { VNET_LEN } else { 0 };
    if mac < V2_SOCKADDR + SLL_PKTTYPE + 1 + vnet_len {
        return None;
    }
    let data = slot.get(mac..mac.checked_add(snaplen)?)?;
    let vnet = if vnet {
        Some(slot.get(mac - VNET_LEN..mac)?)
    } else {
        None
    };
    Some(RingFrame {
        data,
        vnet,
        len: read_u32(slot, V2_LEN) as usize,
        status,
        pkttype: slot[V2_SOCKADDR + SLL_PKTTYPE],
        vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| read_u16(slot, V2_VLAN_TCI)),
        copied: status & libc::TP_STATUS_COPY != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tpacket3_hdr at `offset` of `block` for a frame at `mac` (from the header) of
    /// `snaplen` bytes.
    fn header(block: &mut [u8], offset: usize, mac: u16, snaplen: u32, next: u32, pkttype: u8) {
        block[offset + V3_NEXT_OFFSET..][..4].copy_from_slice(&next.to_ne_bytes());
        block[offset + V3_SNAPLEN..][..4].copy_from_slice(&snaplen.to_ne_bytes());
        block[offset + V3_LEN..][..4].copy_from_slice(&(snaplen + 4).to_ne_bytes());
        block[offset + V3_STATUS..][..4].copy_from_slice(
            &(libc::TP_STATUS_CSUMNOTREADY | libc::TP_STATUS_VLAN_VALID).to_ne_bytes(),
        );
        block[offset + V3_MAC..][..2].copy_from_slice(&mac.to_ne_bytes());
        block[offset + V3_VLAN_TCI..][..4].copy_from_slice(&7u32.to_ne_bytes());
        block[offset + V3_SOCKADDR + SLL_PKTTYPE] = pkttype;
    }

    #[test]
    fn ring_frame_headers_are_read_within_their_block() {
        let mut block = vec![0u8; 4096];
        header(&mut block, 48, 82, 60, 256, libc::PACKET_OUTGOING);
        block[48 + 82..48 + 82 + 60].fill(0xab);
        block[48 + 82 - VNET_LEN..48 + 82].fill(0x01);
        let (frame, next) = frame_at(&block, 48, true).expect("a frame within the block");
        assert_eq!(frame.data, &[0xab; 60][..]);
        assert_eq!(frame.vnet, Some(&[0x01; VNET_LEN][..]));
        assert_eq!(
            (frame.len, next, frame.pkttype),
            (64, 256, libc::PACKET_OUTGOING)
        );
        assert_eq!(frame.vlan_tci, Some(7));
        assert_ne!(frame.status & libc::TP_STATUS_CSUMNOTREADY, 0);
        // A frame reaching past the block, or a header that does not fit, is not read.
        header(&mut block, 1024, 82, 4000, 0, 0);
        assert!(frame_at(&block, 1024, false).is_none());
        assert!(frame_at(&block, 4090, false).is_none());
        assert!(frame_at(&block, usize::MAX - 8, false).is_none());
        // A frame inside its own header, or a virtio-net header that would be, is not read.
        header(&mut block, 2048, 4, 10, 0, 0);
        assert!(frame_at(&block, 2048, false).is_none());
        header(&mut block, 2048, 70, 10, 0, 0);
        assert!(frame_at(&block, 2048, true).is_none());
        assert!(frame_at(&block, 2048, false).is_some());
    }
}
