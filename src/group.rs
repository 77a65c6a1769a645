//! A group of reactors, one thread each, for servers that use every core.
//!
//! Each worker thread builds its own [`Reactor`] and sets it up with a closure the group
//! runs on that thread, so handlers are created where they live and need not be `Send`.
//! Listeners added to the group spread connections in one of two ways ([`Spread`]):
//!
//! - [`Spread::Kernel`]: every worker has its own `SO_REUSEPORT` listener on the same
//!   address, and the kernel picks one per connection by a hash of the peer's address;
//!   nothing is shared between threads.
//! - [`Spread::FewestConnections`]: one acceptor thread accepts and hands each connection
//!   to the worker with the fewest open ones (through that worker's [`Remote`]); the
//!   connection's handler is created on the worker by the factory. Long-lived connections
//!   stay even, where the kernel's hash can leave one worker with many more.
//!
//! Each worker holds one virtual handle of its own, so that it serves until the group stops
//! it even while it has nothing else. The group's threads block every signal (a signal is for the thread that reads a
//! signalfd, as with pumps); `stop`, `shutdown` and `join` reach all of them. Tokens carry
//! their reactor's identity, so a token of one worker names nothing on another.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::handle::slot::{Seat, Seats};
use crate::handle::{Entry, Kind, Shape, State, Transport};
use crate::reactor::registry::{Deferred, Registry};
use crate::sys;
use crate::{
    Address, Backend, Context, Handler, Incoming, Options, PanicPolicy, Reactor, Remote, Token,
};

/// How a group listener spreads its connections over the workers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Spread {
    /// One `SO_REUSEPORT` listener per worker; the kernel picks by a hash of the peer.
    Kernel,
    /// One acceptor thread hands each connection to the worker with the fewest open.
    FewestConnections,
}

/// Makes a connection's handler on the worker that will serve it, from the peer's address
/// (`None` refuses the connection: it is closed at once).
type Factory = dyn Fn(&Address) -> Option<Box<dyn Handler>> + Send + Sync;

/// Makes a listener's options, once on each thread that needs them (options hold the
/// framing rule, which is not `Send`).
type OptionsMaker = dyn Fn() -> Options + Send + Sync;

/// One listener of the group, as the builder was given it.
struct ListenerSpec {
    addr: SocketAddr,
    spread: Spread,
    options: Arc<OptionsMaker>,
    factory: Arc<Factory>,
}

/// Builds a [`ReactorGroup`]; from [`ReactorGroup::builder`].
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Context, Handler, Options, ReactorGroup, Spread};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         let _ = ctx.send(data);
///     }
/// }
///
/// let group = ReactorGroup::builder(2)
///     .listen("127.0.0.1:0", Spread::Kernel, Options::new, |_| Some(Box::new(Echo)))
///     .start(|_reactor, _index| Ok(()))?;
/// println!("serving {} on 2 threads", group.local_addr(0));
/// group.stop();
/// group.join()?;
/// # Ok(()) }
/// ```
pub struct GroupBuilder {
    threads: usize,
    pin: bool,
    backend: Backend,
    panic_policy: PanicPolicy,
    listeners: Vec<(String, Spread, Arc<OptionsMaker>, Arc<Factory>)>,
}

impl GroupBuilder {
    /// Pins worker `i` to the `i`-th CPU this process may run on (wrapping around); the
    /// acceptor thread is not pinned. Off by default.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).pin(true).start(|_, _| Ok(()))?;
    /// group.stop();
    /// group.join()?;
    /// # Ok(()) }
    /// ```
    pub fn pin(mut self, on: bool) -> GroupBuilder {
        self.pin = on;
        self
    }

    /// The readiness backend of every reactor (default: [`Backend::from_env`]).
    ///
    /// ```
    /// use eventmux::{Backend, ReactorGroup};
    ///
    /// let builder = ReactorGroup::builder(4).backend(Backend::Epoll);
    /// # let _ = builder;
    /// ```
    pub fn backend(mut self, backend: Backend) -> GroupBuilder {
        self.backend = backend;
        self
    }

