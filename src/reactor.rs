//! The [`Reactor`]: owns every handle and runs the loop that turns readiness into callbacks.
//!
//! One turn ([`Reactor::run_once`]):
//!
//! 1. deliver what earlier calls queued (errors, closes);
//! 2. wait for readiness, no longer than the next timer (not at all if work is pending);
//! 3. act on each ready handle once: accept, complete a connect, read (at most a budget of
//!    reads per handle per turn, so one busy peer cannot starve the rest), write;
//! 4. fire due timers;
//! 5. flush every handle whose output grew, one vectored write each.
//!
//! Stream handles are registered edge-triggered once, so steady state costs one
//! `epoll_wait` per turn plus one read and one write per active connection.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::dispatch::{call, dispatch};
use crate::entry::{Kind, Life};
use crate::registry::{Deferred, Flushed, Registry};
use crate::selector::{self, Readiness, Trigger};
use crate::timer::TimerPurpose;
use crate::waker::WAKER_KEY;
use crate::{Backend, CloseReason, Handle, Handler, IntoEndpoint, Options, PanicPolicy, Token};

/// How many flush rounds one turn does when `on_sent` keeps sending; the rest waits for
/// the next turn so that a handler cannot hold the loop.
const FLUSH_ROUNDS: usize = 4;
/// Rounds over the ready list per turn: at most this many reads per handle per turn.
const ROUNDS_PER_TURN: usize = 8;

/// The event loop: owns every handle and dispatches its events to its [`Handler`].
///
/// ```no_run
/// use eventmux::{Context, Handler, Incoming, Reactor};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         let _ = ctx.send(data);
///     }
/// }
///
/// struct Server;
/// impl Handler for Server {
///     fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
///         Some(Box::new(Echo))
///     }
/// }
///
/// fn main() -> std::io::Result<()> {
///     let mut reactor = Reactor::new()?;
///     reactor.listen("127.0.0.1:7007", Box::new(Server))?;
///     reactor.run()
/// }
/// ```
pub struct Reactor {
    pub(crate) registry: Registry,
    /// The one read buffer shared by every handle.
    pub(crate) read_buf: Vec<u8>,
    events: Vec<Readiness>,
    flushing: Vec<Token>,
    /// Where a datagram handle's `recvmmsg` reports lengths and senders (reused).
    pub(crate) received: Vec<crate::sys::fd::Received>,
    /// How long to poll without blocking before a wait (zero: off).
    busy_poll: Duration,
    /// Whether the last wait returned events (busy polling only follows a busy turn).
    last_wait_busy: bool,
}

