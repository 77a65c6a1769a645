//! What a callback may do: [`Context`] acts on the handle whose callback is running and
//! reaches any other through [`Handle`].
//!
//! Both are thin views over the reactor's registry. Nothing done through them calls back
//! into a handler immediately: sends are queued and flushed at the end of the turn (one
//! vectored write per handle), and closes, kills and errors are delivered once the current
//! callback has returned.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use bytes::Bytes;

use crate::framing::Framing;
use crate::reactor::registry::Registry;
use crate::{
    Address, CloseReason, Credentials, Error, Handler, IntoEndpoint, Kind, Options, TimerId, Token,
    Transport,
};

/// Given to every callback: acts on this callback's handle, and on any other.
///
/// ```
/// use std::time::Duration;
/// use eventmux::{Context, Handler, TimerId};
///
/// /// Says hello, then hangs up after a second of silence.
/// struct Greeter;
///
/// impl Handler for Greeter {
///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
///         let _ = ctx.send(b"hello\n");
///         let _ = ctx.set_timer(Duration::from_secs(1));
///     }
///     fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId) {
///         ctx.close(); // flushes what is queued, then closes
///     }
/// }
/// ```
pub struct Context<'a> {
    registry: &'a mut Registry,
    token: Token,
}

impl<'a> Context<'a> {
    pub(crate) fn new(registry: &'a mut Registry, token: Token) -> Context<'a> {
        Context { registry, token }
    }

    /// This handle's token. In `on_close` it is already stale.
    pub fn token(&self) -> Token {
        self.token
    }

    /// This handle's descriptor (`None` for a virtual handle, after `remove`, and once the
    /// handle is gone). Also through [`AsFd`] and [`AsRawFd`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use eventmux::{Context, Handler};
    ///
    /// struct Tuned;
    /// impl Handler for Tuned {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if let Some(fd) = ctx.fd() {
    ///             println!("connected on descriptor {}", fd.as_raw_fd());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.registry
            .entry(self.token)?
            .fd
            .as_ref()
            .map(|fd| fd.as_fd())
    }

    /// This handle's kind (`None` once it is gone, as in `on_close`).
    pub fn kind(&self) -> Option<Kind> {
        self.kind_of(self.token)
    }

