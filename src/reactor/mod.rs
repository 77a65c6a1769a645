//! The [`Reactor`]: owns every handle, and every public entry point (opening handles,
//! pumps, remotes, running). The parts live beside it:
//!
//! - `turn.rs`: one turn of the loop ([`Reactor::run_once`]);
//! - `registry.rs`: the slots, their generations, scheduling and each handle's lifecycle;
//! - `dispatch.rs`: calling into handlers, catching their panics;
//! - `open.rs`: creating sockets for endpoints and registering descriptors;
//! - `handoff.rs`: what other threads hand over (remotes, pump batches) and the waker.
//!
//! Each kind of handle is driven from its own file under `src/handle/`. Stream handles are
//! registered edge-triggered once, so steady state costs one `epoll_wait` per turn plus one
//! read and one write per active connection.

pub(crate) mod dispatch;
mod handoff;
mod open;
pub(crate) mod registry;
mod turn;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use handoff::Handoffs;
use registry::Registry;

use crate::handle::fd_passing::PassedFds;
use crate::handover::Offer;
use crate::selector::{self, Readiness};
use crate::{
    Backend, ChildHandles, Context, Deadline, Error, Handle, Handler, IntoEndpoint, IntoHandler,
    Options, PanicPolicy, PumpOptions, PumpStats, Remote, Token,
};

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
///     reactor.listen("127.0.0.1:7007", Server)?;
///     reactor.run()
/// }
/// ```
pub struct Reactor {
    pub(crate) registry: Registry,
    /// What other threads can reach: the waker, the remotes' inbox, the pumps.
    pub(crate) handoffs: Handoffs,
    /// The one read buffer shared by every handle.
    pub(crate) read_buf: Vec<u8>,
    /// Descriptors a `receive_fds` read brought, on their way to `on_fds`.
    pub(crate) passed: PassedFds,
    /// Where a TLS stream's ciphertext is read (its plaintext goes to `read_buf`).
    #[cfg(feature = "tls")]
    pub(crate) tls_raw: Vec<u8>,
    events: Vec<Readiness>,
    flushing: Vec<Token>,
    /// The ready handles of the round being served (`turn.rs`), kept for its capacity.
    round: Vec<Token>,
    /// Where a datagram handle's `recvmmsg` reports lengths and senders (reused).
    pub(crate) received: Vec<crate::sys::fd::Received>,
    /// How long to poll without blocking before a wait (zero: off).
    busy_poll: Duration,
    /// Whether the last wait returned events (busy polling only follows a busy turn).
    last_wait_busy: bool,
    /// Handles whose deadlines a sweep found expired (reused).
    expired: Vec<(Token, Deadline)>,
}

