//! The registry: every handle's slot, and every operation a callback may perform on any
//! handle (send, close, kill, remove, timers, opening new handles).
//!
//! Operations never call back into handlers. Whatever must be reported (an error, a close)
//! is queued as a [`Deferred`] and delivered by the reactor once the running callback has
//! returned, which is what makes it safe for a handler to close, kill, remove or add any
//! handle, itself included, from inside any callback.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use slab::Slab;
use socket2::SockRef;

use crate::entry::{Entry, Kind, Life};
use crate::framing::Framing;
use crate::handoff::RemoteInbox;
use crate::output::MAX_IOVECS;
use crate::selector::{Selector, Trigger};
use crate::sys;
use crate::sys::fd::SendFailure;
use crate::timer::{TimerPurpose, Timers};
use crate::waker::Waker;
use crate::{
    Address, CloseReason, Credentials, Error, Handler, PanicPolicy, TimerId, Token, Transport,
};

/// Work the reactor does after the current callback returns.
pub(crate) enum Deferred {
    /// Deliver `on_error`.
    Error(Token, Error),
    /// Run `on_closing` and `on_close`, then drop the handle.
    Finalize(Token, CloseReason),
    /// Start a graceful close (after an error the handler could still answer).
    Close(Token, CloseReason),
}

/// How a flush went.
pub(crate) enum Flushed {
    /// Nothing was queued, or the socket is not writable yet.
    Idle,
    /// Some bytes are still queued: wait for writability.
    Partial,
    /// The queue became empty.
    Drained,
    Failed(io::Error),
}

pub(crate) struct Registry {
    pub(crate) entries: Slab<Entry>,
    pub(crate) selector: Box<dyn Selector>,
    pub(crate) timers: Timers,
    pub(crate) deferred: VecDeque<Deferred>,
    /// Handles with readiness to act on, in arrival order.
    pub(crate) ready: VecDeque<Token>,
    /// Handles whose output grew since the last flush.
    pub(crate) dirty: Vec<Token>,
    pub(crate) stopped: bool,
    pub(crate) panic_policy: PanicPolicy,
    /// A caught panic waiting to be resumed ([`PanicPolicy::Propagate`]).
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// Wakes the reactor from other threads; created with the first pump or remote.
    pub(crate) waker: Option<Arc<Waker>>,
    pub(crate) remote: Option<RemoteInbox>,
    /// Pump handles, whose channels are drained when the waker fires.
    pub(crate) pumps: Vec<Token>,
    /// Other threads' work was left for the next turn (the per-turn bound was reached).
    pub(crate) handoffs_left: bool,
    /// The final counters of the pump being finalized, for its `on_closing`/`on_close`.
    pub(crate) closed_pump: Option<(Token, crate::PumpStats)>,
    next_generation: u32,
}

impl Registry {
    pub(crate) fn new(selector: Box<dyn Selector>) -> Registry {
        Registry {
            entries: Slab::new(),
            selector,
            timers: Timers::default(),
            deferred: VecDeque::new(),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            stopped: false,
            panic_policy: PanicPolicy::default(),
            panic: None,
            waker: None,
            remote: None,
            pumps: Vec::new(),
            handoffs_left: false,
            closed_pump: None,
            next_generation: 0,
        }
    }

    pub(crate) fn entry(&self, token: Token) -> Option<&Entry> {
        self.entries
            .get(token.index())
            .filter(|e| e.generation == token.generation())
    }

    pub(crate) fn entry_mut(&mut self, token: Token) -> Option<&mut Entry> {
        self.entries
            .get_mut(token.index())
            .filter(|e| e.generation == token.generation())
    }

    /// The entry, if it still takes operations.
    fn live_mut(&mut self, token: Token) -> Result<&mut Entry, Error> {
        match self.entry_mut(token) {
            None => Err(Error::StaleToken(token)),
            Some(e) if !e.is_live() => Err(Error::Closing(token)),
            Some(e) => Ok(e),
        }
    }

    pub(crate) fn is_live(&self, token: Token) -> bool {
        self.entry(token).is_some_and(Entry::is_live)
    }

