//! [`Remote`]: a `Send + Clone` handle through which any thread feeds the reactor: run a
//! closure on the reactor thread, push a user event to a handle (EventMux's `push_event`),
//! send bytes to a handle, or stop the reactor. Commands travel through one bounded
//! crossbeam channel and wake the reactor through the same coalescing [`Waker`] as pumps.
//! A command for a token whose handle is gone is counted ([`Remote::undelivered`]) and
//! logged, never delivered to whoever reuses the slot. The reactor's end is the
//! [`RemoteInbox`], drained in `reactor/handoff.rs`.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use crate::waker::Waker;
use crate::{Context, Error, Token};

/// How many commands the channel holds before senders wait.
const REMOTE_CAPACITY: usize = 64 * 1024;

/// The reactor's end of the channel all of its [`Remote`]s share.
pub(crate) struct RemoteInbox {
    pub(crate) commands: Receiver<Command>,
    sender: Sender<Command>,
    pub(crate) undelivered: Arc<AtomicU64>,
}

impl RemoteInbox {
    pub(crate) fn new() -> RemoteInbox {
        let (sender, commands) = crossbeam_channel::bounded(REMOTE_CAPACITY);
        RemoteInbox {
            commands,
            sender,
            undelivered: Arc::default(),
        }
    }

    /// A new remote feeding this inbox, waking the reactor through `waker`.
    pub(crate) fn remote(&self, waker: Arc<Waker>) -> Remote {
        Remote {
            commands: self.sender.clone(),
            waker,
            undelivered: self.undelivered.clone(),
        }
    }
}

/// What a [`Remote`] asks of the reactor thread.
pub(crate) enum Command {
    Run(Box<dyn FnOnce(&mut Context<'_>) + Send>),
    Event(Token, Box<dyn Any + Send>),
    Send(Token, Bytes),
    Stop,
    Shutdown(std::time::Duration),
}

/// Feeds a [`Reactor`](crate::Reactor) from other threads; get one with
/// [`Reactor::remote`](crate::Reactor::remote). Commands from one thread are carried out in
/// the order they were sent. When the channel is full, calls wait for room; when the reactor
/// is gone they fail with [`Error::Disconnected`].
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::any::Any;
/// use eventmux::{Context, Handler, Reactor};
///
/// struct Counter { total: u64 }
/// impl Handler for Counter {
///     fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
///         if let Ok(n) = event.downcast::<u64>() {
///             self.total += *n;
///             if self.total == 6 { ctx.kill(); }
///         }
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let counter = reactor.add_handler(Counter { total: 0 });
/// let remote = reactor.remote()?;
/// let worker = std::thread::spawn(move || {
///     for n in 1..=3u64 { remote.push_event(counter, n).unwrap(); }
/// });
/// reactor.run()?; // returns once the counter kills itself
/// worker.join().unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Remote {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    undelivered: Arc<AtomicU64>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("undelivered", &self.undelivered())
            .field("wakeups", &self.wakeups())
            .finish_non_exhaustive()
    }
}

impl Remote {
    fn post(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .map_err(|_| Error::Disconnected)?;
        self.waker.wake();
        Ok(())
    }

