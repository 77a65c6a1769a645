//! What a callback may do: [`Context`] acts on one handle (the one whose callback runs) and
//! reaches any other through [`Context::handle`], which gives the same type for that
//! handle ([`Handle`] is its other name). One set of operations serves both.
//!
//! A context is a thin view over the reactor's registry. Nothing done through it calls
//! back into a handler immediately: sends are queued and flushed at the end of the turn
//! (one vectored write per handle), and closes, kills and errors are delivered once the
//! current callback has returned.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use bytes::Bytes;

use crate::framing::Framing;
use crate::handle::State;
use crate::reactor::registry::{slot_mut, Registry};
use crate::{
    Address, ChildHandles, ChildStdio, CloseReason, Credentials, Error, Handler, IntoEndpoint,
    IntoHandler, Kind, Options, TimerId, Token, Transport,
};

/// Given to every callback: acts on this callback's handle, and reaches any other with
/// [`handle`](Context::handle).
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

/// Which child, and which of its handles, a callback is for: set in the registry while a
/// spawned child's shared handler runs (see `handle/process.rs`), for the handle named.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ChildLink {
    pub(crate) process: Token,
    /// `None`: the process handle itself.
    pub(crate) stdio: Option<ChildStdio>,
}

/// Another handle, reached through [`Context::handle`] or
/// [`Reactor::handle`](crate::Reactor::handle): a [`Context`] for that handle, with the same
/// operations.
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
pub type Handle<'a> = Context<'a>;

impl<'a> Context<'a> {
    pub(crate) fn new(registry: &'a mut Registry, token: Token) -> Context<'a> {
        Context { registry, token }
    }

    /// A context for `token`, if its handle is open (not closing, not gone).
    pub(crate) fn of_live(registry: &'a mut Registry, token: Token) -> Option<Context<'a>> {
        registry
            .is_live(token)
            .then_some(Context { registry, token })
    }

    /// The child link of this callback, if it runs for one of a spawned child's handles.
    fn child_link(&self) -> Option<ChildLink> {
        self.registry
            .child_link
            .filter(|(token, _)| *token == self.token)
            .map(|(_, link)| link)
    }

    pub(crate) fn registry_mut(&mut self) -> &mut Registry {
        self.registry
    }

    /// This handle's token. In `on_close` it is already stale.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Named;
    /// impl Handler for Named {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         println!("{} connected", ctx.token());
    ///     }
    /// }
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }

    /// This handle's kind (`None` once it is gone, as in `on_close`).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Kind};
    ///
    /// struct Either;
    /// impl Handler for Either {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         if ctx.kind() == Some(Kind::Datagram) {
    ///             println!("one datagram of {} bytes", data.len());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn kind(&self) -> Option<Kind> {
        self.registry.entry(self.token).map(|e| e.kind())
    }

    /// What carries this handle's bytes (EventMux's `class()`); `None` once it is gone.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Transport};
    ///
    /// struct Local;
    /// impl Handler for Local {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if ctx.transport() == Some(Transport::Unix) {
    ///             let _ = ctx.peer_credentials().map(|c| println!("uid {}", c.uid()));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn transport(&self) -> Option<Transport> {
        self.registry.entry(self.token).map(|e| e.transport)
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