    /// Queues `data` for sending; never blocks. It is written at the end of this turn,
    /// together with everything else sent to this handle meanwhile.
    ///
    /// Fails if the handle is gone or closing, or if the queue would pass
    /// [`Options::max_output`]: then the handle also gets [`Error::OutputLimit`] in
    /// `on_error` and is killed.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.registry.send(self.token, data)
    }

    /// Like [`send`](Context::send), but queues `data` without copying it.
    pub fn send_bytes(&mut self, data: Bytes) -> Result<(), Error> {
        self.registry.send_bytes(self.token, data)
    }

    /// Datagram handles: queues one datagram for `to` (EventMux's `sendto`); `send` on a
    /// connected datagram handle sends to its peer. Never blocks; datagrams leave in order,
    /// batched in one `sendmmsg` per turn.
    pub fn send_to(&mut self, to: &Address, data: &[u8]) -> Result<(), Error> {
        self.registry.send_to(self.token, to, data)
    }

    /// This pump's counters (`None` if the handle is not a pump). In `on_closing` and
    /// `on_close` they are the final ones: the threads have stopped, and what was still
    /// queued is counted in [`PumpStats::dropped`](crate::PumpStats::dropped).
    ///
    /// ```
    /// use eventmux::{CloseReason, Context, Handler};
    ///
    /// struct Counted;
    /// impl Handler for Counted {
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, _: CloseReason) {
    ///         if let Some(stats) = ctx.pump_stats() {
    ///             eprintln!("{} received, {} dropped", stats.received, stats.dropped);
    ///         }
    ///     }
    /// }
    /// ```
    pub fn pump_stats(&self) -> Option<crate::PumpStats> {
        self.registry.pump_stats(self.token)
    }

    /// What is queued and not yet written (EventMux's `buflen`): bytes for a stream,
    /// datagrams for a datagram handle.
    pub fn buflen(&self) -> usize {
        self.registry.buflen(self.token)
    }

    /// Graceful close: stop reading, flush the queue, shut down our sending side, and wait
    /// for the peer to close its side (what it still sends is discarded), then close. Waiting
    /// for the peer matters: closing a socket with unread input resets the connection, and a
    /// reset destroys what the peer has not read yet. The whole close is bounded by
    /// [`Options::linger`]; `on_closing`/`on_close` follow. The handle's timers are cancelled
    /// at once. Closing twice is harmless.
    pub fn close(&mut self) {
        self.registry.close_with(self.token, CloseReason::Closed);
    }

    /// Immediate close: the queue is dropped. `on_closing` reports how much was lost.
    pub fn kill(&mut self) {
        self.registry.kill(self.token, CloseReason::Killed);
    }

    /// Forgets the handle without closing it and returns its descriptor, now yours.
    /// `on_close(`[`CloseReason::Removed`]`)` follows.
    pub fn remove(&mut self) -> Result<OwnedFd, Error> {
        self.registry.remove(self.token)
    }

    /// Stops reading until [`resume_reading`](Context::resume_reading): the kernel's buffer
    /// fills and TCP pushes back on the peer.
    pub fn pause_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, true)
    }

    /// Resumes reading after [`pause_reading`](Context::pause_reading).
    pub fn resume_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, false)
    }

    /// A one-shot timer: `on_timer` is called once, `after` from now.
    pub fn set_timer(&mut self, after: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, after, None)
    }

    /// A repeating timer: `on_timer` every `period` until cancelled or the handle closes.
    pub fn set_interval(&mut self, period: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, period, Some(period))
    }

    /// Cancels a timer of this handle; `false` if it already fired (one-shot) or is unknown.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.registry.cancel_timer(self.token, timer)
    }

    /// Changes this handle's framing (EventMux's `set()`); `None` turns it off. Bytes already
    /// buffered are cut by the new rule, including the rest of the read being delivered now,
    /// so a protocol can read a header by line and then a body by size:
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Handler};
    ///
    /// /// "LEN\n" then LEN bytes of body, repeated.
    /// struct Upload { body: bool }
    ///
    /// impl Handler for Upload {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, record: &[u8]) {
    ///         if self.body {
    ///             let _ = ctx.send(b"got it\n");
    ///             let _ = ctx.set_framing(Some(Framing::lines()));
    ///         } else if let Some(n) = std::str::from_utf8(record).ok().and_then(|s| s.parse().ok()) {
    ///             let _ = ctx.set_framing(Some(Framing::fixed(n)));
    ///         }
    ///         self.body = !self.body;
    ///     }
    /// }
    /// ```
    pub fn set_framing(&mut self, framing: Option<Framing>) -> Result<(), Error> {
        self.registry.set_framing(self.token, framing)
    }

    /// ManualAccept: accepts one waiting connection, returned non-blocking with its peer's
    /// address; `Ok(None)` when none is waiting. Register it with [`add`](Context::add) or
    /// drop it to refuse. On EMFILE/ENFILE the listener backs off before it reports again.
    pub fn accept(&mut self) -> Result<Option<(OwnedFd, Address)>, Error> {
        self.registry.accept(self.token)
    }

    /// ManualRead: reads once from the descriptor (`Ok(0)` is end of stream).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.registry.read(self.token, buf)
    }

    /// ManualWrite: writes once to the descriptor, bypassing the queue.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.registry.write(self.token, data)
    }

    /// ManualWrite: asks for one `on_writable` when the handle can be written to.
    pub fn watch_writable(&mut self) -> Result<(), Error> {
        self.registry.watch_writable(self.token)
    }

    /// The peer's address of this (IP) handle.
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.peer_addr(self.token)
    }

    /// The peer process of this Unix stream connection (`SO_PEERCRED`): pid, uid, gid.
    pub fn peer_credentials(&self) -> Result<Credentials, Error> {
        self.registry.peer_credentials(self.token)
    }

    /// What carries this handle's bytes (EventMux's `class()`).
    pub fn transport(&self) -> Option<Transport> {
        self.registry.entry(self.token).map(|e| e.transport)
    }

    /// The local address of this (IP) handle; for a listener, where it listens.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.local_addr(self.token)
    }

    /// Another handle, if it is still open (not closing, not gone).
    pub fn handle(&mut self, token: Token) -> Option<Handle<'_>> {
        Handle::new(self.registry, token)
    }

    /// Another handle's handler, if it is of type `T` (e.g. to reach room state). `None`
    /// for this callback's own handle: use `self`.
    pub fn handler_mut<T: Handler>(&mut self, token: Token) -> Option<&mut T> {
        self.registry.handler_mut(token)
    }

    /// Every open handle's token (EventMux's `handles()`).
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.registry.tokens()
    }

    /// The kind of any handle that still exists.
    pub fn kind_of(&self, token: Token) -> Option<Kind> {
        self.registry.entry(token).map(|e| e.kind())
    }

    /// Listens on a stream endpoint or binds a datagram one; see
    /// [`Reactor::listen`](crate::Reactor::listen). Accepted connections inherit `options`.
    pub fn listen(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .listen(endpoint.into_endpoint()?, options, handler)
    }

    /// Connects to an endpoint; see [`Reactor::connect`](crate::Reactor::connect).
    pub fn connect(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .connect(endpoint.into_endpoint()?, options, handler)
    }

    /// Adds an already-open socket; see [`Reactor::add`](crate::Reactor::add).
    pub fn add(
        &mut self,
        fd: impl Into<OwnedFd>,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry.add(fd.into(), options, handler)
    }

    /// Adds a handle without a descriptor; see [`Reactor::add_handler`](crate::Reactor::add_handler).
    pub fn add_handler(&mut self, handler: Box<dyn Handler>) -> Token {
        self.registry.add_handler(handler)
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after this turn.
    pub fn stop(&mut self) {
        self.registry.stopped = true;
    }
}