    /// The panic policy of every worker (default: kill the handle and go on). With
    /// [`PanicPolicy::Propagate`] a panic ends that worker's thread only; [`join`]
    /// reports it.
    ///
    /// [`join`]: ReactorGroup::join
    ///
    /// ```
    /// use eventmux::{PanicPolicy, ReactorGroup};
    ///
    /// let builder = ReactorGroup::builder(4).panic_policy(PanicPolicy::Propagate);
    /// # let _ = builder;
    /// ```
    pub fn panic_policy(mut self, policy: PanicPolicy) -> GroupBuilder {
        self.panic_policy = policy;
        self
    }

    /// Adds a TCP listener on `addr` (`"HOST:PORT"`; port 0 picks one port for all the
    /// group's sockets), spreading connections as `spread` says. `options` is called on
    /// each thread that needs the listener's options (deadlines, limits, framing; their
    /// `max_connections` bounds the whole group's connections of this listener); `factory`
    /// makes each connection's handler on the worker that serves it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Handler, Options, ReactorGroup, Spread};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// let builder = ReactorGroup::builder(4).listen(
    ///     "0.0.0.0:7007",
    ///     Spread::FewestConnections,
    ///     || Options::new().idle_timeout(Some(Duration::from_secs(60))),
    ///     |_peer| Some(Box::new(Session)),
    /// );
    /// # let _ = builder;
    /// ```
    pub fn listen(
        mut self,
        addr: &str,
        spread: Spread,
        options: impl Fn() -> Options + Send + Sync + 'static,
        factory: impl Fn(&Address) -> Option<Box<dyn Handler>> + Send + Sync + 'static,
    ) -> GroupBuilder {
        self.listeners.push((
            addr.to_string(),
            spread,
            Arc::new(options),
            Arc::new(factory),
        ));
        self
    }

    /// Opens the listeners, starts the workers (each runs `setup(reactor, index)` on its
    /// own thread before it serves) and the acceptor, if a listener needs one. Returns once
    /// every thread is ready; if a socket cannot be opened or a `setup` fails, the threads
    /// already started are stopped and the error is returned.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, ReactorGroup};
    ///
    /// struct Ticker;
    /// impl Handler for Ticker {}
    ///
    /// // A virtual handle on every worker, made on its thread.
    /// let group = ReactorGroup::builder(3).start(|reactor, index| {
    ///     reactor.add_handler(Ticker);
    ///     println!("worker {index} ready");
    ///     Ok(())
    /// })?;
    /// group.stop();
    /// group.join()?;
    /// # Ok(()) }
    /// ```
    pub fn start(
        self,
        setup: impl Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync + 'static,
    ) -> io::Result<ReactorGroup> {
        if self.threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a reactor group needs at least one thread",
            ));
        }
        let specs = self.resolve()?;
        // Every listening socket is opened here, so errors come back at once and port 0
        // means one port: the first socket's.
        let mut kernel_fds: Vec<Vec<(usize, OwnedFd)>> =
            (0..self.threads).map(|_| Vec::new()).collect();
        let mut balanced_fds = Vec::new();
        let mut addrs = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let mut addr = spec.addr;
            match spec.spread {
                Spread::Kernel => {
                    for fds in kernel_fds.iter_mut() {
                        let socket = listening_socket(addr, true)?;
                        addr = socket.local_addr()?.as_socket().unwrap_or(addr);
                        fds.push((i, OwnedFd::from(socket)));
                    }
                }
                Spread::FewestConnections => {
                    let socket = listening_socket(addr, false)?;
                    addr = socket.local_addr()?.as_socket().unwrap_or(addr);
                    balanced_fds.push((i, OwnedFd::from(socket)));
                }
            }
            addrs.push(addr);
        }
        let specs: Arc<[ListenerSpec]> = specs.into();
        let cpus = if self.pin {
            sys::sched::allowed_cpus()?
        } else {
            Vec::new()
        };
        let setup = Arc::new(setup);
        let mut group = ReactorGroup {
            workers: Vec::new(),
            acceptor: None,
            addrs,
        };
        for (index, fds) in kernel_fds.into_iter().enumerate() {
            let (ready, started) = mpsc::channel();
            let start = WorkerStart {
                index,
                cpu: (!cpus.is_empty()).then(|| cpus[index % cpus.len()]),
                backend: self.backend,
                panic_policy: self.panic_policy,
                kernel_fds: fds,
                specs: specs.clone(),
            };
            let setup = setup.clone();
            let thread = thread::Builder::new()
                .name(format!("eventmux-worker-{index}"))
                .spawn(move || start.run(&*setup, ready))?;
            let ready = started
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread ended during setup")));
            match ready {
                Ok((remote, intakes)) => group.workers.push(Worker {
                    remote,
                    intakes,
                    seats: Seats::default(),
                    thread: Some(thread),
                }),
                Err(e) => {
                    let _ = thread.join();
                    return Err(e); // dropping the group stops and joins the rest
                }
            }
        }
        if !balanced_fds.is_empty() {
            let links: Arc<[WorkerLink]> = group
                .workers
                .iter()
                .map(|w| WorkerLink {
                    remote: w.remote.clone(),
                    intakes: w.intakes.clone(),
                    seats: w.seats.clone(),
                })
                .collect();
            let (ready, started) = mpsc::channel();
            let backend = self.backend;
            let thread = thread::Builder::new()
                .name("eventmux-acceptor".into())
                .spawn(move || run_acceptor(backend, balanced_fds, specs, links, ready))?;
            match started
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("the acceptor thread ended during setup")))
            {
                Ok(remote) => {
                    group.acceptor = Some((remote, Some(thread)));
                }
                Err(e) => {
                    let _ = thread.join();
                    return Err(e);
                }
            }
        }
        Ok(group)
    }

    /// The listeners with their addresses resolved (TCP only).
    fn resolve(&self) -> io::Result<Vec<ListenerSpec>> {
        self.listeners
            .iter()
            .map(|(addr, spread, options, factory)| {
                let resolved = addr.to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: no address"))
                })?;
                Ok(ListenerSpec {
                    addr: resolved,
                    spread: *spread,
                    options: options.clone(),
                    factory: factory.clone(),
                })
            })
            .collect()
    }
}

