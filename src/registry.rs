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
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use bytes::Bytes;
use slab::Slab;
use socket2::{Domain, SockRef, Socket, Type};

use crate::entry::{Entry, Kind, Life};
use crate::framing::Framing;
use crate::output::MAX_IOVECS;
use crate::selector::{Selector, Trigger};
use crate::sys;
use crate::timer::{TimerPurpose, Timers};
use crate::{CloseReason, Error, Handler, Options, PanicPolicy, TimerId, Token};

/// Work the reactor does after the current callback returns.
pub(crate) enum Deferred {
    /// Deliver `on_error`.
    Error(Token, Error),
    /// Run `on_closing` and `on_close`, then drop the handle.
    Finalize(Token, CloseReason),
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

    // ----- opening handles -------------------------------------------------------------

    pub(crate) fn listen(
        &mut self,
        addr: impl ToSocketAddrs,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let addr = first_address(addr)?;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(libc::SOMAXCONN)?;
        let entry = Entry::new(Kind::Listener, Some(socket.into()), options, true);
        self.insert(entry, handler)
    }

    pub(crate) fn connect(
        &mut self,
        addr: impl ToSocketAddrs,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let addr = first_address(addr)?;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        if options.get_nodelay() {
            socket.set_tcp_nodelay(true)?;
        }
        let refused = match socket.connect(&addr.into()) {
            Ok(()) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
            Err(e) => Some(e),
        };
        let entry = Entry::new(Kind::Stream, Some(socket.into()), options, false);
        let token = self.insert(entry, handler)?;
        if let Some(e) = refused {
            // Reported like an asynchronous refusal: on_error, then on_close.
            self.fail(token, Error::Io(e));
        }
        Ok(token)
    }

    pub(crate) fn add(
        &mut self,
        fd: OwnedFd,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let kind = classify(fd.as_fd())?;
        if !(options.get_manual_read() && options.get_manual_write()) {
            sys::fd::set_nonblocking(fd.as_fd(), true)?;
        }
        self.insert(Entry::new(kind, Some(fd), options, true), handler)
    }

    pub(crate) fn add_accepted(
        &mut self,
        fd: OwnedFd,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        if options.get_nodelay() {
            // Fails harmlessly on non-TCP streams.
            let _ = SockRef::from(&fd).set_tcp_nodelay(true);
        }
        self.insert(Entry::new(Kind::Stream, Some(fd), options, true), handler)
    }

    pub(crate) fn add_handler(&mut self, handler: Box<dyn Handler>) -> Token {
        let entry = Entry::new(Kind::Virtual, None, Options::default(), true);
        self.insert(entry, handler)
            .expect("registering a handle without a descriptor cannot fail")
    }

    // ----- output ------------------------------------------------------------------------

    fn check_room(&mut self, token: Token, attempted: usize) -> Result<&mut Entry, Error> {
        let entry = self.live_mut(token)?;
        if entry.kind != Kind::Stream {
            return Err(Error::WrongKind {
                operation: "send",
                kind: entry.kind,
            });
        }
        let (limit, queued) = (entry.options.get_max_output(), entry.output.len());
        if queued.saturating_add(attempted) > limit {
            self.fail_with(
                token,
                Error::OutputLimit {
                    limit,
                    queued,
                    attempted,
                },
                CloseReason::OutputLimit,
            );
            return Err(Error::OutputLimit {
                limit,
                queued,
                attempted,
            });
        }
        Ok(self.entry_mut(token).expect("checked above"))
    }

    pub(crate) fn send(&mut self, token: Token, data: &[u8]) -> Result<(), Error> {
        let entry = self.check_room(token, data.len())?;
        entry.output.push_slice(data);
        self.mark_dirty(token);
        Ok(())
    }

    pub(crate) fn send_bytes(&mut self, token: Token, data: Bytes) -> Result<(), Error> {
        let entry = self.check_room(token, data.len())?;
        entry.output.push_bytes(data);
        self.mark_dirty(token);
        Ok(())
    }

    fn mark_dirty(&mut self, token: Token) {
        if let Some(entry) = self.entry_mut(token) {
            if !entry.in_dirty && !entry.output.is_empty() {
                entry.in_dirty = true;
                self.dirty.push(token);
            }
        }
    }

    pub(crate) fn buflen(&self, token: Token) -> usize {
        self.entry(token).map_or(0, |e| e.output.len())
    }

    /// Writes what is queued, in one vectored write.
    pub(crate) fn flush(&mut self, token: Token) -> Flushed {
        let Some(entry) = self.entry_mut(token) else {
            return Flushed::Idle;
        };
        entry.in_dirty = false;
        let writable = entry.ready.writable || entry.trigger == Trigger::Level;
        let connected = entry.connected && matches!(entry.life, Life::Open | Life::Closing { .. });
        if entry.output.is_empty() || !writable || !connected {
            return Flushed::Idle;
        }
        let Some(fd) = entry.fd.as_ref() else {
            return Flushed::Idle;
        };
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = entry.output.io_slices(&mut slices);
            loop {
                match sys::fd::send_vectored(fd.as_fd(), &slices[..n]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            }
        };
        let outcome = match result {
            Ok(n) => {
                let all = entry.output.len();
                entry.output.consume(n);
                if n == all {
                    Flushed::Drained
                } else {
                    entry.ready.writable = false;
                    Flushed::Partial
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.ready.writable = false;
                Flushed::Partial
            }
            Err(e) => Flushed::Failed(e),
        };
        if entry.trigger == Trigger::Level {
            self.update_interest(token);
        }
        outcome
    }

    // ----- closing -----------------------------------------------------------------------

    /// Graceful close: stop delivering input, flush the queue, shut our side down, wait for
    /// the peer's end of stream, then finalize with `reason`; all within the linger time.
    pub(crate) fn close_with(&mut self, token: Token, reason: CloseReason) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        if entry.kind != Kind::Stream
            || entry.fd.is_none()
            || (!entry.connected && entry.output.is_empty())
        {
            self.kill(token, reason);
            return;
        }
        entry.life = Life::Closing { reason };
        let drained = entry.output.is_empty();
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
        if entry.eof {
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
        let entry = self.live_mut(token)?;
        let Some(fd) = entry.fd.take() else {
            return Err(Error::WrongKind {
                operation: "remove",
                kind: entry.kind,
            });
        };
        if std::mem::take(&mut entry.registered) {
            if let Err(e) = self.selector.deregister(fd.as_fd()) {
                log::warn!("{token}: deregistering failed: {e}");
            }
        }
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
            && (entry.ready.readable || entry.ready.read_closed || !entry.input.is_empty());
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

    pub(crate) fn accept(
        &mut self,
        token: Token,
    ) -> Result<Option<(OwnedFd, Option<SocketAddr>)>, Error> {
        let entry = self.entry(token).ok_or(Error::StaleToken(token))?;
        if entry.kind != Kind::Listener {
            return Err(Error::WrongKind {
                operation: "accept",
                kind: entry.kind,
            });
        }
        match sys::fd::accept(self.fd_of(token)?) {
            Ok(accepted) => Ok(Some(accepted)),
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

fn first_address(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })
}

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not an IP socket")
}

/// Tells a listener from a stream; datagram sockets and other descriptors are not handled yet.
fn classify(fd: BorrowedFd<'_>) -> io::Result<Kind> {
    let socket_type = sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    if socket_type != libc::SOCK_STREAM {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "only stream sockets can be added so far",
        ));
    }
    let listening = sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
    Ok(if listening != 0 {
        Kind::Listener
    } else {
        Kind::Stream
    })
}
