//! A non-blocking descriptor and its readiness through tokio's `AsyncFd`, registered lazily
//! (on the first poll, which runs inside the runtime) so devices can be opened outside one.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;

use crate::sys;

#[derive(Debug)]
enum State<T: AsRawFd> {
    Plain(T),
    Registered(AsyncFd<T>),
}

/// Owns a descriptor (an `OwnedFd` or a `File`) and tracks whether the last `recv`/`send`
/// hit `WouldBlock`, so the next poll clears tokio's cached readiness and waits for a new
/// edge.
#[derive(Debug)]
pub(crate) struct FdIo<T: AsRawFd> {
    // Always Some outside `register`.
    state: Option<State<T>>,
    read_would_block: bool,
    write_would_block: bool,
}

impl<T: AsRawFd> FdIo<T> {
    pub(crate) fn new(io: T) -> FdIo<T> {
        FdIo {
            state: Some(State::Plain(io)),
            read_would_block: false,
            write_would_block: false,
        }
    }

    /// The descriptor's owner, for syscalls.
    pub(crate) fn get_ref(&self) -> &T {
        match self.state.as_ref().expect("state is always present") {
            State::Plain(io) => io,
            State::Registered(watched) => watched.get_ref(),
        }
    }

    /// The descriptor's owner, mutable.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        match self.state.as_mut().expect("state is always present") {
            State::Plain(io) => io,
            State::Registered(watched) => watched.get_mut(),
        }
    }

    /// The last receive found nothing.
    pub(crate) fn read_blocked(&mut self) {
        self.read_would_block = true;
    }

    /// The last send could not move everything.
    pub(crate) fn write_blocked(&mut self) {
        self.write_would_block = true;
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

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let clear = std::mem::take(&mut self.read_would_block);
            let mut guard = ready!(self.watched()?.poll_read_ready(cx))?;
            if !clear {
                return Poll::Ready(Ok(()));
            }
            guard.clear_ready();
        }
    }

    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let clear = std::mem::take(&mut self.write_would_block);
            let mut guard = ready!(self.watched()?.poll_write_ready(cx))?;
            if !clear {
                return Poll::Ready(Ok(()));
            }
            guard.clear_ready();
        }
    }
}
