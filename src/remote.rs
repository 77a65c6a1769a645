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
    pub fn run(&self, f: impl FnOnce(&mut Context<'_>) + Send + 'static) -> Result<(), Error> {
        self.post(Command::Run(Box::new(f)))
    }

    /// Delivers `event` to the handler of `token` through
    /// [`Handler::on_user_event`](crate::Handler::on_user_event).
    pub fn push_event(&self, token: Token, event: impl Any + Send) -> Result<(), Error> {
        self.post(Command::Event(token, Box::new(event)))
    }

    /// Queues `data` on the handle `token`, as its handler's `send` would.
    pub fn send(&self, token: Token, data: impl Into<Bytes>) -> Result<(), Error> {
        self.post(Command::Send(token, data.into()))
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after its current turn.
    pub fn stop(&self) -> Result<(), Error> {
        self.post(Command::Stop)
    }

    /// Commands that named a handle that was gone (or refused the bytes) by the time they
    /// were carried out.
    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// How many times other threads (remotes and pump threads of this reactor) had to
    /// write the reactor's eventfd to wake it. Work handed over while the reactor is busy
    /// costs none: it is picked up before the reactor next waits.
    pub fn wakeups(&self) -> u64 {
        self.waker.signals()
    }
}