    /// Queues `data` for sending; never blocks. It is written at the end of this turn,
    /// together with everything else sent to this handle meanwhile. On a datagram handle
    /// `data` is one datagram, for the connected peer.
    ///
    /// Fails if the handle is gone or closing, or if the queue would pass
    /// [`Options::max_output`]: then the handle also gets [`Error::OutputLimit`] in
    /// `on_error` and is killed.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         if let Err(e) = ctx.send(data) {
    ///             eprintln!("not queued: {e}");
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.registry.send(self.token, data)
    }

    /// Queues `data` with duplicates of `fds` on a Unix stream socket (`SCM_RIGHTS`): the
    /// peer receives the descriptors with the first byte of `data`, after everything queued
    /// before it (with [`Options::receive_fds`] an eventmux peer gets them in
    /// [`Handler::on_fds`](crate::Handler::on_fds)). `data` must not be empty. The
    /// duplicates are closed here once sent (or when the handle closes first); the caller's
    /// descriptors stay the caller's.
    ///
    /// Passing the descriptor of one of this reactor's handles (a listener, for a
    /// hand-over) is noticed, and that handle deregisters explicitly when it closes, since
    /// the other process now shares its open file. Passing a duplicate of a handle's
    /// descriptor made elsewhere is not: add such a descriptor with `add`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::TcpListener;
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, theirs) = UnixStream::pair()?;
    /// let control = reactor.add(ours, Options::new(), Quiet)?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// reactor.handle(control).unwrap().send_fds(b"take this\n", &[listener.as_fd()])?;
    /// # drop(theirs);
    /// # Ok(()) }
    /// ```
    pub fn send_fds(&mut self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        self.registry.send_fds(self.token, data, fds)
    }

    /// Like [`send`](Context::send), but queues `data` without copying it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use eventmux::{Context, Handler};
    ///
    /// /// Sends the same large page to every client, sharing one allocation.
    /// struct Page { body: Bytes }
    /// impl Handler for Page {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send_bytes(self.body.clone());
    ///     }
    /// }
    /// ```
    pub fn send_bytes(&mut self, data: Bytes) -> Result<(), Error> {
        self.registry.send_bytes(self.token, data)
    }

    /// Datagram handles: queues one datagram for `to` (EventMux's `sendto`). Never blocks;
    /// datagrams leave in order, batched in one `sendmmsg` per turn.
    ///
    /// ```
    /// use eventmux::{Address, Context, Handler};
    ///
    /// /// Answers every datagram to its sender.
    /// struct Reply;
    /// impl Handler for Reply {
    ///     fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
    ///         let _ = ctx.send_to(from, data);
    ///     }
    /// }
    /// ```
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
    ///             eprintln!("{} received, {} dropped", stats.received(), stats.dropped());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn pump_stats(&self) -> Option<crate::PumpStats> {
        self.registry.pump_stats(self.token)
    }

    /// Listeners: how many of the connections it accepted are still open (`None` for
    /// other handles).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Incoming};
    ///
    /// struct Conn;
    /// impl Handler for Conn {}
    ///
    /// struct Server;
    /// impl Handler for Server {
    ///     fn on_accept(&mut self, ctx: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
    ///         println!("{:?} open before this one", ctx.open_connections());
    ///         Some(Box::new(Conn))
    ///     }
    /// }
    /// ```
    pub fn open_connections(&self) -> Option<usize> {
        match &self.registry.entry(self.token)?.state {
            State::Listener(listener) => Some(listener.seats.count()),
            _ => None,
        }
    }

    /// Listeners: how many connections were refused past
    /// [`Options::max_connections`] (`None` for other handles).
    ///
    /// ```
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// struct Server;
    /// impl Handler for Server {
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         println!("{:?} refused so far", ctx.refused_connections());
    ///     }
    /// }
    /// ```
    pub fn refused_connections(&self) -> Option<u64> {
        match &self.registry.entry(self.token)?.state {
            State::Listener(listener) => Some(listener.refused),
            _ => None,
        }
    }

    /// What is queued and not yet written (EventMux's `buflen`): bytes for a stream,
    /// datagrams for a datagram handle.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// /// Stops reading while a slow peer has more than 1 MiB to take.
    /// struct Careful;
    /// impl Handler for Careful {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         let _ = ctx.send(data);
    ///         if ctx.buflen() > 1 << 20 {
    ///             let _ = ctx.pause_reading();
    ///         }
    ///     }
    ///     fn on_sent(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.resume_reading();
    ///     }
    /// }
    /// ```
    pub fn buflen(&self) -> usize {
        self.registry.buflen(self.token)
    }

    /// Graceful close: stop reading, flush the queue, shut down our sending side, and wait
    /// for the peer to close its side (what it still sends is discarded), then close. Waiting
    /// for the peer matters: closing a socket with unread input resets the connection, and a
    /// reset destroys what the peer has not read yet. The whole close is bounded by
    /// [`Options::linger`]; `on_sent` (for the drain), `on_closing` and `on_close` follow.
    /// The handle's timers are cancelled at once. Closing twice is harmless.
    ///
    /// Closed inside `on_read`, a framed stream delivers no further record, not even the
    /// rest of the same read: those bytes, unframed, go to `on_read_last` as the handle
    /// closes (with whatever incomplete record was buffered).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Once;
    /// impl Handler for Once {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, _request: &[u8]) {
    ///         let _ = ctx.send(b"the answer\n");
    ///         ctx.close(); // the answer is still written first
    ///     }
    /// }
    /// ```
    pub fn close(&mut self) {
        self.registry.close_with(self.token, CloseReason::Closed);
    }

    /// Immediate close: the queue is dropped. `on_closing` reports how much was lost.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Strict;
    /// impl Handler for Strict {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         if data.contains(&0) {
    ///             ctx.kill(); // no goodbye for a peer that sends NUL bytes
    ///         }
    ///     }
    /// }
    /// ```
    pub fn kill(&mut self) {
        self.registry.kill(self.token, CloseReason::Killed);
    }

    /// Forgets the handle without closing it and returns its descriptor, now yours.
    /// `on_close(`[`CloseReason::Removed`]`)` follows.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// /// Hands the connection to blocking code on another thread after its first line.
    /// struct HandOff;
    /// impl Handler for HandOff {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, _line: &[u8]) {
    ///         if let Ok(fd) = ctx.remove() {
    ///             let stream = std::net::TcpStream::from(fd);
    ///             std::thread::spawn(move || drop(stream));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn remove(&mut self) -> Result<OwnedFd, Error> {
        self.registry.remove(self.token)
    }

    /// Stops reading until [`resume_reading`](Context::resume_reading): the kernel's buffer
    /// fills and TCP pushes back on the peer.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct OneAtATime;
    /// impl Handler for OneAtATime {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, _request: &[u8]) {
    ///         let _ = ctx.pause_reading(); // until the answer is out
    ///         let _ = ctx.send(b"done\n");
    ///     }
    ///     fn on_sent(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.resume_reading();
    ///     }
    /// }
    /// ```
    pub fn pause_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, true)
    }

    /// Resumes reading after [`pause_reading`](Context::pause_reading); input that waited
    /// is delivered first.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Resume;
    /// impl Handler for Resume {
    ///     fn on_sent(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.resume_reading(); // harmless if reading was not paused
    ///     }
    /// }
    /// ```
    pub fn resume_reading(&mut self) -> Result<(), Error> {
        self.registry.set_paused(self.token, false)
    }

    /// A one-shot timer: `on_timer` is called once, `after` from now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// struct Impatient;
    /// impl Handler for Impatient {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.set_timer(Duration::from_secs(5));
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         ctx.close();
    ///     }
    /// }
    /// ```
    pub fn set_timer(&mut self, after: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, after, None)
    }

    /// A repeating timer: `on_timer` every `period` until cancelled or the handle closes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// struct Heartbeat;
    /// impl Handler for Heartbeat {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.set_interval(Duration::from_secs(30));
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         let _ = ctx.send(b"PING\r\n");
    ///     }
    /// }
    /// ```
    pub fn set_interval(&mut self, period: Duration) -> Result<TimerId, Error> {
        self.registry.set_timer(self.token, period, Some(period))
    }

    /// Cancels a timer of this handle; `false` if it already fired (one-shot) or is unknown.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// /// Closes a connection that says nothing for 10 s.
    /// struct Idle { timer: Option<TimerId> }
    /// impl Handler for Idle {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, _: &[u8]) {
    ///         if let Some(old) = self.timer.take() {
    ///             ctx.cancel_timer(old);
    ///         }
    ///         self.timer = ctx.set_timer(Duration::from_secs(10)).ok();
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         ctx.close();
    ///     }
    /// }
    /// ```
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.registry.cancel_timer(self.token, timer)
    }

    /// Changes this handle's framing (EventMux's `set()`); `None` turns it off. Bytes already
    /// buffered are cut by the new rule, including the rest of the read being delivered now,
    /// so a protocol can read a header by line and then a body by size. On a listener it
    /// changes the template for connections accepted from now on.
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

    /// Throws the next `bytes` bytes of this stream away as they arrive, without buffering
    /// them (each read's share is dropped at once), then goes on with the current rule. Bytes
    /// of the same read that follow the record being handled are skipped too. memcached
    /// answers a too-large `set` with an error and swallows its value block this way.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// /// "put N": an N-byte block follows; this server takes none over 1 KiB.
    /// struct Store;
    /// impl Handler for Store {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let Some(n) = line.strip_prefix(b"put ") else { return };
    ///         let n: u64 = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    ///         if n > 1024 {
    ///             let _ = ctx.send(b"too large\n");
    ///             let _ = ctx.skip(n); // the block never reaches on_read
    ///         }
    ///     }
    /// }
    /// ```
    pub fn skip(&mut self, bytes: u64) -> Result<(), Error> {
        self.registry.skip(self.token, bytes)
    }

    /// This stream's live decoder, if it is a `D` (or wraps one: a rule with its own
    /// [`max_size`](crate::framing::Framing::max_size), a [`skip`](Context::skip)). A custom
    /// decoder can keep what it parsed of the record it just returned, so that the handler
    /// reads it here instead of parsing the record again (no allocation per record).
    ///
    /// ```
    /// use eventmux::framing::{Decoder, Frame, FrameError};
    /// use eventmux::{Context, Handler};
    ///
    /// /// "GET key" / "DEL key" lines; keeps the command of the line it returns.
    /// #[derive(Clone, Default)]
    /// struct Commands { last: Option<Command> }
    /// #[derive(Clone, Copy, PartialEq)]
    /// enum Command { Get, Del }
    ///
    /// impl Decoder for Commands {
    ///     fn decode(&mut self, buf: &[u8], _: usize) -> Result<Option<Frame>, FrameError> {
    ///         let Some(end) = buf.iter().position(|&b| b == b'\n') else { return Ok(None) };
    ///         self.last = match &buf[..end.min(4)] {
    ///             b"GET " => Some(Command::Get),
    ///             b"DEL " => Some(Command::Del),
    ///             _ => None,
    ///         };
    ///         Ok(Some(Frame::new(4.min(end)..end, end + 1))) // the key
    ///     }
    ///     fn fresh(&self) -> Box<dyn Decoder> { Box::new(Commands::default()) }
    /// }
    ///
    /// struct Session;
    /// impl Handler for Session {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, key: &[u8]) {
    ///         let command = ctx.decoder::<Commands>().and_then(|d| d.last);
    ///         match command {
    ///             Some(Command::Get) => { let _ = ctx.send(key); }
    ///             Some(Command::Del) => {}
    ///             None => { let _ = ctx.send(b"ERROR\n"); }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn decoder<D: crate::framing::Decoder>(&mut self) -> Option<&mut D> {
        let registry = &mut *self.registry;
        let entry = slot_mut(&mut registry.entries, registry.id, self.token)?;
        let State::Stream(stream) = &mut entry.state else {
            return None;
        };
        let mut decoder: &mut dyn crate::framing::Decoder = &mut **stream.decoder.as_mut()?;
        loop {
            if (decoder as &dyn std::any::Any).is::<D>() {
                return (decoder as &mut dyn std::any::Any).downcast_mut::<D>();
            }
            decoder = decoder.inner()?;
        }
    }

    /// ManualAccept: accepts one waiting connection, returned non-blocking with its peer's
    /// address; `Ok(None)` when none is waiting. Register it with [`add`](Context::add) or
    /// drop it to refuse. On EMFILE/ENFILE the listener backs off before it reports again.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Conn;
    /// impl Handler for Conn {}
    ///
    /// /// Accepts by hand, at most 100 connections at a time.
    /// struct Gate { open: usize }
    /// impl Handler for Gate {
    ///     fn on_accepting(&mut self, ctx: &mut Context<'_>) {
    ///         while let Ok(Some((fd, _peer))) = ctx.accept() {
    ///             if self.open < 100 && ctx.add(fd, Options::new(), Conn).is_ok() {
    ///                 self.open += 1;
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn accept(&mut self) -> Result<Option<(OwnedFd, Address)>, Error> {
        self.registry.accept(self.token)
    }

    /// ManualRead: reads once from the descriptor (`Ok(0)` is end of stream).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Raw;
    /// impl Handler for Raw {
    ///     fn on_readable(&mut self, ctx: &mut Context<'_>) {
    ///         let mut buf = [0; 4096];
    ///         match ctx.read(&mut buf) {
    ///             Ok(0) => ctx.close(),
    ///             Ok(n) => println!("{n} bytes"),
    ///             Err(_) => {} // EAGAIN: nothing more now
    ///         }
    ///     }
    /// }
    /// ```
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.registry.read(self.token, buf)
    }

    /// ManualWrite: writes once to the descriptor, bypassing the queue.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Direct;
    /// impl Handler for Direct {
    ///     fn on_writable(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.write(b"written by hand\n");
    ///     }
    /// }
    /// ```
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        self.registry.write(self.token, data)
    }

    /// ManualWrite: asks for one `on_writable` when the handle can be written to.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// /// Writes a large buffer by hand, as the socket takes it.
    /// struct Writer { rest: Vec<u8> }
    /// impl Handler for Writer {
    ///     fn on_writable(&mut self, ctx: &mut Context<'_>) {
    ///         if let Ok(n) = ctx.write(&self.rest) {
    ///             self.rest.drain(..n);
    ///         }
    ///         if !self.rest.is_empty() {
    ///             let _ = ctx.watch_writable();
    ///         }
    ///     }
    /// }
    /// ```
    pub fn watch_writable(&mut self) -> Result<(), Error> {
        self.registry.watch_writable(self.token)
    }

    /// The peer's address of this (IP) handle.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Logged;
    /// impl Handler for Logged {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if let Ok(peer) = ctx.peer_addr() {
    ///             println!("connection from {peer}");
    ///         }
    ///     }
    /// }
    /// ```
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.peer_addr(self.token)
    }

    /// The peer process of this Unix stream connection (`SO_PEERCRED`): pid, uid, gid.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct RootOnly;
    /// impl Handler for RootOnly {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if ctx.peer_credentials().map_or(true, |c| c.uid() != 0) {
    ///             ctx.kill();
    ///         }
    ///     }
    /// }
    /// ```
    pub fn peer_credentials(&self) -> Result<Credentials, Error> {
        self.registry.peer_credentials(self.token)
    }

    /// The local address of this (IP) handle; for a listener, where it listens.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Where;
    /// impl Handler for Where {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.local_addr().map(|a| println!("served on {a}"));
    ///     }
    /// }
    /// ```
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.registry.local_addr(self.token)
    }

    /// Another handle, if it is still open (not closing, not gone).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Token};
    ///
    /// /// Relays between two connections.
    /// struct Relay { other: Token }
    /// impl Handler for Relay {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         match ctx.handle(self.other) {
    ///             Some(mut other) => { let _ = other.send(data); }
    ///             None => ctx.close(),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn handle(&mut self, token: Token) -> Option<Handle<'_>> {
        Context::of_live(self.registry, token)
    }

    /// Another handle's handler, if it is of type `T` (e.g. to reach room state). `None`
    /// for this callback's own handle: use `self`.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Token};
    ///
    /// struct Room { lines: usize }
    /// impl Handler for Room {}
    ///
    /// struct Member { room: Token }
    /// impl Handler for Member {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, _line: &[u8]) {
    ///         if let Some(room) = ctx.handler_mut::<Room>(self.room) {
    ///             room.lines += 1;
    ///         }
    ///     }
    /// }
    /// ```
    pub fn handler_mut<T: Handler>(&mut self, token: Token) -> Option<&mut T> {
        self.registry.handler_mut(token)
    }

    /// Every open handle's token (EventMux's `handles()`).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Kind};
    ///
    /// /// Broadcasts each line to every other stream.
    /// struct Chat;
    /// impl Handler for Chat {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let me = ctx.token();
    ///         let others: Vec<_> = ctx.tokens().filter(|&t| t != me).collect();
    ///         for token in others {
    ///             if let Some(mut other) = ctx.handle(token) {
    ///                 if other.kind() == Some(Kind::Stream) {
    ///                     let _ = other.send(line);
    ///                 }
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.registry.tokens()
    }

    /// The kind of any handle that still exists.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Kind, Token};
    ///
    /// struct Check { other: Token }
    /// impl Handler for Check {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         assert_ne!(ctx.kind_of(self.other), Some(Kind::Listener));
    ///     }
    /// }
    /// ```
    pub fn kind_of(&self, token: Token) -> Option<Kind> {
        self.registry.entry(token).map(|e| e.kind())
    }

    /// Listens on a stream endpoint or binds a datagram one, with default [`Options`]; see
    /// [`Reactor::listen`](crate::Reactor::listen).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Admin;
    /// impl Handler for Admin {}
    ///
    /// /// Opens an admin port once the main one is up.
    /// struct Main;
    /// impl Handler for Main {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.listen("127.0.0.1:0", Admin);
    ///     }
    /// }
    /// ```
    pub fn listen(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.listen_with(endpoint, Options::default(), handler)
    }

    /// Listens with `options`, which accepted connections inherit; see
    /// [`Reactor::listen_with`](crate::Reactor::listen_with).
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Lines;
    /// impl Handler for Lines {}
    ///
    /// struct Boot;
    /// impl Handler for Boot {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.listen_with("127.0.0.1:0", Options::new().framing(Framing::lines()), Lines);
    ///     }
    /// }
    /// ```
    pub fn listen_with(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.registry
            .listen(endpoint.into_endpoint()?, options, handler.into_handler())
    }

    /// Binds a datagram endpoint; see [`Reactor::bind`](crate::Reactor::bind).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Stats;
    /// impl Handler for Stats {}
    ///
    /// struct Boot;
    /// impl Handler for Boot {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.bind("udp://127.0.0.1:0", Options::new(), Stats);
    ///     }
    /// }
    /// ```
    pub fn bind(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.listen_with(endpoint, options, handler)
    }

    /// Connects to an endpoint with default [`Options`]; see
    /// [`Reactor::connect`](crate::Reactor::connect).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Backend;
    /// impl Handler for Backend {}
    ///
    /// /// Opens a connection to a backend for every client.
    /// struct Proxy;
    /// impl Handler for Proxy {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if ctx.connect("127.0.0.1:6379", Backend).is_err() {
    ///             ctx.close();
    ///         }
    ///     }
    /// }
    /// ```
    pub fn connect(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.connect_with(endpoint, Options::default(), handler)
    }

    /// Connects with `options`; see [`Reactor::connect_with`](crate::Reactor::connect_with).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Backend;
    /// impl Handler for Backend {}
    ///
    /// struct Proxy;
    /// impl Handler for Proxy {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.connect_with("127.0.0.1:6379", Options::new().nodelay(false), Backend);
    ///     }
    /// }
    /// ```
    pub fn connect_with(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.registry
            .connect(endpoint.into_endpoint()?, options, handler.into_handler())
    }

    /// Adds an already-open descriptor; see [`Reactor::add`](crate::Reactor::add).
    ///
    /// ```
    /// use std::process::{Command, Stdio};
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Output;
    /// impl Handler for Output {}
    ///
    /// /// Starts a helper process and reads its output.
    /// struct Starter;
    /// impl Handler for Starter {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         if let Ok(mut child) = Command::new("date").stdout(Stdio::piped()).spawn() {
    ///             if let Some(out) = child.stdout.take() {
    ///                 let _ = ctx.add(out, Options::new(), Output);
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn add(
        &mut self,
        fd: impl Into<OwnedFd>,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.registry
            .add(fd.into(), options, handler.into_handler())
    }

    /// Adds a handle without a descriptor; see
    /// [`Reactor::add_handler`](crate::Reactor::add_handler).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Janitor;
    /// impl Handler for Janitor {}
    ///
    /// struct Boot;
    /// impl Handler for Boot {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let janitor = ctx.add_handler(Janitor);
    ///         if let Some(mut janitor) = ctx.handle(janitor) {
    ///             let _ = janitor.set_interval(std::time::Duration::from_secs(60));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn add_handler(&mut self, handler: impl IntoHandler) -> Token {
        self.registry.add_handler(handler.into_handler())
    }

    /// Starts a child process; see [`Reactor::spawn`](crate::Reactor::spawn).
    ///
    /// ```
    /// use std::process::{Command, ExitStatus, Stdio};
    /// use eventmux::{Context, Handler};
    ///
    /// struct Job;
    /// impl Handler for Job {
    ///     fn on_exit(&mut self, _: &mut Context<'_>, status: ExitStatus) {
    ///         println!("job finished: {status}");
    ///     }
    /// }
    ///
    /// /// Runs a job for every line a client sends (the client is trusted).
    /// struct Control;
    /// impl Handler for Control {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let line = String::from_utf8_lossy(line);
    ///         let mut command = Command::new("sh");
    ///         command.args(["-c", &line]).stdin(Stdio::null());
    ///         if let Err(e) = ctx.spawn(&mut command, Job) {
    ///             let _ = ctx.send(format!("cannot start: {e}\n").as_bytes());
    ///         }
    ///     }
    /// }
    /// ```
    pub fn spawn(
        &mut self,
        command: &mut std::process::Command,
        handler: impl IntoHandler,
    ) -> io::Result<ChildHandles> {
        self.registry
            .spawn(command, Options::new(), handler.into_handler())
    }

    /// Starts a child process whose pipes have `options`; see
    /// [`Reactor::spawn_with`](crate::Reactor::spawn_with).
    ///
    /// ```
    /// use std::process::{Command, Stdio};
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Lines;
    /// impl Handler for Lines {}
    ///
    /// struct Starter;
    /// impl Handler for Starter {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let mut ls = Command::new("ls");
    ///         ls.stdout(Stdio::piped());
    ///         let _ = ctx.spawn_with(&mut ls, Options::new().framing(Framing::lines()), Lines);
    ///     }
    /// }
    /// ```
    pub fn spawn_with(
        &mut self,
        command: &mut std::process::Command,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<ChildHandles> {
        self.registry
            .spawn(command, options, handler.into_handler())
    }

    /// Whether this stream runs TLS (feature `tls`).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    /// struct Either;
    /// impl Handler for Either {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         println!("encrypted: {}", ctx.is_tls());
    ///     }
    /// }
    /// ```
    #[cfg(feature = "tls")]
    pub fn is_tls(&self) -> bool {
        self.registry.tls.get(self.token).is_some()
    }

    /// The application protocol TLS negotiated (ALPN, e.g. `b"h2"`), once the handshake
    /// is done (feature `tls`).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    /// struct Web;
    /// impl Handler for Web {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let http2 = ctx.tls_alpn().as_deref() == Some(&b"h2"[..]);
    ///         # let _ = http2;
    ///     }
    /// }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_alpn(&self) -> Option<Vec<u8>> {
        let session = self.registry.tls.get(self.token)?;
        session.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The server name the TLS client asked for (SNI), on a server-side stream (feature
    /// `tls`).
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    /// struct Hosts;
    /// impl Handler for Hosts {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         println!("for {:?}", ctx.tls_server_name());
    ///     }
    /// }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_server_name(&self) -> Option<String> {
        match &self.registry.tls.get(self.token)?.conn {
            rustls::Connection::Server(server) => server.server_name().map(str::to_string),
            rustls::Connection::Client(_) => None,
        }
    }

    /// The certificates the peer presented (leaf first), once the handshake is done
    /// (feature `tls`): the server's on a client stream, the client's where the server
    /// asked for them.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    /// struct Audit;
    /// impl Handler for Audit {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let n = ctx.tls_peer_certificates().map_or(0, |c| c.len());
    ///         println!("{n} certificates");
    ///     }
    /// }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_peer_certificates(&self) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        let session = self.registry.tls.get(self.token)?;
        let certificates = session.conn.peer_certificates()?;
        Some(
            certificates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
        )
    }

    /// Which of a spawned child's pipes this callback is for (`None` for the process handle
    /// and for handles that are not a child's). One handler serves a whole child, so its
    /// `on_read` asks this to tell stdout from stderr.
    ///
    /// ```
    /// use eventmux::{ChildStdio, Context, Handler};
    ///
    /// struct Build { errors: Vec<u8> }
    /// impl Handler for Build {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
    ///         match ctx.stdio() {
    ///             Some(ChildStdio::Stderr) => self.errors.extend_from_slice(data),
    ///             _ => print!("{}", String::from_utf8_lossy(data)),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn stdio(&self) -> Option<ChildStdio> {
        self.child_link().and_then(|link| link.stdio)
    }

    /// The handles of the child this callback's handle belongs to (`None`: not a child's,
    /// or the child's process handle is gone). Works in the callbacks of a child's process
    /// and pipes, and on [`Reactor::handle`](crate::Reactor::handle) of a process handle.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// /// Answers each line the child prints by writing to its stdin.
    /// struct Dialogue;
    /// impl Handler for Dialogue {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let Some(stdin) = ctx.child().and_then(|c| c.stdin()) else { return };
    ///         if line.ends_with(b"?") {
    ///             if let Some(mut stdin) = ctx.handle(stdin) {
    ///                 let _ = stdin.send(b"yes\n");
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    pub fn child(&self) -> Option<ChildHandles> {
        let process = self.child_link().map_or(self.token, |link| link.process);
        match &self.registry.entry(process)?.state {
            State::Process(slot) => Some(slot.handles),
            _ => None,
        }
    }

    /// Sends `signal` to the child this callback's handle belongs to (see
    /// [`child`](Context::child)), through its pidfd: never to another process that reused
    /// its pid. `libc::SIGKILL` kills it; its exit still comes to `on_exit`. Fails with
    /// `ESRCH` once the child has been reaped, and with [`Error::WrongKind`] on a handle
    /// that is not a child's.
    ///
    /// ```
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// /// Gives the child ten seconds, then stops it.
    /// struct Limited;
    /// impl Handler for Limited {
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         let _ = ctx.signal_child(libc::SIGTERM);
    ///     }
    /// }
    /// ```
    pub fn signal_child(&mut self, signal: i32) -> Result<(), Error> {
        let process = self.child_link().map_or(self.token, |link| link.process);
        self.registry.signal_child(process, signal)
    }

    /// Graceful shutdown; see [`Reactor::shutdown`](crate::Reactor::shutdown).
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler};
    ///
    /// struct Admin;
    /// impl Handler for Admin {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         if line == b"SHUTDOWN" {
    ///             ctx.shutdown(Duration::from_secs(10));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn shutdown(&mut self, grace: Duration) {
        self.registry.shutdown(grace);
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after this turn.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Shutdown;
    /// impl Handler for Shutdown {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         if line == b"SHUTDOWN" {
    ///             ctx.stop();
    ///         }
    ///     }
    /// }
    /// ```
    pub fn stop(&mut self) {
        self.registry.stopped = true;
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("token", &self.token)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
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