    pub(crate) fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| e.is_live())
            .map(|(i, e)| Token::new(i, e.generation))
    }

    /// Puts a new handle in a slot and registers its descriptor.
    pub(crate) fn insert(
        &mut self,
        mut entry: Entry,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.generation = self.next_generation;
        entry.handler = Some(handler);
        if !self.selector.supports_edge() {
            entry.trigger = Trigger::Level;
        }
        // Without RDHUP a FIN that came with the last bytes would raise no further edge, so
        // on such a backend a short read proves nothing (see `Selector::reports_read_closed`).
        if !self.selector.reports_read_closed() {
            entry.short_read_drains = false;
        }
        entry.interest = entry.desired_interest();
        if entry.options.get_framing().is_some()
            && !matches!(entry.kind, Kind::Stream | Kind::Listener)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "framing applies to stream handles, not to a {:?} handle",
                    entry.kind
                ),
            ));
        }
        let slot = self.entries.vacant_entry();
        let token = Token::new(slot.key(), entry.generation);
        if let Some(fd) = &entry.fd {
            self.selector
                .register(fd.as_fd(), token.to_key(), entry.interest, entry.trigger)?;
            entry.registered = true;
        }
        slot.insert(entry);
        log::trace!("{token}: added");
        Ok(token)
    }

    /// Removes a slot (finalization), deregistering and returning what it held.
    pub(crate) fn take(&mut self, token: Token) -> Option<Entry> {
        self.entry(token)?;
        let mut entry = self.entries.remove(token.index());
        deregister(&*self.selector, &mut entry);
        for id in entry.timers.drain(..) {
            self.timers.cancel(id);
        }
        Some(entry)
    }

    /// Brings a level-triggered registration in line with what the entry wants now.
    pub(crate) fn update_interest(&mut self, token: Token) {
        let Registry {
            entries, selector, ..
        } = self;
        let Some(entry) = entries
            .get_mut(token.index())
            .filter(|e| e.generation == token.generation())
        else {
            return;
        };
        let wanted = entry.desired_interest();
        if entry.trigger == Trigger::Edge || !entry.registered || wanted == entry.interest {
            return;
        }
        entry.interest = wanted;
        if let Some(fd) = &entry.fd {
            if let Err(e) = selector.reregister(fd.as_fd(), token.to_key(), wanted, entry.trigger) {
                log::warn!("{token}: changing interest failed: {e}");
            }
        }
    }

    /// Marks a handle as having readiness to act on.
    pub(crate) fn schedule(&mut self, token: Token) {
        if let Some(entry) = self.entry_mut(token) {
            if !entry.in_ready {
                entry.in_ready = true;
                self.ready.push_back(token);
            }
        }
    }

    // ----- output ------------------------------------------------------------------------

    fn check_room(&mut self, token: Token, attempted: usize) -> Result<&mut Entry, Error> {
        let entry = self.live_mut(token)?;
        if !entry.kind.can_send() || !entry.writable_end {
            return Err(Error::WrongKind {
                operation: "send (a listener, virtual or read-only handle)",
                kind: entry.kind,
            });
        }
        let limit = entry.options.get_max_output();
        let queued = entry.output.len() + entry.datagrams.bytes();
        if queued.saturating_add(attempted) > limit {
            let error = || Error::OutputLimit {
                limit,
                queued,
                attempted,
            };
            self.fail_with(token, error(), CloseReason::OutputLimit);
            return Err(error());
        }
        Ok(self.entry_mut(token).expect("checked above"))
    }

    pub(crate) fn send(&mut self, token: Token, data: &[u8]) -> Result<(), Error> {
        let entry = self.check_room(token, data.len())?;
        match entry.kind {
            Kind::Datagram => entry.datagrams.push(data, None),
            _ => entry.output.push_slice(data),
        }
        self.mark_dirty(token);
        Ok(())
    }

    pub(crate) fn send_bytes(&mut self, token: Token, data: Bytes) -> Result<(), Error> {
        let entry = self.check_room(token, data.len())?;
        match entry.kind {
            Kind::Datagram => entry.datagrams.push(&data, None),
            _ => entry.output.push_bytes(data),
        }
        self.mark_dirty(token);
        Ok(())
    }

    /// Queues one datagram for `to` (EventMux's `sendto`).
    pub(crate) fn send_to(&mut self, token: Token, to: &Address, data: &[u8]) -> Result<(), Error> {
        let entry = self.check_room(token, data.len())?;
        if entry.kind != Kind::Datagram {
            return Err(Error::WrongKind {
                operation: "send_to",
                kind: entry.kind,
            });
        }
        entry.datagrams.push(data, Some(to.clone()));
        self.mark_dirty(token);
        Ok(())
    }

    fn mark_dirty(&mut self, token: Token) {
        if let Some(entry) = self.entry_mut(token) {
            if !entry.in_dirty && entry.has_output() {
                entry.in_dirty = true;
                self.dirty.push(token);
            }
        }
    }

    pub(crate) fn buflen(&self, token: Token) -> usize {
        self.entry(token).map_or(0, Entry::buflen)
    }

    /// Writes what is queued: a stream's bytes in one vectored write, a datagram handle's
    /// datagrams in `sendmmsg` batches.
    pub(crate) fn flush(&mut self, token: Token) -> Flushed {
        let Some(entry) = self.entry_mut(token) else {
            return Flushed::Idle;
        };
        entry.in_dirty = false;
        let writable = entry.ready.writable || entry.trigger == Trigger::Level;
        let connected = entry.connected && matches!(entry.life, Life::Open | Life::Closing { .. });
        if !entry.has_output() || !writable || !connected || entry.fd.is_none() {
            return Flushed::Idle;
        }
        let outcome = match entry.kind {
            Kind::Datagram => self.flush_datagrams(token),
            _ => flush_stream(entry),
        };
        self.update_interest(token);
        outcome
    }

    /// Sends queued datagrams. Errors belong to single datagrams and do not close the handle:
    /// each is reported to `on_error` and that datagram dropped. `ECONNREFUSED` on a
    /// connected socket reports an earlier datagram's ICMP error, so the current one is
    /// retried. On UDP sockets runs to one destination are sent segmented; if the kernel or
    /// the route refuses a segmented message, segmentation is turned off for the handle and
    /// the same datagrams are sent again one per message, so nothing is lost to it.
    fn flush_datagrams(&mut self, token: Token) -> Flushed {
        let mut refusals = 0;
        loop {
            let Some(entry) = self.entry_mut(token) else {
                return Flushed::Idle;
            };
            let fd = entry.fd.as_ref().expect("checked by flush");
            let segment = entry.transport == Transport::Udp && entry.datagrams.may_segment();
            match sys::fd::send_datagrams(fd.as_fd(), entry.datagrams.iter(), segment) {
                Ok(n) => {
                    entry.datagrams.pop(n);
                    if entry.datagrams.is_empty() {
                        return Flushed::Drained;
                    }
                }
                Err(failure) if failure.error.kind() == io::ErrorKind::WouldBlock => {
                    entry.ready.writable = false;
                    return Flushed::Partial;
                }
                Err(failure) if failure.error.kind() == io::ErrorKind::Interrupted => {}
                Err(failure)
                    if failure.segmented
                        && matches!(
                            failure.error.raw_os_error(),
                            Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT)
                        ) =>
                {
                    log::debug!(
                        "{token}: segmented datagram send refused ({}); sending one per message",
                        failure.error
                    );
                    entry.datagrams.refuse_segmentation();
                }
                Err(SendFailure { error: e, .. }) => {
                    if e.raw_os_error() == Some(libc::ECONNREFUSED) && refusals == 0 {
                        refusals += 1;
                    } else {
                        entry.datagrams.pop(1);
                    }
                    log::debug!("{token}: datagram send: {e}");
                    self.deferred
                        .push_back(Deferred::Error(token, Error::Io(e)));
                    if self.entry(token).is_some_and(|e| e.datagrams.is_empty()) {
                        return Flushed::Drained;
                    }
                }
            }
        }
    }

    // ----- closing -----------------------------------------------------------------------

    /// Graceful close: stop delivering input, flush the queue, shut our side down, wait for
    /// the peer's end of stream, then finalize with `reason`; all within the linger time.
    pub(crate) fn close_with(&mut self, token: Token, reason: CloseReason) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        if !entry.kind.can_send() || entry.fd.is_none() || (!entry.connected && !entry.has_output())
        {
            self.kill(token, reason);
            return;
        }
        entry.life = Life::Closing { reason };
        let drained = !entry.has_output();
        let linger = entry.options.get_linger();
        // The handler is done with this handle: its timers go now, not at finalization.
        let mut owned = std::mem::take(&mut entry.timers);
        owned.retain(|&id| {
            let user = self
                .timers
                .get(id)
                .is_some_and(|t| t.purpose == TimerPurpose::User);
            if user {
                self.timers.cancel(id);
            }
            !user
        });
        owned.push(
            self.timers
                .insert(token, TimerPurpose::Linger, linger, None),
        );
        self.entry_mut(token).expect("checked above").timers = owned;
        self.update_interest(token);
        if drained {
            self.closing_drained(token);
        }
    }

    /// A closing handle's queue is empty: half-close and linger for the peer's end of stream
    /// (unless it already came), so unread input does not turn our close into a reset that
    /// destroys what the peer has not read yet.
    pub(crate) fn closing_drained(&mut self, token: Token) {
        let Some(entry) = self.entry_mut(token) else {
            return;
        };
        let Life::Closing { reason } = entry.life else {
            return;
        };
        // Only a stream has an end of stream to wait for.
        if entry.eof || entry.kind != Kind::Stream || !entry.transport.is_socket() {
            self.kill(token, reason);
            return;
        }
        let shut = entry
            .fd
            .as_ref()
            .map(|fd| SockRef::from(fd).shutdown(std::net::Shutdown::Write));
        match shut {
            Some(Ok(())) => {
                entry.life = Life::Lingering { reason };
                self.update_interest(token);
                // Input may already be waiting; edge triggering will not report it again.
                self.schedule(token);
            }
            _ => self.kill(token, reason),
        }
    }

    /// Immediate close: the descriptor stops producing events now and finalization is
    /// queued; the queue is dropped then (and reported missing).
    pub(crate) fn kill(&mut self, token: Token, reason: CloseReason) {
        let Registry {
            entries, selector, ..
        } = self;
        let Some(entry) = entries
            .get_mut(token.index())
            .filter(|e| e.generation == token.generation())
        else {
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        entry.life = Life::Dying;
        deregister(&**selector, entry);
        self.deferred.push_back(Deferred::Finalize(token, reason));
    }

    /// Forgets the handle without closing its descriptor, which is returned.
    pub(crate) fn remove(&mut self, token: Token) -> Result<OwnedFd, Error> {
        let kind = self.live_mut(token)?.kind;
        let Registry {
            entries, selector, ..
        } = self;
        let entry = &mut entries[token.index()]; // live, checked above
        if entry.fd.is_none() {
            return Err(Error::WrongKind {
                operation: "remove",
                kind,
            });
        }
        deregister(&**selector, entry);
        let fd = entry.fd.take().expect("checked above");
        self.kill(token, CloseReason::Removed);
        Ok(fd)
    }

    /// Reports `error` to the handle, then kills it with `reason`.
    pub(crate) fn fail_with(&mut self, token: Token, error: Error, reason: CloseReason) {
        if self.entry(token).is_some_and(|e| e.life != Life::Dying) {
            log::debug!("{token}: {error}");
            self.deferred.push_back(Deferred::Error(token, error));
            self.kill(token, reason);
        }
    }

    pub(crate) fn fail(&mut self, token: Token, error: Error) {
        self.fail_with(token, error, CloseReason::Error);
    }

    // ----- reading control ---------------------------------------------------------------

    pub(crate) fn set_paused(&mut self, token: Token, paused: bool) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        let was = std::mem::replace(&mut entry.paused, paused);
        let resume = was
            && !paused
            && (entry.ready.readable
                || entry.ready.read_closed
                || !entry.input.is_empty()
                || !entry.held.is_empty());
        self.update_interest(token);
        if resume {
            // Edge triggering will not report readiness it already reported.
            self.schedule(token);
        }
        Ok(())
    }

    /// Replaces a handle's framing (`None`: none). Bytes already buffered are cut by the new
    /// rule; on a listener it changes the template for connections accepted from now on.
    pub(crate) fn set_framing(
        &mut self,
        token: Token,
        framing: Option<Framing>,
    ) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        match entry.kind {
            Kind::Stream => {
                entry.decoder = framing.map(|f| f.decoder);
                if !entry.input.is_empty() {
                    self.schedule(token);
                }
            }
            Kind::Listener => {
                let mut options = entry.options.clone();
                options = match framing {
                    Some(f) => options.framing(f),
                    None => options.without_framing(),
                };
                entry.options = options;
            }
            kind => {
                return Err(Error::WrongKind {
                    operation: "set_framing",
                    kind,
                })
            }
        }
        Ok(())
    }

    pub(crate) fn watch_writable(&mut self, token: Token) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        if !entry.options.get_manual_write() {
            return Err(Error::WrongKind {
                operation: "watch_writable (needs ManualWrite)",
                kind: entry.kind,
            });
        }
        entry.watch_writable = true;
        self.update_interest(token);
        Ok(())
    }

    // ----- manual I/O --------------------------------------------------------------------

    fn fd_of(&self, token: Token) -> Result<BorrowedFd<'_>, Error> {
        let entry = self.entry(token).ok_or(Error::StaleToken(token))?;
        if !entry.is_live() {
            return Err(Error::Closing(token));
        }
        entry
            .fd
            .as_ref()
            .map(|fd| fd.as_fd())
            .ok_or(Error::WrongKind {
                operation: "descriptor access",
                kind: entry.kind,
            })
    }

    pub(crate) fn accept(&mut self, token: Token) -> Result<Option<(OwnedFd, Address)>, Error> {
        let entry = self.entry(token).ok_or(Error::StaleToken(token))?;
        if entry.kind != Kind::Listener {
            return Err(Error::WrongKind {
                operation: "accept",
                kind: entry.kind,
            });
        }
        match sys::fd::accept(self.fd_of(token)?) {
            Ok((fd, peer)) => Ok(Some((fd, Address::from_sockaddr(peer)))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if crate::listener::is_exhaustion(&e) => {
                // Level-triggered, the listener would report the same backlog every turn.
                let code = e.raw_os_error().unwrap_or(libc::EMFILE);
                self.back_off_accept(token, e);
                Err(Error::Io(io::Error::from_raw_os_error(code)))
            }
            Err(e) => Err(Error::Io(e)),
        }
    }

    pub(crate) fn read(&mut self, token: Token, buf: &mut [u8]) -> Result<usize, Error> {
        Ok(sys::fd::read(self.fd_of(token)?, buf)?)
    }

    pub(crate) fn write(&mut self, token: Token, data: &[u8]) -> Result<usize, Error> {
        Ok(sys::fd::send_vectored(
            self.fd_of(token)?,
            &[IoSlice::new(data)],
        )?)
    }

    pub(crate) fn local_addr(&self, token: Token) -> Result<SocketAddr, Error> {
        let addr = SockRef::from(&self.fd_of(token)?).local_addr()?;
        addr.as_socket().ok_or_else(|| not_inet().into())
    }

    pub(crate) fn peer_credentials(&self, token: Token) -> Result<Credentials, Error> {
        Ok(Credentials::of(self.fd_of(token)?)?)
    }

    pub(crate) fn peer_addr(&self, token: Token) -> Result<SocketAddr, Error> {
        let addr = SockRef::from(&self.fd_of(token)?).peer_addr()?;
        addr.as_socket().ok_or_else(|| not_inet().into())
    }

    // ----- timers ------------------------------------------------------------------------

    pub(crate) fn set_timer(
        &mut self,
        token: Token,
        after: Duration,
        period: Option<Duration>,
    ) -> Result<TimerId, Error> {
        self.live_mut(token)?;
        let id = self.timers.insert(token, TimerPurpose::User, after, period);
        self.entry_mut(token)
            .expect("checked above")
            .timers
            .push(id);
        Ok(id)
    }

    pub(crate) fn cancel_timer(&mut self, token: Token, id: TimerId) -> bool {
        if self
            .timers
            .get(id)
            .is_none_or(|t| t.token != token || t.purpose != TimerPurpose::User)
        {
            return false;
        }
        self.timers.cancel(id);
        if let Some(entry) = self.entry_mut(token) {
            entry.timers.retain(|&t| t != id);
        }
        true
    }

    // ----- handlers ----------------------------------------------------------------------

    pub(crate) fn handler_mut<T: Handler>(&mut self, token: Token) -> Option<&mut T> {
        let handler: &mut dyn Any = self.entry_mut(token)?.handler.as_deref_mut()?;
        handler.downcast_mut::<T>()
    }
}

