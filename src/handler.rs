//! The [`Handler`] trait: one object per handle, one method per event.
//!
//! Each IO::EventMux event type becomes a callback (`accepted` → `on_accept`, `ready` →
//! `on_connect`, `read` → `on_read`, `sent` → `on_sent`, `closing` → `on_closing`, `closed`
//! → `on_close`, `error` → `on_error`, `accepting`, `can_read`, `can_write` →
//! `on_accepting`, `on_readable`, `on_writable`), and EventMux's per-handle `Meta` is simply
//! the handler object's own fields. Every method has a default, so a handler implements
//! only what it needs.

use std::any::Any;
use std::net::SocketAddr;

use crate::{Address, CloseReason, Context, Credentials, Error, Packet, TimerId, Token};

/// A connection a listener has just accepted, shown to [`Handler::on_accept`].
#[derive(Debug)]
pub struct Incoming {
    pub(crate) peer: Address,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) token: Token,
}

impl Incoming {
    /// The new connection's token. It is registered already: `on_accept` may keep the
    /// token (in a room's member list, say) or queue a greeting on it with
    /// [`Context::handle`]; if `on_accept` refuses, the token goes stale at once.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Incoming, Token};
    ///
    /// struct Conn;
    /// impl Handler for Conn {}
    ///
    /// struct Room { members: Vec<Token> }
    /// impl Handler for Room {
    ///     fn on_accept(&mut self, ctx: &mut Context<'_>, incoming: &Incoming) -> Option<Box<dyn Handler>> {
    ///         self.members.push(incoming.token());
    ///         if let Some(mut new) = ctx.handle(incoming.token()) {
    ///             let _ = new.send(b"welcome\n");
    ///         }
    ///         Some(Box::new(Conn))
    ///     }
    /// }
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }

    /// The peer's IP address and port (`None` for Unix sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.as_inet()
    }

    /// The peer's address, of whatever family.
    pub fn address(&self) -> &Address {
        &self.peer
    }

    /// The peer process's pid, uid and gid, on a Unix listener (`SO_PEERCRED`).
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials
    }
}