    /// Runs `f` on the reactor thread with a [`Context`] (whose own token names no handle:
    /// reach handles with [`Context::handle`]).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.add_handler(Session);
    /// let remote = reactor.remote()?;
    /// // A shutdown thread closes every handle; run() returns once none is left.
    /// let shutdown = std::thread::spawn(move || {
    ///     remote.run(|ctx| {
    ///         let all: Vec<_> = ctx.tokens().collect();
    ///         for token in all {
    ///             if let Some(mut handle) = ctx.handle(token) {
    ///                 handle.close();
    ///             }
    ///         }
    ///     })
    /// });
    /// reactor.run()?;
    /// shutdown.join().unwrap()?;
    /// # Ok(()) }
    /// ```
    pub fn run(&self, f: impl FnOnce(&mut Context<'_>) + Send + 'static) -> Result<(), Error> {
        self.post(Command::Run(Box::new(f)))
    }

    /// Delivers `event` to the handler of `token` through
    /// [`Handler::on_user_event`](crate::Handler::on_user_event).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::any::Any;
    /// use eventmux::{Context, Handler, Reactor};
    ///
    /// /// What a worker thread reports.
    /// struct Done(String);
    ///
    /// /// Hears from worker threads, and stops once both jobs are done.
    /// struct Jobs { left: usize }
    /// impl Handler for Jobs {
    ///     fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
    ///         if let Ok(done) = event.downcast::<Done>() {
    ///             println!("{} done", done.0);
    ///             self.left -= 1;
    ///             if self.left == 0 {
    ///                 ctx.stop();
    ///             }
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let jobs = reactor.add_handler(Jobs { left: 2 });
    /// for name in ["resize", "upload"] {
    ///     let remote = reactor.remote()?;
    ///     std::thread::spawn(move || remote.push_event(jobs, Done(name.into())));
    /// }
    /// reactor.run()?;
    /// # Ok(()) }
    /// ```
    pub fn push_event(&self, token: Token, event: impl Any + Send) -> Result<(), Error> {
        self.post(Command::Event(token, Box::new(event)))
    }

    /// Queues `data` on the handle `token`, as its handler's `send` would.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Client;
    /// impl Handler for Client {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut peer) = UnixStream::pair()?;
    /// # peer.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// let client = reactor.add(ours, Options::new(), Client)?;
    /// let remote = reactor.remote()?;
    /// // A worker thread answers the client when its job is done.
    /// std::thread::spawn(move || remote.send(client, "result: 42\n")).join().unwrap()?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut answer = [0; 11];
    /// peer.read_exact(&mut answer)?;
    /// assert_eq!(&answer, b"result: 42\n");
    /// # Ok(()) }
    /// ```
    pub fn send(&self, token: Token, data: impl Into<Bytes>) -> Result<(), Error> {
        self.post(Command::Send(token, data.into()))
    }

    /// Starts a graceful shutdown of the reactor; see
    /// [`Reactor::shutdown`](crate::Reactor::shutdown).
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
    /// let remote = reactor.remote()?;
    /// std::thread::spawn(move || remote.shutdown(Duration::from_secs(1)))
    ///     .join()
    ///     .unwrap()
    ///     .unwrap();
    /// reactor.run()?; // drained and returned
    /// # Ok(()) }
    /// ```
    pub fn shutdown(&self, grace: std::time::Duration) -> Result<(), Error> {
        self.post(Command::Shutdown(grace))
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after its current turn.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen("127.0.0.1:0", Server)?; // would keep run() going for ever
    /// let remote = reactor.remote()?;
    /// // E.g. a thread that waits for SIGTERM.
    /// let stopper = std::thread::spawn(move || remote.stop());
    /// reactor.run()?; // returns once the other thread has stopped it
    /// stopper.join().unwrap()?;
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) -> Result<(), Error> {
        self.post(Command::Stop)
    }

    /// Commands that named a handle that was gone (or refused the bytes) by the time they
    /// were carried out.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let remote = reactor.remote()?;
    /// let session = reactor.add_handler(Session);
    /// reactor.handle(session).unwrap().kill();
    /// reactor.run_once(Some(Duration::ZERO))?; // the session is gone
    /// remote.push_event(session, "too late")?;
    /// reactor.run_once(Some(Duration::ZERO))?;
    /// assert_eq!(remote.undelivered(), 1); // counted, never given to a new owner of the slot
    /// # Ok(()) }
    /// ```
    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// How many times other threads (remotes and pump threads of this reactor) had to
    /// write the reactor's eventfd to wake it. Work handed over while the reactor is busy
    /// costs none: it is picked up before the reactor next waits.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Reactor};
    ///
    /// struct Worker;
    /// impl Handler for Worker {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let worker = reactor.add_handler(Worker);
    /// let remote = reactor.remote()?;
    /// // 100 events while the reactor is not waiting: one eventfd write serves them all.
    /// for n in 0..100 {
    ///     remote.push_event(worker, n)?;
    /// }
    /// reactor.run_once(Some(Duration::ZERO))?;
    /// assert_eq!(remote.wakeups(), 1);
    /// # Ok(()) }
    /// ```
    pub fn wakeups(&self) -> u64 {
        self.waker.signals()
    }
}