/// A listening TCP socket on `addr` (close-on-exec, as socket2 makes them).
fn listening_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(libc::SOMAXCONN)?;
    Ok(socket)
}

/// N reactors on N threads serving the same listeners; see the module docs. Dropping the
/// group stops and joins its threads.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
/// use eventmux::{Context, Handler, Options, ReactorGroup, Spread};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         let _ = ctx.send(data);
///     }
/// }
///
/// let group = ReactorGroup::builder(2)
///     .listen("127.0.0.1:0", Spread::FewestConnections, Options::new, |_| Some(Box::new(Echo)))
///     .start(|_, _| Ok(()))?;
/// let mut client = TcpStream::connect(group.local_addr(0))?;
/// client.write_all(b"hi")?;
/// let mut echo = [0u8; 2];
/// client.read_exact(&mut echo)?;
/// assert_eq!(&echo, b"hi");
/// drop(client);
/// group.shutdown(Duration::from_secs(5)); // each worker drains, then its thread ends
/// group.join()?;
/// # Ok(()) }
/// ```
pub struct ReactorGroup {
    workers: Vec<Worker>,
    /// The acceptor's remote and thread, if a listener spreads by fewest connections.
    acceptor: Option<(Remote, Option<JoinHandle<io::Result<()>>>)>,
    addrs: Vec<SocketAddr>,
}