/// Another handle, reached through [`Context::handle`] or [`Reactor::handle`](crate::Reactor::handle).
///
/// ```
/// use eventmux::{Context, Handler, Token};
///
/// /// Forwards what it reads to another handle.
/// struct Forward { to: Token }
///
/// impl Handler for Forward {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         match ctx.handle(self.to) {
///             Some(mut peer) => { let _ = peer.send(data); }
///             None => ctx.close(), // the other side is gone
///         }
///     }
/// }
/// ```
pub struct Handle<'a> {
    registry: &'a mut Registry,
    token: Token,
}

impl<'a> Handle<'a> {
    pub(crate) fn new(registry: &'a mut Registry, token: Token) -> Option<Handle<'a>> {
        registry
            .is_live(token)
            .then_some(Handle { registry, token })
    }

    /// The handle's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The handle's descriptor (`None` for a virtual handle); see [`Context::fd`].
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.registry
            .entry(self.token)?
            .fd
            .as_ref()
            .map(|fd| fd.as_fd())
    }

    /// The handle's kind.
    pub fn kind(&self) -> Kind {
        self.registry
            .entry(self.token)
            .expect("a Handle names a live slot")
            .kind()
    }

    /// Queues `data`; see [`Context::send`].
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.registry.send(self.token, data)
    }

    /// Queues `data` without copying; see [`Context::send_bytes`].
    pub fn send_bytes(&mut self, data: Bytes) -> Result<(), Error> {
        self.registry.send_bytes(self.token, data)
    }

    /// Queues one datagram for `to`; see [`Context::send_to`].
    pub fn send_to(&mut self, to: &Address, data: &[u8]) -> Result<(), Error> {
        self.registry.send_to(self.token, to, data)
    }

    /// What is queued and not yet written (bytes, or datagrams for a datagram handle).
    pub fn buflen(&self) -> usize {
        self.registry.buflen(self.token)
    }

    /// What carries this handle's bytes.
    pub fn transport(&self) -> Transport {
        self.registry
            .entry(self.token)
            .expect("a Handle names a live slot")
            .transport
    }

    /// The peer process of this Unix stream connection.
    pub fn peer_credentials(&self) -> Result<Credentials, Error> {
        self.registry.peer_credentials(self.token)
    }

    /// Graceful close; see [`Context::close`].
    pub fn close(self) {
        self.registry.close_with(self.token, CloseReason::Closed);
    }

    /// Immediate close; see [`Context::kill`].
    pub fn kill(self) {
        self.registry.kill(self.token, CloseReason::Killed);
    }

    /// Forgets the handle and returns its descriptor; see [`Context::remove`].
    pub fn remove(self) -> Result<OwnedFd, Error> {
        self.registry.remove(self.token)
    }

    /// Changes this handle's framing; see [`Context::set_framing`].
    pub fn set_framing(&mut self, framing: Option<Framing>) -> Result<(), Error> {
        self.registry.set_framing(self.token, framing)
    }

    /// Stops reading from this handle.
    pub fn pause_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, true)
    }

    /// Resumes reading from this handle.
    pub fn resume_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, false)
    }

    /// A one-shot timer delivered to this handle's `on_timer`.
    pub fn set_timer(&mut self, after: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, after, None)
    }

    /// A repeating timer delivered to this handle's `on_timer`.
    pub fn set_interval(&mut self, period: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, period, Some(period))
    }

    /// Cancels one of this handle's timers.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.registry.cancel_timer(self.token, timer)
    }

    /// The peer's address of this (IP) handle.
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.peer_addr(self.token)
    }

    /// The local address of this (IP) handle.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.local_addr(self.token)
    }
}

/// The handle's descriptor, for system calls eventmux does not make (socket options,
/// `ioctl`s). Panics for a handle without one (a virtual handle, or one whose descriptor
/// [`remove`](Context::remove) handed back); [`Context::fd`] asks without panicking.
impl AsFd for Context<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd().expect("this handle has no descriptor")
    }
}

/// The handle's descriptor number, `-1` for a handle without one.
impl AsRawFd for Context<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().map_or(-1, |fd| fd.as_raw_fd())
    }
}

/// Panics for a handle without a descriptor; see [`Handle::fd`].
impl AsFd for Handle<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd().expect("this handle has no descriptor")
    }
}

/// The handle's descriptor number, `-1` for a handle without one.
impl AsRawFd for Handle<'_> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd().map_or(-1, |fd| fd.as_raw_fd())
    }
}
