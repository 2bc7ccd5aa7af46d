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
/// resets the kernel's counters).
pub(crate) fn packet_statistics(fd: &OwnedFd) -> io::Result<libc::tpacket_stats> {
    let mut stats = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` is a live tpacket_stats and `len` its size; the kernel writes at most
    // `len` bytes into it and updates `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats).cast(),
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

/// recvmmsg into `buffers` (at most MAX_BATCH), non-blocking: `WouldBlock` when nothing is
/// waiting (the caller's readiness bookkeeping needs to see it as such).
pub(crate) fn recv_batch(
    fd: &OwnedFd,
    buffers: &mut [&mut [u8]],
    out: &mut [Received],
) -> io::Result<usize> {
    let n = buffers.len().min(MAX_BATCH).min(out.len());
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: these are plain-data C structs; all-zero is a valid value of each.
    let mut iovecs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    let mut addrs: [libc::sockaddr_ll; MAX_BATCH] = unsafe { zeroed() };
    let mut controls = [Control([0; CONTROL_LEN]); MAX_BATCH];
    let mut headers: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        iovecs[i] = libc::iovec {
            iov_base: buffers[i].as_mut_ptr().cast(),
            iov_len: buffers[i].len(),
        };
        let hdr = &mut headers[i].msg_hdr;
        hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
        hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        hdr.msg_iov = &mut iovecs[i];
        hdr.msg_iovlen = 1;
        hdr.msg_control = controls[i].0.as_mut_ptr().cast();
        hdr.msg_controllen = CONTROL_LEN;
    }
    // SAFETY: every pointer in headers[..n] points into the stack arrays above or into
    // `buffers`, all of which outlive the call; lengths match the buffers.
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
        let mut received = Received {
            len: (headers[i].msg_len as usize).min(buffers[i].len()),
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
pub(crate) fn recv_one(fd: &OwnedFd, buffer: &mut [u8], out: &mut Received) -> io::Result<usize> {
    let mut one = [Received::default()];
    let got = recv_batch(fd, &mut [buffer], &mut one)?;
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

/// Header of a TPACKET_V2 frame: the status word sits at offset 0; for transmit, the frame
/// data starts at `TPACKET_ALIGN(sizeof(struct tpacket2_hdr))` (32 bytes).
const TX_DATA_OFFSET: usize = 32;
const TX_LEN_OFFSET: usize = 4;

/// A PACKET_TX_RING (TPACKET_V2) mapped into our memory: frames are written into slots,
/// marked for sending, and one `send()` hands them all to the kernel.
pub(crate) struct TxRing {
    base: *mut u8,
    mapped_len: usize,
    frame_size: usize,
    frame_count: usize,
    next: usize,
}

// SAFETY: the ring is plain memory shared only with the kernel; TxRing owns the mapping and
// all access goes through &mut self.
unsafe impl Send for TxRing {}

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
        set_int_option(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            libc::tpacket_versions::TPACKET_V2 as libc::c_int,
        )?;
        let page = 4096;
        let frame_size = (TX_DATA_OFFSET + max_frame_len).next_multiple_of(page);
        let frame_count = frame_count.max(1);
        let req = libc::tpacket_req {
            tp_block_size: frame_size as libc::c_uint,
            tp_block_nr: frame_count as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: frame_count as libc::c_uint,
        };
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_TX_RING, &req)?;
        let mapped_len = frame_size * frame_count;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for this socket;
        // the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(TxRing {
            base: base.cast(),
            mapped_len,
            frame_size,
            frame_count,
            next: 0,
        })
    }

    fn status(&self, slot: usize) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: slot < frame_count, so the header lies inside the mapping; it is 4-byte
        // aligned (frames start on page boundaries) and the kernel accesses it atomically too.
        unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.add(slot * self.frame_size).cast())
        }
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
            let header = self.base.add(slot * self.frame_size);
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

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: base/mapped_len describe the mapping made in new(), unmapped once here.
        unsafe { libc::munmap(self.base.cast(), self.mapped_len) };
    }
}