impl Reactor {
    /// A reactor on the default [`Backend`] (epoll), unless the `EVENTMUX_BACKEND`
    /// environment variable names another (see [`Backend::from_env`]).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let reactor = eventmux::Reactor::new()?;
    /// assert!(reactor.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_backend(Backend::from_env())
    }

    /// A reactor on the given readiness backend (EventMux's `EventLoop` option).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Backend, Reactor};
    /// let reactor = Reactor::with_backend(Backend::Poll)?; // poll(2), level-triggered
    /// # drop(reactor); Ok(()) }
    /// ```
    pub fn with_backend(backend: Backend) -> io::Result<Reactor> {
        crate::sys::signal::ignore_sigpipe();
        let selector = selector::open(backend)?;
        Ok(Reactor {
            registry: Registry::new(selector),
            handoffs: Handoffs::default(),
            read_buf: Vec::new(),
            passed: PassedFds::default(),
            #[cfg(feature = "tls")]
            tls_raw: Vec::new(),
            events: Vec::with_capacity(1024),
            flushing: Vec::new(),
            round: Vec::new(),
            received: Vec::new(),
            busy_poll: Duration::ZERO,
            last_wait_busy: false,
            expired: Vec::new(),
        })
    }

    /// Chooses what happens when a callback panics (default: kill that handle, go on).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{PanicPolicy, Reactor};
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_panic_policy(PanicPolicy::Propagate); // run() resumes the panic
    /// # Ok(()) }
    /// ```
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
    /// load; a waste on a shared or mostly idle one. Timers still fire on time: the window
    /// never runs past the next due timer.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let mut reactor = eventmux::Reactor::new()?;
    /// reactor.set_busy_poll(Duration::from_micros(200));
    /// # Ok(()) }
    /// ```
    pub fn set_busy_poll(&mut self, window: Duration) {
        self.busy_poll = window;
    }

    /// Listens on a stream endpoint, or binds a datagram one, with default [`Options`]:
    /// `"127.0.0.1:7007"`, `"tcp://[::1]:7007"`, `"unix:///tmp/app.sock"`,
    /// `"udp://0.0.0.0:5353"`, `"unix_dgram:///tmp/app.dgram"`, a `SocketAddr` (TCP) or a
    /// `Path` (Unix stream); see [`Endpoint`](crate::Endpoint). Port 0 picks a free port:
    /// read it back with [`Reactor::local_addr`]. Host names are resolved (blocking) with
    /// the system resolver; the first address is used.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let listener = reactor.listen("127.0.0.1:0", Server)?;
    /// println!("listening on {}", reactor.local_addr(listener)?);
    /// # Ok(()) }
    /// ```
    pub fn listen(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.listen_with(endpoint, Options::default(), handler)
    }

    /// Listens with the given options, which accepted connections inherit.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::framing::Framing;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct LineServer;
    /// impl Handler for LineServer {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let options = Options::new().framing(Framing::lines()).max_size(4096);
    /// reactor.listen_with("127.0.0.1:0", options, LineServer)?;
    /// # Ok(()) }
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

    /// Connects to an endpoint. For a stream, the connect is non-blocking: success arrives as
    /// `on_connect`, refusal as `on_error` then `on_close`, and sends made before it
    /// completes are queued. A datagram handle is connected at once (`send` goes to the
    /// endpoint; ECONNREFUSED from it reaches `on_error` without closing the handle).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Reactor};
    ///
    /// struct Client;
    /// impl Handler for Client {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send(b"PING\r\n");
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// reactor.connect(server.local_addr()?, Client)?;
    /// # Ok(()) }
    /// ```
    pub fn connect(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.connect_with(endpoint, Options::default(), handler)
    }

    /// Connects with the given options.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Client;
    /// impl Handler for Client {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let options = Options::new().linger(Duration::from_secs(1));
    /// reactor.connect_with(server.local_addr()?, options, Client)?;
    /// # Ok(()) }
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

    /// Adds an already-open descriptor: a socket (stream, listener or datagram, told apart
    /// with `SO_TYPE` and `SO_ACCEPTCONN`), a pipe or FIFO end, a terminal, a child
    /// process's stdin/stdout/stderr, or any `OwnedFd` of those. [`Options::kind`] forces the
    /// kind. Write-only ends get a send queue and `on_sent`; read-only ends end with a normal
    /// close at end of file. A stream socket gets `on_connect` (at once if it is connected,
    /// when its connect completes otherwise). The descriptor is made non-blocking unless
    /// both manual modes are on; mind that this changes the open file description, which a
    /// terminal shares with other processes.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixStream;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Peer;
    /// impl Handler for Peer {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _theirs) = UnixStream::pair()?;
    /// reactor.add(ours, Options::new(), Peer)?;
    /// # Ok(()) }
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

    /// Binds a datagram endpoint (the same as [`listen_with`](Reactor::listen_with), named
    /// for what it does to a datagram socket).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Address, Context, Handler, Options, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
    ///         let _ = ctx.send_to(from, data);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.bind("udp://127.0.0.1:0", Options::new(), Echo)?;
    /// # Ok(()) }
    /// ```
    pub fn bind(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.listen_with(endpoint, options, handler)
    }

    /// Adds a handle with no descriptor: it gets timers (and is closed like any other). A
    /// home for work that belongs to no connection.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Reactor, TimerId};
    ///
    /// struct Ticker;
    /// impl Handler for Ticker {
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         ctx.kill(); // once is enough
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let ticker = reactor.add_handler(Ticker);
    /// reactor.handle(ticker).unwrap().set_timer(Duration::from_millis(1))?;
    /// reactor.run()?; // returns once the ticker is gone
    /// # Ok(()) }
    /// ```
    pub fn add_handler(&mut self, handler: impl IntoHandler) -> Token {
        self.registry.add_handler(handler.into_handler())
    }

    /// A handle, if it is still open: the same operations a callback's [`Context`](crate::Context)
    /// has, from outside any callback.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Peer;
    /// impl Handler for Peer {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _theirs) = std::os::unix::net::UnixStream::pair()?;
    /// let token = reactor.add(ours, Options::new(), Peer)?;
    /// reactor.handle(token).unwrap().send(b"queued from outside")?;
    /// # Ok(()) }
    /// ```
    pub fn handle(&mut self, token: Token) -> Option<Handle<'_>> {
        Context::of_live(&mut self.registry, token)
    }

    /// A handle's handler, if it is of type `T`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Counter { hits: u32 }
    /// impl Handler for Counter {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let token = reactor.add_handler(Counter { hits: 0 });
    /// reactor.handler_mut::<Counter>(token).unwrap().hits += 1;
    /// assert_eq!(reactor.handler_mut::<Counter>(token).unwrap().hits, 1);
    /// # Ok(()) }
    /// ```
    pub fn handler_mut<T: Handler>(&mut self, token: Token) -> Option<&mut T> {
        self.registry.handler_mut(token)
    }

    /// The local address of an IP handle; for a listener, where it listens.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let listener = reactor.listen("127.0.0.1:0", Server)?;
    /// assert_ne!(reactor.local_addr(listener)?.port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self, token: Token) -> Result<SocketAddr, Error> {
        self.registry.local_addr(token)
    }

    /// Every open handle's token.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let token = reactor.add_handler(Quiet);
    /// assert_eq!(reactor.tokens().collect::<Vec<_>>(), [token]);
    /// # Ok(()) }
    /// ```
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.registry.tokens()
    }

    /// How many handles exist (including ones still closing).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.add_handler(Quiet);
    /// assert_eq!(reactor.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.registry.entries.len()
    }

    /// Whether no handle exists.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// assert!(eventmux::Reactor::new()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.registry.entries.is_empty()
    }

    /// Graceful shutdown: listeners close at once (new connections are refused by the
    /// kernel), every other handle gets [`on_shutdown`](crate::Handler::on_shutdown) (by
    /// default a graceful close, which flushes), and [`run`](Reactor::run) returns once no
    /// stream or datagram handle is left, or when `grace` is over; whatever is still open
    /// then is killed with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown). Calling
    /// it again only brings the end nearer: `shutdown(Duration::ZERO)` forces it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen("127.0.0.1:0", Server)?;
    /// reactor.shutdown(Duration::from_secs(5));
    /// reactor.run()?; // the listener closed; nothing was left to drain
    /// assert!(reactor.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&mut self, grace: Duration) {
        self.registry.shutdown(grace);
    }

    /// Makes [`run`](Reactor::run) return after the current turn.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.add_handler(Quiet);
    /// reactor.stop();
    /// reactor.run()?; // returns at once: stopped
    /// # Ok(()) }
    /// ```
    pub fn stop(&mut self) {
        self.registry.stopped = true;
    }

    /// A handle for other threads: run closures here, push events to handles, send bytes,
    /// stop the reactor. Cheap to clone; all clones share one bounded channel.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct KeepAlive;
    /// impl Handler for KeepAlive {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.add_handler(KeepAlive);
    /// let remote = reactor.remote()?;
    /// std::thread::spawn(move || remote.stop()).join().unwrap().unwrap();
    /// reactor.run()?; // the other thread stopped it
    /// # Ok(()) }
    /// ```
    pub fn remote(&mut self) -> io::Result<Remote> {
        self.handoffs.remote(&*self.registry.selector)
    }

    /// Starts a UDP pump (Event::Lib::UDPPump) on a datagram endpoint (`udp://HOST:PORT`,
    /// IPv4 or IPv6, or `unix_dgram:///path`): threads block receiving (with `recvmmsg`)
    /// and hand batches of packets to this thread, where `handler.on_packet` runs. Replies
    /// go through the same socket with `send_to`, batched into `sendmmsg` per turn.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
    ///         if let Some(from) = packet.from() {
    ///             let _ = ctx.send_to(from, packet.data());
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.pump("udp://127.0.0.1:7008", PumpOptions::new().threads(2), Echo)?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn pump(
        &mut self,
        endpoint: impl IntoEndpoint,
        options: PumpOptions,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        self.open_pump(endpoint.into_endpoint()?, options, handler.into_handler())
    }

    /// Starts a pump on a datagram socket you bound (or connected) yourself: a
    /// `std::net::UdpSocket`, a `std::os::unix::net::UnixDatagram`, or any `OwnedFd` of a
    /// datagram socket. `reuse_port` is not available here.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// reactor.pump_socket(socket, PumpOptions::new(), Sink)?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn pump_socket(
        &mut self,
        socket: impl Into<OwnedFd>,
        options: PumpOptions,
        handler: impl IntoHandler,
    ) -> io::Result<Token> {
        let socket = socket2::Socket::from(socket.into());
        self.open_pump_socket(socket, options, handler.into_handler())
    }

    /// Offers this server's listening sockets to a new server process on a Unix socket at
    /// `path`, for a restart that refuses no connection (see [`take_over`](crate::take_over)
    /// for the new side, and the protocol in its module). When a new process of the same
    /// user takes them and says it is ready, this reactor starts a graceful
    /// [`shutdown`](Reactor::shutdown) with `grace`: its own connections finish here, new
    /// ones go to the new process. Returns the offer's listener handle (killed by a
    /// shutdown, like every listener).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let path = std::env::temp_dir().join(format!("eventmux-doc-offer-{}.sock", std::process::id()));
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen("127.0.0.1:0", Server)?;
    /// reactor.offer_listeners(&path, Duration::from_secs(30))?;
    ///
    /// // What a new process does (here on a thread, for the example).
    /// let new_server = std::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut taken = eventmux::take_over(&path)?.expect("someone offers");
    ///     let listeners = taken.take_listeners();
    ///     taken.ready()?;
    ///     Ok(listeners.len())
    /// });
    /// reactor.run()?; // returns once the old server has drained
    /// assert_eq!(new_server.join().unwrap()?, 1);
    /// # Ok(()) }
    /// ```
    pub fn offer_listeners(
        &mut self,
        path: impl AsRef<Path>,
        grace: Duration,
    ) -> io::Result<Token> {
        let path = path.as_ref();
        let offer = Offer {
            path: path.to_path_buf(),
            grace,
        };
        self.listen_with(path, Offer::options(), offer)
    }

    /// Starts `command` as a child process. Each of stdin, stdout and stderr that the
    /// command pipes (`Stdio::piped()`; std's default for `spawn` is to inherit) becomes a
    /// stream handle, and the process itself a handle of [`Kind::Process`](crate::Kind)
    /// (a pidfd: Linux 5.3 or later). One handler serves them all:
    /// [`Context::stdio`](crate::Context::stdio) tells which pipe a callback is for.
    ///
    /// - The child's exit comes to [`Handler::on_exit`] with its `ExitStatus`, after every
    ///   pipe of it has closed (so after all its output). The reactor reaps it: no SIGCHLD
    ///   handler, no zombie. Its stdin handle is closed at the exit.
    /// - [`signal_child`](crate::Context::signal_child) signals or kills it; `close()` on the
    ///   process handle sends SIGTERM and waits for the exit up to the linger time; `kill()`
    ///   (or a linger that runs out) sends SIGKILL and closes the handle at once, and the
    ///   child is still reaped. A graceful [`shutdown`](Reactor::shutdown) waits for child
    ///   processes as for connections (the default `on_shutdown` closes, so SIGTERM).
    /// - Dropping the reactor kills and reaps the children still running.
    /// - The child starts with no signal blocked (std resets the mask), whatever
    ///   [`signals`](Reactor::signals) blocked here. Something else reaping children of this
    ///   process (`waitpid(-1)`, or SIGCHLD set to `SIG_IGN`) takes the status away; the
    ///   handle then gets an `ECHILD` error.
    ///
    /// A callback may spawn as well ([`Context::spawn`](crate::Context::spawn)).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::process::{Command, ExitStatus, Stdio};
    /// use eventmux::{Context, Handler, Reactor};
    ///
    /// #[derive(Default)]
    /// struct Capture { out: Vec<u8>, status: Option<ExitStatus> }
    /// impl Handler for Capture {
    ///     fn on_read(&mut self, _: &mut Context<'_>, data: &[u8]) {
    ///         self.out.extend_from_slice(data);
    ///     }
    ///     fn on_exit(&mut self, _: &mut Context<'_>, status: ExitStatus) {
    ///         self.status = Some(status);
    ///         assert_eq!(self.out, b"hello\n"); // all output came first
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut echo = Command::new("echo");
    /// echo.arg("hello").stdout(Stdio::piped());
    /// let child = reactor.spawn(&mut echo, Capture::default())?;
    /// println!("pid {}", child.pid());
    /// reactor.run()?; // until the child has exited and its pipe closed
    /// # Ok(()) }
    /// ```
    pub fn spawn(
        &mut self,
        command: &mut Command,
        handler: impl IntoHandler,
    ) -> io::Result<ChildHandles> {
        self.registry
            .spawn(command, Options::new(), handler.into_handler())
    }

    /// [`spawn`](Reactor::spawn) with `options` for the child's pipes (framing, read size,
    /// limits, deadlines) and its process handle (the linger time a `close()` waits for the
    /// exit).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::process::{Command, Stdio};
    /// use eventmux::framing::Framing;
    /// use eventmux::{ChildStdio, Context, Handler, Options, Reactor};
    ///
    /// struct Labelled;
    /// impl Handler for Labelled {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let label = if ctx.stdio() == Some(ChildStdio::Stderr) { "err" } else { "out" };
    ///         println!("[{label}] {}", String::from_utf8_lossy(line));
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut sh = Command::new("sh");
    /// sh.args(["-c", "echo one; echo two >&2"])
    ///     .stdout(Stdio::piped())
    ///     .stderr(Stdio::piped());
    /// let lines = Options::new().framing(Framing::lines()).record_timeout(None);
    /// reactor.spawn_with(&mut sh, lines, Labelled)?;
    /// reactor.run()?;
    /// # Ok(()) }
    /// ```
    pub fn spawn_with(
        &mut self,
        command: &mut Command,
        options: Options,
        handler: impl IntoHandler,
    ) -> io::Result<ChildHandles> {
        self.registry
            .spawn(command, options, handler.into_handler())
    }

    /// Signals as events: blocks `signals` in the calling thread and delivers each one that
    /// arrives to `handler.on_signal` (through a signalfd, so no signal handler runs and any
    /// callback may be used). The handle is a [`Kind::Pollable`](crate::Kind::Pollable) one;
    /// closing it stops the delivery (the signals stay blocked).
    ///
    /// The rule that comes with signalfd: a signal must be blocked in **every** thread of
    /// the process, or the kernel may deliver it to a thread that has not blocked it, where
    /// its default action runs (for SIGTERM, the process exits). Threads inherit the mask
    /// of the thread that starts them, so call this before starting threads of your own, or
    /// block the signals in them (`pthread_sigmask`). eventmux's own pump threads block
    /// every signal.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Reactor, Signal};
    ///
    /// struct Shutdown;
    /// impl Handler for Shutdown {
    ///     fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &Signal) {
    ///         eprintln!("signal {}: stopping", signal.number());
    ///         ctx.stop();
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.signals(&[libc::SIGTERM, libc::SIGINT], Shutdown)?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn signals(&mut self, signals: &[i32], handler: impl IntoHandler) -> io::Result<Token> {
        self.open_signals(signals, handler)
    }

    /// A pump's counters (`None` if `token` is not a live pump).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, PumpOptions, Reactor};
    ///
    /// struct Sink;
    /// impl Handler for Sink {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Sink)?;
    /// reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
    /// println!("{:?}", reactor.pump_stats(pump));
    /// # Ok(()) }
    /// ```
    pub fn pump_stats(&self, token: Token) -> Option<PumpStats> {
        self.registry.pump_stats(token)
    }

    /// Runs turns until [`stop`](crate::Context::stop) is called or nothing is left to watch (no
    /// handles, hence no timers).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Incoming, Reactor};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send(b"hello\n");
    ///         ctx.close();
    ///     }
    /// }
    ///
    /// struct Server;
    /// impl Handler for Server {
    ///     fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
    ///         Some(Box::new(Hello))
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen("127.0.0.1:7007", Server)?;
    /// reactor.run() // until killed
    /// # }
    /// ```
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
    /// and flushes output. Returns `false` when nothing happened before the timeout
    /// (EventMux's `timeout` event): no readiness, no timer, no work from other threads or
    /// queued before the turn.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Idle;
    /// impl Handler for Idle {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.add_handler(Idle);
    /// let happened = reactor.run_once(Some(Duration::from_millis(10)))?;
    /// assert!(!happened, "nothing to do: the turn timed out");
    /// # Ok(()) }
    /// ```
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        self.turn(timeout)
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("handles", &self.len())
            .field("busy_poll", &self.busy_poll)
            .finish_non_exhaustive()
    }
}
