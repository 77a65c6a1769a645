//! Pollable handles: any descriptor epoll can watch that is neither a socket nor a pipe
//! (an eventfd, signalfd, timerfd, pidfd or inotify descriptor). `add` detects them by
//! their missing file type (anonymous inodes), or [`Options::kind`](crate::Options::kind)
//! forces the kind. The reactor does no I/O on them: it registers them level-triggered for
//! reading and calls `on_readable` every turn while they are readable; the handler reads
//! them ([`Context::read`](crate::Context::read)) in whatever way their kind wants, and
//! closes them when it is done.

use crate::reactor::dispatch::dispatch;
use crate::{Reactor, Token};

impl Reactor {
    /// One visit of a ready pollable handle.
    pub(crate) fn drive_pollable(&mut self, token: Token) {
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        if entry.wants_read() && (entry.ready.readable || entry.ready.read_closed) {
            dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
        }
    }
}