impl Reactor {
    /// A reactor on the platform's default [`Backend`] (epoll on Linux), unless the
    /// `EVENTMUX_BACKEND` environment variable names another (see [`Backend::from_env`]).
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_backend(Backend::from_env())
    }

    /// A reactor on the given readiness backend (EventMux's `EventLoop` option).
    pub fn with_backend(backend: Backend) -> io::Result<Reactor> {
        crate::sys::signal::ignore_sigpipe();
        let selector = selector::open(backend)?;
        Ok(Reactor {
            registry: Registry::new(selector),
            read_buf: Vec::new(),
            events: Vec::with_capacity(1024),
            flushing: Vec::new(),
            received: Vec::new(),
            busy_poll: Duration::ZERO,
            last_wait_busy: false,
        })
    }

    /// Chooses what happens when a callback panics (default: kill that handle, go on).
    pub fn set_panic_policy(&mut self, policy: PanicPolicy) {
        self.registry.panic_policy = policy;
    }

    /// Busy polling (default off, `Duration::ZERO`): after a turn that had events, the
    /// next turn polls for readiness without blocking, for up to `window`, before it
    /// sleeps in the wait. A reactor that is idle for a whole window blocks as usual and
    /// does not spin again until events come back.
    ///
    /// This trades CPU for latency, the way `SO_BUSY_POLL` or a spinning scheduler does.
    /// A thread asleep in `epoll_wait` must be woken by whoever sends to it; on a busy
    /// machine, and above all in a virtual machine where waking another CPU takes an
    /// interprocessor interrupt through the hypervisor, that wakeup costs the sender more
    /// than the message. A server that spins through the short gaps between a client's
    /// requests saves its clients those wakeups. Worth it on a dedicated core under steady
    /// load (`examples/mini_redis` uses 200 µs); a waste on a shared or mostly idle one.
    /// Timers still fire on time: the window never runs past the next due timer.
    pub fn set_busy_poll(&mut self, window: Duration) {
        self.busy_poll = window;
    }

    /// Listens on a stream endpoint, or binds a datagram one, with default [`Options`]:
    /// `"127.0.0.1:7007"`, `"tcp://[::1]:7007"`, `"unix:///tmp/app.sock"`,
    /// `"udp://0.0.0.0:5353"`, `"unix_dgram:///tmp/app.dgram"`, a `SocketAddr` (TCP) or a
    /// `Path` (Unix stream); see [`Endpoint`](crate::Endpoint). Port 0 picks a free port:
    /// read it back with [`Handle::local_addr`]. Host names are resolved (blocking) with the
    /// system resolver; the first address is used.
    pub fn listen(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .listen(endpoint.into_endpoint()?, Options::default(), handler)
    }

    /// Listens with the given options, which accepted connections inherit.
    pub fn listen_with(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .listen(endpoint.into_endpoint()?, options, handler)
    }

    /// Connects to an endpoint. For a stream, the connect is non-blocking: success arrives as
    /// `on_connect`, refusal as `on_error` then `on_close`, and sends made before it
    /// completes are queued. A datagram handle is connected at once (`send` goes to the
    /// endpoint; ECONNREFUSED from it reaches `on_error` without closing the handle).
    pub fn connect(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .connect(endpoint.into_endpoint()?, Options::default(), handler)
    }

    /// Connects with the given options.
    pub fn connect_with(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .connect(endpoint.into_endpoint()?, options, handler)
    }

    /// Adds an already-open descriptor: a socket (stream, listener or datagram, told apart
    /// with `SO_TYPE` and `SO_ACCEPTCONN`), a pipe or FIFO end, a terminal, a child
    /// process's stdin/stdout/stderr, or any `OwnedFd` of those. [`Options::kind`] forces the
    /// kind. Write-only ends get a send queue and `on_sent`; read-only ends end with a normal
    /// close at end of file. The descriptor is made non-blocking unless both manual modes
    /// are on; mind that this changes the open file description, which a terminal shares
    /// with other processes.
    pub fn add(
        &mut self,
        fd: impl Into<OwnedFd>,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry.add(fd.into(), options, handler)
    }

    /// Binds a datagram endpoint (the same as [`listen_with`](Reactor::listen_with), named
    /// for what it does to a datagram socket).
    pub fn bind(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .listen(endpoint.into_endpoint()?, options, handler)
    }

    /// Adds a handle with no descriptor: it gets timers (and is closed like any other). A
    /// home for work that belongs to no connection.
    pub fn add_handler(&mut self, handler: Box<dyn Handler>) -> Token {
        self.registry.add_handler(handler)
    }

    /// A handle, if it is still open.
    pub fn handle(&mut self, token: Token) -> Option<Handle<'_>> {
        Handle::new(&mut self.registry, token)
    }

    /// A handle's handler, if it is of type `T`.
    pub fn handler_mut<T: Handler>(&mut self, token: Token) -> Option<&mut T> {
        self.registry.handler_mut(token)
    }

    /// Every open handle's token.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.registry.tokens()
    }

    /// How many handles exist (including ones still closing).
    pub fn len(&self) -> usize {
        self.registry.entries.len()
    }

    /// Whether no handle exists.
    pub fn is_empty(&self) -> bool {
        self.registry.entries.is_empty()
    }

    /// Makes [`run`](Reactor::run) return after the current turn.
    pub fn stop(&mut self) {
        self.registry.stopped = true;
    }

    /// Runs turns until [`stop`](crate::Context::stop) is called or nothing is left to watch (no
    /// handles, hence no timers).
    pub fn run(&mut self) -> io::Result<()> {
        let result = loop {
            if self.registry.stopped || (self.is_empty() && self.registry.deferred.is_empty()) {
                break Ok(());
            }
            if let Err(e) = self.run_once(None) {
                break Err(e);
            }
        };
        self.registry.stopped = false;
        result
    }

    /// One turn (EventMux's `mux($timeout)`): waits up to `timeout` for events (`None`:
    /// until something happens; zero: poll and return), dispatches them, fires due timers
    /// and flushes output.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.process_deferred();
        let timeout = self.wait_time(timeout);
        self.events.clear();
        match self.wait(timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.last_wait_busy = !self.events.is_empty();
        let mut woken = false;
        for i in 0..self.events.len() {
            let event = self.events[i];
            if event.key == WAKER_KEY {
                woken = true;
            } else {
                self.take_readiness(event);
            }
        }
        if woken {
            if let Some(waker) = &self.registry.waker {
                waker.consume_signal();
            }
        }
        if woken || self.registry.handoffs_left {
            self.drain_handoffs();
        }
        // Rounds over the ready list: each ready handle is served once per round (one read,
        // or a batch of accepts), and handles with more to do go to the back. Round-robin
        // keeps a busy peer from starving the others; the bound keeps the loop from
        // starving timers and the wait.
        for _ in 0..ROUNDS_PER_TURN {
            let ready = self.registry.ready.len();
            if ready == 0 {
                break;
            }
            for _ in 0..ready {
                let Some(token) = self.registry.ready.pop_front() else {
                    break;
                };
                self.drive(token);
                self.process_deferred();
            }
        }
        self.fire_timers();
        self.flush_dirty();
        if let Some(payload) = self.registry.panic.take() {
            std::panic::resume_unwind(payload);
        }
        Ok(())
    }

    /// Waits for readiness into `self.events`, first polling without blocking for the
    /// busy-poll window if the last wait was busy (see [`Reactor::set_busy_poll`]).
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let selector = &mut self.registry.selector;
        let window = timeout.map_or(self.busy_poll, |t| t.min(self.busy_poll));
        let mut timeout = timeout;
        if self.last_wait_busy && !window.is_zero() {
            let start = Instant::now();
            loop {
                selector.select(&mut self.events, Some(Duration::ZERO))?;
                if !self.events.is_empty() {
                    return Ok(());
                }
                if start.elapsed() >= window {
                    break;
                }
            }
            // What the spin used counts against the wait (a timer stays on time).
            timeout = timeout.map(|t| t.saturating_sub(start.elapsed()));
        }
        selector.select(&mut self.events, timeout)
    }

    fn wait_time(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        let registry = &mut self.registry;
        registry.look_for_handoffs();
        if !registry.ready.is_empty()
            || !registry.dirty.is_empty()
            || !registry.deferred.is_empty()
            || registry.handoffs_left
        {
            return Some(Duration::ZERO);
        }
        let until_timer = registry
            .timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn take_readiness(&mut self, event: Readiness) {
        let token = Token::from_key(event.key);
        let Some(entry) = self.registry.entry_mut(token) else {
            // A handle finalized earlier in this batch: its slot may already be reused.
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        let ready = &mut entry.ready;
        ready.readable |= event.readable;
        ready.writable |= event.writable;
        ready.read_closed |= event.closed;
        ready.error |= event.error;
        self.registry.schedule(token);
    }

    fn drive(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        entry.in_ready = false;
        match entry.kind {
            Kind::Listener => self.drive_listener(token),
            Kind::Stream => self.drive_stream(token),
            Kind::Datagram => self.drive_datagram(token),
            Kind::Virtual => {}
        }
        if let Some(entry) = self.registry.entry_mut(token) {
            if entry.trigger == Trigger::Level {
                // Level triggering reports again whatever still holds.
                entry.ready = Default::default();
            }
        }
    }

    /// Writes queued output of `token`; reports drain, completes a graceful close, or fails
    /// the handle.
    pub(crate) fn flush(&mut self, token: Token) {
        match self.registry.flush(token) {
            Flushed::Idle | Flushed::Partial => {}
            Flushed::Drained => match self.registry.entry(token).map(|e| e.life) {
                Some(Life::Closing { .. }) => self.registry.closing_drained(token),
                _ => {
                    dispatch(&mut self.registry, token, |h, ctx| h.on_sent(ctx));
                }
            },
            Flushed::Failed(e) => self.registry.fail(token, e.into()),
        }
    }

    fn flush_dirty(&mut self) {
        for _ in 0..FLUSH_ROUNDS {
            if self.registry.dirty.is_empty() {
                return;
            }
            std::mem::swap(&mut self.flushing, &mut self.registry.dirty);
            let mut flushing = std::mem::take(&mut self.flushing);
            for token in flushing.drain(..) {
                self.flush(token);
                self.process_deferred();
            }
            self.flushing = flushing;
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((id, timer)) = self.registry.timers.pop_due(now) {
            let token = timer.token;
            let one_shot_done = self.registry.timers.get(id).is_none();
            let Some(entry) = self.registry.entry_mut(token) else {
                continue;
            };
            if entry.life == Life::Dying {
                continue;
            }
            if one_shot_done {
                entry.timers.retain(|&t| t != id);
            }
            match timer.purpose {
                TimerPurpose::User => {
                    dispatch(&mut self.registry, token, |h, ctx| h.on_timer(ctx, id));
                }
                TimerPurpose::Linger => {
                    let reason = match entry.life {
                        // Everything was written; only the peer's end of stream is missing.
                        Life::Lingering { reason } => reason,
                        _ => {
                            log::debug!(
                                "{token}: linger expired with {} bytes queued",
                                entry.output.len()
                            );
                            CloseReason::LingerExpired
                        }
                    };
                    self.registry.kill(token, reason);
                }
                TimerPurpose::AcceptRetry => {
                    entry.accept_backoff = false;
                    self.registry.update_interest(token);
                    self.registry.schedule(token);
                }
            }
            self.process_deferred();
        }
    }

    /// Delivers queued errors and finalizes closed handles, until nothing is queued.
    pub(crate) fn process_deferred(&mut self) {
        while let Some(work) = self.registry.deferred.pop_front() {
            match work {
                Deferred::Error(token, error) => {
                    dispatch(&mut self.registry, token, |h, ctx| h.on_error(ctx, &error));
                }
                Deferred::Close(token, reason) => self.registry.close_with(token, reason),
                Deferred::Finalize(token, reason) => {
                    let Some(mut entry) = self.registry.take(token) else {
                        continue;
                    };
                    // Stop and join a pump's threads before its handler hears of the close;
                    // its final counters stay readable through the context until then.
                    let final_stats = entry.pump.take().map(|pump| pump.finish());
                    self.registry.closed_pump = final_stats.map(|stats| (token, stats));
                    self.registry.pumps.retain(|&t| t != token);
                    let missing = entry.drop_output();
                    drop(entry.fd.take());
                    if let Some(path) = &entry.bound_path {
                        // The socket file this handle bound; nobody can connect to it now.
                        let _ = std::fs::remove_file(path);
                    }
                    log::debug!("{token}: closed ({reason:?}), {missing} bytes unsent");
                    let Some(mut handler) = entry.handler.take() else {
                        log::error!("{token}: finalized while its handler was running");
                        continue;
                    };
                    let abrupt = matches!(
                        reason,
                        CloseReason::Killed | CloseReason::Removed | CloseReason::Panicked
                    );
                    if !entry.input.is_empty() && !abrupt {
                        let rest = entry.input.as_slice();
                        call(&mut self.registry, token, &mut *handler, |h, ctx| {
                            h.on_read_last(ctx, rest)
                        });
                    }
                    if entry.kind.can_send() {
                        call(&mut self.registry, token, &mut *handler, |h, ctx| {
                            h.on_closing(ctx, missing)
                        });
                    }
                    call(&mut self.registry, token, &mut *handler, |h, ctx| {
                        h.on_close(ctx, reason)
                    });
                    self.registry.closed_pump = None;
                }
            }
        }
    }
}
