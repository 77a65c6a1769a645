//! Driving a listener: accepting (or, with ManualAccept, reporting) connections, and
//! backing off when the process runs out of descriptors.
//!
//! EMFILE/ENFILE leave the connection in the backlog, so the listener stays readable; a
//! loop that retried at once would spin at 100% CPU. Instead the listener stops accepting
//! for [`ACCEPT_BACKOFF`], reports the error once to its handler, and tries again after;
//! it recovers by itself when descriptors are freed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::dispatch::dispatch;
use crate::registry::{Deferred, Registry};
use crate::sys;
use crate::timer::TimerPurpose;
use socket2::SockAddr;

use crate::entry::Transport;
use crate::{Address, Credentials, Error, Incoming, Reactor, Token};

/// Connections accepted per listener per turn.
const ACCEPTS_PER_TURN: usize = 64;
/// How long a listener waits after EMFILE/ENFILE/ENOBUFS/ENOMEM before accepting again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Reactor {
    pub(crate) fn drive_listener(&mut self, token: Token) {
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        if !entry.wants_read() || !entry.ready.readable {
            return;
        }
        if entry.options.get_manual_accept() {
            dispatch(&mut self.registry, token, |h, ctx| h.on_accepting(ctx));
            return;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(entry) = self.registry.entry_mut(token) else {
                return;
            };
            let Some(fd) = entry.fd.as_ref().filter(|_| entry.wants_read()) else {
                return;
            };
            match sys::fd::accept(fd.as_fd()) {
                Ok((conn, peer)) => self.admit(token, conn, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    entry.ready.readable = false;
                    return;
                }
                Err(e) if is_exhaustion(&e) => {
                    self.registry.back_off_accept(token, e);
                    return;
                }
                Err(e) if is_transient(&e) => {
                    log::debug!("{token}: accept: {e} (skipped)");
                }
                Err(e) => {
                    entry.ready.readable = false;
                    self.registry
                        .deferred
                        .push_back(Deferred::Error(token, Error::Io(e)));
                    return;
                }
            }
        }
        self.registry.schedule(token);
    }

    /// Asks the listener's handler for the new connection's handler and registers it.
    fn admit(&mut self, listener: Token, conn: OwnedFd, peer: SockAddr) {
        let Some(entry) = self.registry.entry(listener) else {
            return;
        };
        let (options, transport) = (entry.options.clone(), entry.transport);
        let credentials = match transport {
            Transport::Unix => Credentials::of(conn.as_fd()).ok(),
            _ => None,
        };
        let incoming = Incoming {
            peer: Address::from_sockaddr(peer),
            credentials,
        };
        let handler = dispatch(&mut self.registry, listener, |h, ctx| {
            h.on_accept(ctx, &incoming)
        });
        let Some(Some(handler)) = handler else {
            log::trace!("{listener}: refused a connection from {}", incoming.peer);
            return;
        };
        match self
            .registry
            .add_accepted(conn, transport, options, handler)
        {
            Ok(token) => {
                log::trace!("{listener}: accepted {token} from {}", incoming.peer);
                dispatch(&mut self.registry, token, |h, ctx| h.on_connect(ctx));
            }
            Err(e) => {
                log::warn!("{listener}: registering an accepted connection failed: {e}");
                self.registry
                    .deferred
                    .push_back(Deferred::Error(listener, Error::Io(e)));
            }
        }
    }
}

impl Registry {
    /// Pauses accepting on `token` for [`ACCEPT_BACKOFF`] and reports `error` once.
    pub(crate) fn back_off_accept(&mut self, token: Token, error: io::Error) {
        let Some(entry) = self.entry_mut(token) else {
            return;
        };
        if entry.accept_backoff {
            return;
        }
        log::warn!("{token}: accept failed ({error}); pausing accepts for {ACCEPT_BACKOFF:?}");
        entry.accept_backoff = true;
        let id = self
            .timers
            .insert(token, TimerPurpose::AcceptRetry, ACCEPT_BACKOFF, None);
        self.entry_mut(token)
            .expect("checked above")
            .timers
            .push(id);
        self.update_interest(token);
        self.deferred
            .push_back(Deferred::Error(token, Error::Io(error)));
    }
}

/// Running out of descriptors or kernel memory: retrying at once would spin.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Failures of one connection in the backlog, not of the listener (accept(2) says to retry).
fn is_transient(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
        || matches!(
            e.raw_os_error(),
            Some(
                libc::ECONNABORTED
                    | libc::EPROTO
                    | libc::EPERM
                    | libc::ENETDOWN
                    | libc::ENOPROTOOPT
                    | libc::EHOSTDOWN
                    | libc::ENONET
                    | libc::EHOSTUNREACH
                    | libc::EOPNOTSUPP
                    | libc::ENETUNREACH
            )
        )
}
