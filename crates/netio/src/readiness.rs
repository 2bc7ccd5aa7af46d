//! A non-blocking descriptor and its readiness through tokio's `AsyncFd`, registered lazily
//! (on the first poll, which runs inside the runtime) so devices can be opened outside one.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys;

#[derive(Debug)]
enum State<T: AsRawFd> {
    Plain(T),
    Registered(AsyncFd<T>),
}

/// Owns a descriptor (an `OwnedFd` or a `File`) and its readiness.
///
/// tokio's epoll is edge-triggered: after a receive or send hits `WouldBlock`, readiness
/// must be cleared, or the driver spins; but clearing must never swallow an edge newer than
/// that `WouldBlock`, or the frame behind it waits in the socket with no wakeup to come.
/// So every syscall runs through [`FdIo::read_with`] / [`FdIo::write_with`], which take the
/// reactor's readiness (its tick) *before* the syscall and clear exactly that readiness, and
/// only when that very syscall returned `WouldBlock` (`AsyncFd::try_io`). The `poll_*`
/// methods only wait; they never clear.
#[derive(Debug)]
pub(crate) struct FdIo<T: AsRawFd> {
    // Always Some outside `register`.
    state: Option<State<T>>,
}

impl<T: AsRawFd> FdIo<T> {
    pub(crate) fn new(io: T) -> FdIo<T> {
        FdIo {
            state: Some(State::Plain(io)),
        }
    }

    /// The descriptor's owner, for syscalls that do not wait on readiness (setup, ioctls).
    pub(crate) fn get_ref(&self) -> &T {
        match self.state.as_ref().expect("state is always present") {
            State::Plain(io) => io,
            State::Registered(watched) => watched.get_ref(),
        }
    }

    /// Runs one non-blocking receive `op`. `Ok(None)` when it returned `WouldBlock`; then
    /// read readiness is cleared as the reactor reported it before `op` ran, so an edge that
    /// came during or after `op` still wakes [`FdIo::poll_read`].
    pub(crate) fn read_with<R>(
        &self,
        op: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<Option<R>> {
        self.attempt(Interest::READABLE, op)
    }

    /// Runs one non-blocking send `op`; as [`FdIo::read_with`], for write readiness.
    pub(crate) fn write_with<R>(
        &self,
        op: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<Option<R>> {
        self.attempt(Interest::WRITABLE, op)
    }

    fn attempt<R>(
        &self,
        interest: Interest,
        op: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<Option<R>> {
        let watched = match self.state.as_ref().expect("state is always present") {
            // Not registered yet: no readiness to keep in step.
            State::Plain(io) => return would_block_as_none(op(io)),
            State::Registered(watched) => watched,
        };
        let mut op = Some(op);
        match watched.try_io(interest, |io| (op.take().expect("try_io calls once"))(io)) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => match op.take() {
                // try_io did not run `op`: the reactor holds no readiness, so there is none
                // to clear. The syscall is still worth trying (the reactor may not have
                // turned since the frame arrived); if it blocks, an edge will come.
                Some(op) => would_block_as_none(op(watched.get_ref())),
                // `op` ran and blocked; try_io cleared the readiness it had seen.
                None => Ok(None),
            },
            result => result.map(Some),
        }
    }

    fn watched(&mut self) -> io::Result<&AsyncFd<T>> {
        if let Some(State::Plain(_)) = self.state {
            let Some(State::Plain(io)) = self.state.take() else {
                unreachable!("matched above")
            };
            match sys::register(io) {
                Ok(watched) => self.state = Some(State::Registered(watched)),
                Err((io, error)) => {
                    self.state = Some(State::Plain(io));
                    return Err(error);
                }
            }
        }
        match self.state.as_ref().expect("state is always present") {
            State::Registered(watched) => Ok(watched),
            State::Plain(_) => unreachable!("registered above"),
        }
    }

    /// Ready while the reactor reports the descriptor readable: until a receive through
    /// [`FdIo::read_with`] returns `WouldBlock`, this stays ready.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _guard = ready!(self.watched()?.poll_read_ready(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Ready while the reactor reports the descriptor writable.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _guard = ready!(self.watched()?.poll_write_ready(cx))?;
        Poll::Ready(Ok(()))
    }
}

fn would_block_as_none<R>(result: io::Result<R>) -> io::Result<Option<R>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    /// Lets the runtime's reactor turn, so that it records what the kernel has signalled.
    async fn let_reactor_run() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fn is_ready(poll: Poll<io::Result<()>>) -> bool {
        match poll {
            Poll::Ready(result) => {
                result.expect("readiness of a live socket");
                true
            }
            Poll::Pending => false,
        }
    }

