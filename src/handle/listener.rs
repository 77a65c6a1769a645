//! Listener handles: accepting (or, with ManualAccept, reporting) connections, admitting
//! each as a stream handle with the handler `on_accept` returns, and backing off when the
//! process runs out of descriptors.
//!
//! EMFILE/ENFILE leave the connection in the backlog, so the listener stays readable; a
//! loop that retried at once would spin at 100% CPU. Instead the listener stops accepting
//! for [`ACCEPT_BACKOFF`], reports the error once to its handler, and tries again after;
//! it recovers by itself when descriptors are freed.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use socket2::{SockAddr, SockRef};

use super::slot::Seat;
use super::{Entry, Kind, Shape, State, Transport};
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::Registry;
use crate::selector::Ready;
use crate::sys;
use crate::timer::TimerPurpose;
use crate::{Address, CloseReason, Credentials, Error, Incoming, Options, Reactor, Token};
use bytes::Bytes;

/// Refused connections closing gracefully at once, at most (see `Registry::refuse`).
const LINGERING_REFUSALS: usize = 64;
/// How long a refused connection may linger for its peer's end of stream.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The handler of a refused connection: it hears nothing worth acting on.
struct Refused;

impl crate::Handler for Refused {}

/// Connections accepted per listener per turn.
const ACCEPTS_PER_TURN: usize = 64;
/// How long a listener waits after EMFILE/ENFILE/ENOBUFS/ENOMEM before accepting again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Reactor {
    /// One visit of a ready listener: up to [`ACCEPTS_PER_TURN`] connections, or
    /// ManualAccept's `on_accepting`.
    pub(crate) fn drive_listener(&mut self, token: Token) {
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        if !entry.wants_read() || !entry.ready.readable() {
            return;
        }
        if entry.options.manual_accept {
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
                    entry.ready.remove(Ready::READABLE);
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
                    entry.ready.remove(Ready::READABLE);
                    self.registry.report(token, Error::Io(e));
                    return;
                }
            }
        }
        self.registry.schedule(token);
    }

    /// Registers a new connection, then asks the listener's handler for its handler
    /// (`on_accept` can already name it: [`Incoming::token`]). A refused connection is
    /// dropped at once, with no callbacks.
    fn admit(&mut self, listener: Token, conn: OwnedFd, peer: SockAddr) {
        let Some(entry) = self.registry.entry_mut(listener) else {
            return;
        };
        let State::Listener(state) = &mut entry.state else {
            return;
        };
        if state.seats.count() >= state.limit {
            state.refused += 1;
            let refusal = entry.options.refusal.clone();
            log::debug!(
                "{listener}: connection limit reached; refusing {}",
                state.refused
            );
            let transport = entry.transport;
            self.registry.refuse(conn, transport, refusal);
            return;
        }
        let seat = state.seats.take();
        let (options, transport) = (entry.options.clone(), entry.transport);
        let credentials = match transport {
            Transport::Unix => Credentials::of(conn.as_fd()).ok(),
            _ => None,
        };
        let token = match self.registry.add_accepted(conn, transport, options, seat) {
            Ok(token) => token,
            Err(e) => {
                log::warn!("{listener}: registering an accepted connection failed: {e}");
                self.registry.report(listener, Error::Io(e));
                return;
            }
        };
        let incoming = Incoming {
            peer: Address::from_sockaddr(peer),
            credentials,
            token,
        };
        let handler = dispatch(&mut self.registry, listener, |h, ctx| {
            h.on_accept(ctx, &incoming)
        });
        let Some(Some(handler)) = handler else {
            log::trace!("{listener}: refused a connection from {}", incoming.peer);
            self.registry.discard(token);
            return;
        };
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        entry.handler = Some(handler);
        log::trace!("{listener}: accepted {token} from {}", incoming.peer);
        #[cfg(feature = "tls")]
        if let Some(crate::options::TlsSide::Server(config)) = entry.options.tls.clone() {
            // on_connect once the handshake completes.
            if let Err(e) = self.registry.start_tls_server(token, config) {
                self.registry.fail(token, e);
            }
            return;
        }
        if entry.is_live() {
            dispatch(&mut self.registry, token, |h, ctx| h.on_connect(ctx));
        }
    }
}