/// One worker, as the group sees it.
struct Worker {
    remote: Remote,
    /// Per group listener: the worker's intake for handed connections (fewest-connections
    /// listeners only).
    intakes: Vec<Option<Token>>,
    /// Its open connections that the acceptor handed it.
    seats: Seats,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ReactorGroup {
    /// A builder for `threads` worker reactors.
    ///
    /// ```
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let builder = eventmux::ReactorGroup::builder(cores);
    /// # let _ = builder;
    /// ```
    pub fn builder(threads: usize) -> GroupBuilder {
        GroupBuilder {
            threads,
            pin: false,
            backend: Backend::from_env(),
            panic_policy: PanicPolicy::default(),
            listeners: Vec::new(),
        }
    }

    /// How many worker reactors there are.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// assert_eq!(group.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether the group has no worker (never, once started).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(1).start(|_, _| Ok(()))?;
    /// assert!(!group.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The address group listener `listener` (in the order they were added) listens on.
    /// Panics if there is no such listener.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Options, ReactorGroup, Spread};
    /// let group = ReactorGroup::builder(2)
    ///     .listen("127.0.0.1:0", Spread::Kernel, Options::new, |_| None)
    ///     .start(|_, _| Ok(()))?;
    /// assert_ne!(group.local_addr(0).port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self, listener: usize) -> SocketAddr {
        self.addrs[listener]
    }

    /// A [`Remote`] to worker `worker`, for work from other threads. Panics if there is no
    /// such worker.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// group.remote(1).run(|ctx| println!("on worker 1: {} handles", ctx.tokens().count()))?;
    /// # Ok(()) }
    /// ```
    pub fn remote(&self, worker: usize) -> &Remote {
        &self.workers[worker].remote
    }

    /// The connections the acceptor handed to worker `worker` that are still open (those
    /// of [`Spread::FewestConnections`] listeners). Panics if there is no such worker.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// assert_eq!(group.connections(0), 0);
    /// # Ok(()) }
    /// ```
    pub fn connections(&self, worker: usize) -> usize {
        self.workers[worker].seats.count()
    }

    /// Stops every reactor: each closes all its handles at once (`on_close` with
    /// [`CloseReason::Shutdown`](crate::CloseReason)) and its thread ends. Then
    /// [`join`](ReactorGroup::join).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// group.stop();
    /// group.join()?;
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) {
        for remote in self.remotes() {
            let _ = remote.stop();
        }
    }

    /// Graceful shutdown of every reactor ([`Reactor::shutdown`] on each): listeners close
    /// at once, the acceptor's first, and each worker's thread ends once its connections
    /// are done or `grace` is over. Then [`join`](ReactorGroup::join).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// group.shutdown(std::time::Duration::from_secs(10));
    /// group.join()?;
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self, grace: Duration) {
        for remote in self.remotes() {
            let _ = remote.shutdown(grace);
        }
    }

    /// Whether every thread of the group has ended (after `stop` or `shutdown`, or a
    /// panic under [`PanicPolicy::Propagate`] in each).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// assert!(!group.is_finished());
    /// group.stop();
    /// while !group.is_finished() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_finished(&self) -> bool {
        let acceptor = self.acceptor.iter().filter_map(|(_, t)| t.as_ref());
        let workers = self.workers.iter().filter_map(|w| w.thread.as_ref());
        acceptor.chain(workers).all(JoinHandle::is_finished)
    }

    /// Waits for every thread of the group to end (after `stop` or `shutdown`). Returns the
    /// first error a reactor's `run()` returned, or the panic of one that panicked (under
    /// [`PanicPolicy::Propagate`]), naming its thread.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let group = eventmux::ReactorGroup::builder(2).start(|_, _| Ok(()))?;
    /// group.stop();
    /// assert!(group.join().is_ok());
    /// # Ok(()) }
    /// ```
    pub fn join(mut self) -> io::Result<()> {
        self.join_threads()
    }

    /// The acceptor's remote first (so its listeners close before the workers'), then the
    /// workers'.
    fn remotes(&self) -> impl Iterator<Item = &Remote> {
        self.acceptor
            .iter()
            .map(|(remote, _)| remote)
            .chain(self.workers.iter().map(|w| &w.remote))
    }

    fn join_threads(&mut self) -> io::Result<()> {
        let acceptor = self.acceptor.as_mut().and_then(|(_, t)| t.take());
        let workers = self.workers.iter_mut().filter_map(|w| w.thread.take());
        let mut first = Ok(());
        for thread in acceptor.into_iter().chain(workers) {
            let name = thread.thread().name().unwrap_or("eventmux").to_string();
            let outcome = match thread.join() {
                Ok(result) => result,
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(non-string payload)".into());
                    Err(io::Error::other(format!("{name} panicked: {message}")))
                }
            };
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }
}