/// Stops the selector reporting on `entry`'s descriptor (once).
fn deregister(selector: &dyn Selector, entry: &mut Entry) {
    if let (true, Some(fd)) = (std::mem::take(&mut entry.registered), &entry.fd) {
        if let Err(e) = selector.deregister(fd.as_fd()) {
            log::warn!("deregistering a descriptor failed: {e}");
        }
    }
}

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not an IP socket")
}

/// Writes a stream's queue: one vectored write (`sendmsg(MSG_NOSIGNAL)` on sockets, `writev`
/// on pipes) per [`MAX_IOVECS`] buffers. A write that takes everything it was offered proves
/// nothing about the socket's room, so while more is queued the next write follows at once;
/// only a short write (or `EAGAIN`) clears writability, and an EPOLLOUT edge then resumes.
fn flush_stream(entry: &mut Entry) -> Flushed {
    let fd = entry.fd.as_ref().expect("checked by flush");
    loop {
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = entry.output.io_slices(&mut slices);
            let offered: usize = slices[..n].iter().map(|s| s.len()).sum();
            let written = loop {
                let written = if entry.transport.is_socket() {
                    sys::fd::send_vectored(fd.as_fd(), &slices[..n])
                } else {
                    sys::fd::write_vectored(fd.as_fd(), &slices[..n])
                };
                match written {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            written.map(|written| (written, offered))
        };
        match result {
            Ok((written, offered)) => {
                entry.output.consume(written);
                if entry.output.is_empty() {
                    return Flushed::Drained;
                }
                if written < offered {
                    entry.ready.writable = false;
                    return Flushed::Partial;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.ready.writable = false;
                return Flushed::Partial;
            }
            Err(e) => return Flushed::Failed(e),
        }
    }
}