impl Registry {
    /// Registers a connection a listener accepted, still without a handler; it shares the
    /// listener's options.
    fn add_accepted(
        &mut self,
        fd: OwnedFd,
        transport: Transport,
        options: Rc<Options>,
        seat: Seat,
    ) -> io::Result<Token> {
        if transport == Transport::Tcp && options.nodelay {
            SockRef::from(&fd).set_tcp_nodelay(true)?;
        }
        let shape = Shape::socket(Kind::Stream, transport);
        let mut entry = Entry::new(shape, Some(fd), options, true);
        // accept4 made it: no other descriptor shares it.
        entry.sole_owner = true;
        if let State::Stream(stream) = &mut entry.state {
            stream._seat = Some(seat);
        }
        self.insert_entry(entry)
    }

    /// A connection past its listener's limit: sent the refusal (if any) and closed
    /// cleanly, with a short linger so that input it already sent does not turn the close
    /// into a reset that destroys the refusal. Past [`LINGERING_REFUSALS`] of those at
    /// once, a refusal is written (best effort) and closed at once, so a flood of refused
    /// connections cannot hold descriptors either.
    fn refuse(&mut self, conn: OwnedFd, transport: Transport, refusal: Option<Bytes>) {
        if self.refusals.count() >= LINGERING_REFUSALS {
            if let Some(message) = refusal {
                let _ = sys::fd::send_vectored(conn.as_fd(), &[std::io::IoSlice::new(&message)]);
            }
            let _ = SockRef::from(&conn).shutdown(std::net::Shutdown::Write);
            return;
        }
        let options = Rc::new(Options::new().linger(REFUSAL_LINGER));
        let shape = Shape::socket(Kind::Stream, transport);
        let mut entry = Entry::new(shape, Some(conn), options, true);
        entry.sole_owner = true;
        if let State::Stream(stream) = &mut entry.state {
            stream._seat = Some(self.refusals.take());
        }
        let Ok(token) = self.insert(entry, Box::new(Refused)) else {
            return;
        };
        if let Some(message) = refusal {
            let _ = self.send_bytes(token, message);
        }
        self.close_with(token, CloseReason::Closed);
    }

    /// Pauses accepting on `token` for [`ACCEPT_BACKOFF`] and reports `error` once.
    fn back_off_accept(&mut self, token: Token, error: io::Error) {
        let Some(State::Listener(listener)) = self.entry_mut(token).map(|e| &mut e.state) else {
            return;
        };
        if listener.backoff {
            return;
        }
        log::warn!("{token}: accept failed ({error}); pausing accepts for {ACCEPT_BACKOFF:?}");
        listener.backoff = true;
        self.own_timer(token, TimerPurpose::AcceptRetry, ACCEPT_BACKOFF, None);
        self.update_interest(token);
        self.report(token, Error::Io(error));
    }

    /// The back-off time is over: accept again.
    pub(crate) fn end_accept_backoff(&mut self, token: Token) {
        if let Some(State::Listener(listener)) = self.entry_mut(token).map(|e| &mut e.state) {
            listener.backoff = false;
            self.update_interest(token);
            self.schedule(token);
        }
    }

    /// ManualAccept: accepts one waiting connection (`None` when none is waiting).
    pub(crate) fn accept(&mut self, token: Token) -> Result<Option<(OwnedFd, Address)>, Error> {
        let entry = self.entry(token).ok_or(Error::StaleToken(token))?;
        if entry.kind() != Kind::Listener {
            return Err(Error::WrongKind {
                operation: "accept",
                kind: entry.kind(),
            });
        }
        match sys::fd::accept(self.fd_of(token)?) {
            Ok((fd, peer)) => Ok(Some((fd, Address::from_sockaddr(peer)))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if is_exhaustion(&e) => {
                // Level-triggered, the listener would report the same backlog every turn.
                let code = e.raw_os_error().unwrap_or(libc::EMFILE);
                self.back_off_accept(token, e);
                Err(Error::Io(io::Error::from_raw_os_error(code)))
            }
            Err(e) => Err(Error::Io(e)),
        }
    }
}

/// Running out of descriptors or kernel memory: retrying at once would spin.
fn is_exhaustion(e: &io::Error) -> bool {
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