impl Drop for ReactorGroup {
    /// Stops and joins whatever is still running.
    fn drop(&mut self) {
        let running = self.workers.iter().any(|w| w.thread.is_some())
            || self.acceptor.as_ref().is_some_and(|(_, t)| t.is_some());
        if running {
            self.stop();
            let _ = self.join_threads();
        }
    }
}

impl std::fmt::Debug for ReactorGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactorGroup")
            .field("workers", &self.workers.len())
            .field("acceptor", &self.acceptor.is_some())
            .field("addrs", &self.addrs)
            .finish()
    }
}

/// What a worker thread starts with.
struct WorkerStart {
    index: usize,
    cpu: Option<usize>,
    backend: Backend,
    panic_policy: PanicPolicy,
    /// Its own `SO_REUSEPORT` sockets, by group listener.
    kernel_fds: Vec<(usize, OwnedFd)>,
    specs: Arc<[ListenerSpec]>,
}

/// What a worker reports once it is ready: its remote and its intakes.
type WorkerReady = io::Result<(Remote, Vec<Option<Token>>)>;

impl WorkerStart {
    /// The worker thread: set up, report ready, serve until stopped, then close what is
    /// left so that every handler hears `on_close` once.
    fn run(
        self,
        setup: &(dyn Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync),
        ready: mpsc::Sender<WorkerReady>,
    ) -> io::Result<()> {
        // Signals are for the thread that reads a signalfd.
        sys::signal::block_all();
        let mut reactor = match self.prepare(setup) {
            Ok((reactor, remote, intakes)) => {
                let _ = ready.send(Ok((remote, intakes)));
                reactor
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(());
            }
        };
        let result = reactor.run();
        reactor.shutdown(Duration::ZERO);
        let _ = reactor.run();
        result
    }

    fn prepare(
        self,
        setup: &(dyn Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync),
    ) -> io::Result<(Reactor, Remote, Vec<Option<Token>>)> {
        if let Some(cpu) = self.cpu {
            if let Err(e) = sys::sched::pin_to(cpu) {
                log::warn!("worker {}: pinning to CPU {cpu} failed: {e}", self.index);
            }
        }
        let mut reactor = Reactor::with_backend(self.backend)?;
        reactor.set_panic_policy(self.panic_policy);
        // A reactor returns from run() once it has no handle; a worker serves until the
        // group stops it, whatever it holds meanwhile.
        reactor.add_handler(Anchor);
        for (i, fd) in self.kernel_fds {
            let spec = &self.specs[i];
            let listener = FactoryListener {
                factory: spec.factory.clone(),
            };
            reactor.add(fd, (spec.options)(), listener)?;
        }
        let intakes = self
            .specs
            .iter()
            .map(|spec| {
                (spec.spread == Spread::FewestConnections).then(|| {
                    reactor.add_handler(Intake {
                        factory: spec.factory.clone(),
                        options: Rc::new((spec.options)()),
                    })
                })
            })
            .collect();
        setup(&mut reactor, self.index)?;
        let remote = reactor.remote()?;
        Ok((reactor, remote, intakes))
    }
}

/// Keeps a worker's reactor running while it has nothing else (a virtual handle, closed by
/// the group's shutdown like any other).
struct Anchor;

impl Handler for Anchor {}

/// A worker's own listener of a [`Spread::Kernel`] group listener.
struct FactoryListener {
    factory: Arc<Factory>,
}

impl Handler for FactoryListener {
    fn on_accept(&mut self, _: &mut Context<'_>, incoming: &Incoming) -> Option<Box<dyn Handler>> {
        (self.factory)(incoming.address())
    }
}

/// A worker's end of a [`Spread::FewestConnections`] listener: a virtual handle holding
/// the factory and the options its handed connections share.
struct Intake {
    factory: Arc<Factory>,
    options: Rc<Options>,
}

impl Handler for Intake {}

/// The acceptor's view of one worker.
struct WorkerLink {
    remote: Remote,
    intakes: Vec<Option<Token>>,
    seats: Seats,
}

