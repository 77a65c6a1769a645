//! Pollable handles: any descriptor epoll can watch that is neither a socket nor a pipe
//! (an eventfd, signalfd, timerfd, pidfd or inotify descriptor). `add` detects them by
//! their missing file type (anonymous inodes), or [`Options::kind`](crate::Options::kind)
//! forces the kind. The reactor does no I/O on them: it registers them level-triggered for
//! reading and calls `on_readable` every turn while they are readable; the handler reads
//! them ([`Context::read`](crate::Context::read)) in whatever way their kind wants, and
//! closes them when it is done.
//!
//! One pollable kind the reactor reads itself: the signalfd of
//! [`Reactor::signals`](crate::Reactor::signals), whose signals go to `on_signal`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use super::{Entry, Shape, State, Transport};
use crate::reactor::dispatch::dispatch;
use crate::sys;
use crate::{Error, IntoHandler, Kind, Options, Reactor, Signal, Token};

/// Signals taken from the signalfd per visit: a flood of them cannot hold the loop.
const SIGNALS_PER_VISIT: usize = 64;

impl Reactor {
    /// One visit of a ready pollable handle.
    pub(crate) fn drive_pollable(&mut self, token: Token) {
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        if entry.wants_read() && (entry.ready.readable() || entry.ready.read_closed()) {
            dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
        }
    }
}

impl Reactor {
    /// Delivers each signal waiting in a signals handle's signalfd to `on_signal`.
    pub(crate) fn deliver_signals(&mut self, token: Token) {
        for _ in 0..SIGNALS_PER_VISIT {
            let Some(fd) = self
                .registry
                .entry(token)
                .filter(|e| e.is_live())
                .and_then(|e| e.fd.as_ref())
            else {
                return;
            };
            match sys::signal::read_signal(fd.as_fd()) {
                Ok(Some(info)) => {
                    let signal = Signal::from_siginfo(&info);
                    dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_signal(ctx, &signal)
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    self.registry.report(token, Error::Io(e));
                    return;
                }
            }
        }
    }

    /// Delivers `signals` to `handler.on_signal` as they arrive, through a signalfd; see
    /// [`Reactor::signals`](crate::Reactor::signals).
    pub(crate) fn open_signals(
        &mut self,
        signals: &[i32],
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        // Blocked first, or the default action (for SIGTERM: exit) runs before the
        // signalfd can see them.
        sys::signal::block(signals)?;
        let fd: OwnedFd = sys::signal::signalfd(signals)?;
        let shape = Shape {
            kind: Kind::Pollable,
            transport: Transport::Other,
            readable_end: true,
            writable_end: false,
            short_read_drains: false,
        };
        let mut entry = Entry::new(shape, Some(fd), Rc::new(Options::default()), true);
        entry.state = State::Signals;
        entry.sole_owner = true;
        self.registry.insert(entry, handler.into_handler())
    }
}