/// Callbacks for one handle. Register an object of yours with the
/// [`Reactor`](crate::Reactor); the reactor calls it on the reactor thread, one callback
/// at a time, each with a [`Context`] to act on this handle and on any other.
///
/// A panic in a callback is caught: by default the handle is killed (`on_close` gets
/// [`CloseReason::Panicked`]) and the loop goes on; see [`PanicPolicy`](crate::PanicPolicy).
///
/// ```
/// use eventmux::{Context, Handler};
///
/// /// Echoes what it reads, and counts bytes (its own "Meta").
/// struct Echo { bytes: usize }
///
/// impl Handler for Echo {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         self.bytes += data.len();
///         let _ = ctx.send(data); // an error also reaches on_error
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler: Any {
    /// A listener accepted a connection. Return the new connection's handler, or `None` to
    /// refuse it (it is closed at once). The default refuses.
    fn on_accept(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        None
    }

    /// ManualAccept: connections are waiting; accept them with
    /// [`Context::accept`](crate::Context::accept). Repeats each turn while any wait.
    fn on_accepting(&mut self, ctx: &mut Context<'_>) {}

    /// The connection is established: a non-blocking connect completed (EventMux's
    /// `ready`), or a listener just accepted it. A good place for a greeting.
    fn on_connect(&mut self, ctx: &mut Context<'_>) {}

    /// Bytes arrived: whatever one read returned or, with [framing](crate::framing), one
    /// whole record. `data` usually borrows the reactor's shared read buffer: copy what must
    /// outlive the call.
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {}

    /// A datagram arrived on a datagram handle, from `from` (an empty datagram is an empty
    /// `data`). The default passes it on to [`on_read`](Handler::on_read), so a handler that
    /// does not care about senders implements only that.
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        let _ = from;
        self.on_read(ctx, data);
    }

    /// A pump delivered a packet (see [`Reactor::pump`](crate::Reactor::pump)). The default
    /// passes a successful one on to [`on_datagram`](Handler::on_datagram) (and so to
    /// `on_read`) and a failed receive to `on_error`.
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        match packet.from() {
            Some(from) if packet.errno() == 0 => self.on_datagram(ctx, packet.data(), from),
            _ => self.on_error(
                ctx,
                &Error::Io(std::io::Error::from_raw_os_error(packet.errno())),
            ),
        }
    }

    /// An event pushed by [`Remote::push_event`](crate::Remote::push_event) from another
    /// thread. The default drops it (logged at debug).
    fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
        let _ = event;
        log::debug!("{}: unhandled user event", ctx.token());
    }

    /// The stream ended (or is being closed) with bytes that do not make a whole record under
    /// the handle's framing: here they are, once, before `on_closing`/`on_close` (EventMux's
    /// `read_last`). Not called after a kill, a remove or a panic, nor without framing
    /// (then every byte already went to `on_read`). The default hands them to
    /// [`on_read`](Handler::on_read), as EventMux does when no `read_last` is asked for, so
    /// no byte that arrived is dropped silently; override it to tell the tail apart. The
    /// handle is already gone here: what `ctx` is asked to do to it fails.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Lines;
    /// impl Handler for Lines {
    ///     fn on_read(&mut self, _ctx: &mut Context<'_>, line: &[u8]) {
    ///         println!("line: {}", String::from_utf8_lossy(line));
    ///     }
    ///     fn on_read_last(&mut self, _ctx: &mut Context<'_>, rest: &[u8]) {
    ///         eprintln!("{} bytes without a newline at the end", rest.len());
    ///     }
    /// }
    /// ```
    fn on_read_last(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.on_read(ctx, data);
    }

    /// The output queue became empty: everything sent so far is in the kernel. Also called
    /// when a graceful close has drained the queue, right before the close goes on.
    fn on_sent(&mut self, ctx: &mut Context<'_>) {}

    /// ManualRead: the handle is readable. Repeats each turn while it stays readable.
    fn on_readable(&mut self, ctx: &mut Context<'_>) {}

    /// ManualWrite: the handle became writable after [`Context::watch_writable`](crate::Context::watch_writable)
    /// (or registration). One call per request.
    fn on_writable(&mut self, ctx: &mut Context<'_>) {}

    /// A timer of this handle fired.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {}

    /// An error on this handle. If it ends the handle, `on_closing`/`on_close` follow.
    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        log::debug!("{}: unhandled error: {error}", ctx.token());
    }

    /// The reactor has stopped serving the handle; `missing` queued bytes were never written
    /// (EventMux's `missing`). Called for every handle that can send, on every close path,
    /// right before `on_close`.
    fn on_closing(&mut self, ctx: &mut Context<'_>, missing: usize) {}

    /// The handle is gone (its descriptor closed, or handed back by `remove`). The last call
    /// this handler receives; it is dropped after it.
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {}
}

/// What the reactor's entry points take as a handler: any [`Handler`] by value, or one
/// already boxed as `Box<dyn Handler>` (as `on_accept` returns them). So
/// `reactor.listen(addr, Server)` needs no `Box::new`.
///
/// ```
/// use eventmux::{Handler, IntoHandler};
///
/// struct Quiet;
/// impl Handler for Quiet {}
///
/// let by_value = Quiet.into_handler();
/// let boxed: Box<dyn Handler> = Box::new(Quiet);
/// let same = boxed.into_handler();
/// # let _ = (by_value, same);
/// ```
pub trait IntoHandler {
    /// The handler, boxed for its slot.
    fn into_handler(self) -> Box<dyn Handler>;
}

impl<T: Handler> IntoHandler for T {
    fn into_handler(self) -> Box<dyn Handler> {
        Box::new(self)
    }
}

impl IntoHandler for Box<dyn Handler> {
    fn into_handler(self) -> Box<dyn Handler> {
        self
    }
}