/// The acceptor thread: one reactor whose listeners accept by hand and pass each
/// connection on.
fn run_acceptor(
    backend: Backend,
    fds: Vec<(usize, OwnedFd)>,
    specs: Arc<[ListenerSpec]>,
    links: Arc<[WorkerLink]>,
    ready: mpsc::Sender<io::Result<Remote>>,
) -> io::Result<()> {
    sys::signal::block_all();
    let prepared = (|| {
        let mut reactor = Reactor::with_backend(backend)?;
        for (i, fd) in fds {
            let limit = (specs[i].options)().connection_limit();
            let balancer = Balancer {
                listener: i,
                links: links.clone(),
                limit,
            };
            reactor.add(fd, Options::new().manual_accept(true), balancer)?;
        }
        let remote = reactor.remote()?;
        Ok::<_, io::Error>((reactor, remote))
    })();
    let mut reactor = match prepared {
        Ok((reactor, remote)) => {
            let _ = ready.send(Ok(remote));
            reactor
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    let result = reactor.run();
    reactor.shutdown(Duration::ZERO);
    let _ = reactor.run();
    result
}

/// Accepts for one [`Spread::FewestConnections`] listener and hands each connection to the
/// worker with the fewest open.
struct Balancer {
    listener: usize,
    links: Arc<[WorkerLink]>,
    /// The listener's connection limit, across the workers.
    limit: usize,
}

/// Accepts per readiness report before the other handles get a turn.
const ACCEPTS_PER_VISIT: usize = 64;

impl Handler for Balancer {
    fn on_accepting(&mut self, ctx: &mut Context<'_>) {
        for _ in 0..ACCEPTS_PER_VISIT {
            match ctx.accept() {
                Ok(Some((fd, peer))) => self.hand_over(fd, peer),
                Ok(None) => return,
                // Descriptor exhaustion pauses accepting (the registry backs off).
                Err(e) => {
                    log::warn!("{}: accept: {e}", ctx.token());
                    return;
                }
            }
        }
    }
}

impl Balancer {
    fn hand_over(&self, fd: OwnedFd, peer: Address) {
        let open: usize = self.links.iter().map(|l| l.seats.count()).sum();
        if open >= self.limit {
            log::debug!("group listener {}: connection limit reached", self.listener);
            return; // closed: the peer sees the end of stream at once
        }
        let Some(link) = self.links.iter().min_by_key(|l| l.seats.count()) else {
            return;
        };
        let Some(intake) = link.intakes[self.listener] else {
            return;
        };
        // Counted now, so that a burst of accepts spreads before the workers catch up.
        let seat = link.seats.take();
        let handed = link
            .remote
            .run(move |ctx| ctx.registry_mut().admit_handed(intake, fd, peer, seat));
        if let Err(e) = handed {
            log::warn!(
                "group listener {}: handing a connection over: {e}",
                self.listener
            );
        }
    }
}

impl Registry {
    /// A connection the acceptor handed to this worker (accepted non-blocking and
    /// close-on-exec): its handler comes from the intake's factory, its options are the
    /// intake's, and `on_connect` follows.
    fn admit_handed(&mut self, intake: Token, fd: OwnedFd, peer: Address, seat: Seat) {
        let Some(Intake { factory, options }) = self.handler_mut::<Intake>(intake) else {
            return; // the worker is shutting down: the connection closes
        };
        let (factory, options) = (factory.clone(), options.clone());
        let Some(handler) = factory(&peer) else {
            return;
        };
        if options.nodelay {
            let _ = socket2::SockRef::from(&fd).set_tcp_nodelay(true);
        }
        let shape = Shape::socket(Kind::Stream, Transport::Tcp);
        let mut entry = Entry::new(shape, Some(fd), options, true);
        entry.sole_owner = true;
        if let State::Stream(stream) = &mut entry.state {
            stream._seat = Some(seat);
        }
        match self.insert(entry, handler) {
            Ok(token) => self.deferred.push_back(Deferred::Connect(token)),
            Err(e) => log::warn!("registering a handed connection: {e}"),
        }
    }
}