    fn poll_read_now(io: &mut FdIo<UnixDatagram>) -> bool {
        is_ready(io.poll_read(&mut Context::from_waker(std::task::Waker::noop())))
    }

    fn poll_write_now(io: &mut FdIo<UnixDatagram>) -> bool {
        is_ready(io.poll_write(&mut Context::from_waker(std::task::Waker::noop())))
    }

    fn pair() -> (FdIo<UnixDatagram>, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().expect("a socket pair");
        ours.set_nonblocking(true).expect("non-blocking");
        (FdIo::new(ours), theirs)
    }

    /// The lost wakeup of a driver that recorded "the last receive hit EAGAIN" and cleared
    /// readiness later: a datagram that arrives in between must still make it ready.
    #[tokio::test(flavor = "current_thread")]
    async fn a_datagram_after_eagain_keeps_read_readiness() {
        let (mut io, theirs) = pair();
        theirs.send(b"first").expect("send");
        // Registers with the reactor, which reports the waiting datagram.
        let _ = poll_read_now(&mut io);
        let_reactor_run().await;
        assert!(poll_read_now(&mut io), "a datagram is waiting");
        let mut buf = [0u8; 16];
        let got = io.read_with(|s| s.recv(&mut buf)).expect("recv");
        assert_eq!(got, Some(5));
        // The socket is empty now: this receive blocks and clears readiness...
        assert_eq!(io.read_with(|s| s.recv(&mut buf)).expect("recv"), None);
        assert!(!poll_read_now(&mut io), "nothing is waiting");
        // ...then a datagram arrives and the reactor sees it before the driver asks.
        theirs.send(b"second").expect("send");
        let_reactor_run().await;
        assert!(
            poll_read_now(&mut io),
            "a datagram is waiting but readiness was lost"
        );
        assert_eq!(io.read_with(|s| s.recv(&mut buf)).expect("recv"), Some(6));
    }

    /// Readiness stays set while the socket is not drained: only a blocked receive clears it.
    #[tokio::test(flavor = "current_thread")]
    async fn only_a_blocked_receive_clears_read_readiness() {
        let (mut io, theirs) = pair();
        let _ = poll_read_now(&mut io);
        for _ in 0..3 {
            theirs.send(b"x").expect("send");
        }
        let_reactor_run().await;
        let mut buf = [0u8; 4];
        for _ in 0..3 {
            assert!(poll_read_now(&mut io));
            assert_eq!(io.read_with(|s| s.recv(&mut buf)).expect("recv"), Some(1));
        }
        assert!(poll_read_now(&mut io), "not yet seen empty");
        assert_eq!(io.read_with(|s| s.recv(&mut buf)).expect("recv"), None);
        assert!(!poll_read_now(&mut io));
    }

    /// A receive before the reactor has reported anything still reads what is there.
    #[tokio::test(flavor = "current_thread")]
    async fn a_receive_ahead_of_the_reactor_reads() {
        let (mut io, theirs) = pair();
        let _ = poll_read_now(&mut io);
        let_reactor_run().await;
        theirs.send(b"early").expect("send");
        let mut buf = [0u8; 8];
        assert_eq!(io.read_with(|s| s.recv(&mut buf)).expect("recv"), Some(5));
    }

    /// The same for write readiness: the send buffer fills (WouldBlock), the peer drains it,
    /// the reactor sees room: the driver must find the socket writable.
    #[tokio::test(flavor = "current_thread")]
    async fn room_after_a_full_send_buffer_keeps_write_readiness() {
        let (mut io, theirs) = pair();
        let _ = poll_write_now(&mut io);
        let_reactor_run().await;
        assert!(poll_write_now(&mut io), "a new socket is writable");
        let datagram = [0u8; 1024];
        let mut sent = 0;
        while io
            .write_with(|s| s.send(&datagram))
            .expect("send")
            .is_some()
        {
            sent += 1;
        }
        assert!(sent > 0);
        assert!(!poll_write_now(&mut io), "the buffer is full");
        let mut buf = [0u8; 1024];
        for _ in 0..sent {
            theirs.recv(&mut buf).expect("drain");
        }
        let_reactor_run().await;
        assert!(
            poll_write_now(&mut io),
            "there is room but write readiness was lost"
        );
        assert!(
            io.write_with(|s| s.send(&datagram))
                .expect("send")
                .is_some()
        );
    }
}
