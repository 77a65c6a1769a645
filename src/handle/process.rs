//! Child process handles: [`Reactor::spawn`](crate::Reactor::spawn) starts a `Command`,
//! opens a pidfd for it (the process handle, [`Kind::Process`]) and adds each pipe the
//! command asked for as a stream handle. One user handler serves them all: every slot of
//! the child holds a [`ChildPart`] that forwards to it, so each handle keeps the usual
//! slot, lifecycle and token, and a callback knows which pipe it is for
//! ([`Context::stdio`](crate::Context::stdio)).
//!
//! The exit is delivered last. The pidfd turns readable when the child exits; the reactor
//! reaps it at once (`waitpid` through `Child::try_wait`: no zombie, no SIGCHLD handler),
//! closes the stdin pipe (nobody reads it any more), and holds `on_exit` until every pipe of
//! the child has closed, so output still in a pipe at exit is all delivered first.
//!
//! Closing the process handle asks the child to end (SIGTERM) and waits for its exit as
//! above, up to the linger time; killing it (or a linger that runs out) sends SIGKILL and
//! frees the slot at once, leaving the reaping to [`Orphans`]: their pidfds are watched
//! under one reserved key, so no child of the reactor is ever left a zombie.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, ExitStatus};
use std::rc::Rc;

use super::{Entry, Kind, Life, Shape, State, Transport};
use crate::context::ChildLink;
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::{Deferred, Registry};
use crate::selector::{Interest, Ready, Selector, Trigger};
use crate::sys;
use crate::{
    Address, ChildHandles, ChildStdio, CloseReason, Context, Error, Handler, Incoming, Options,
    Packet, Reactor, Signal, TimerId, Token, Watermark,
};

/// The selector key every orphan's pidfd is registered under (beside the waker's).
pub(crate) const ORPHANS_KEY: u64 = u64::MAX - 2;

/// What a process handle holds besides its pidfd.
pub(crate) struct ProcessSlot {
    /// `None` once reaped (or handed to the orphans).
    child: Option<Child>,
    pub(crate) handles: ChildHandles,
    /// The child's pipes still open: `on_exit` waits for none to be left.
    pipes_open: u8,
    /// Reaped, `on_exit` not yet delivered.
    status: Option<ExitStatus>,
}

impl ProcessSlot {
    /// Whether the child has been reaped (signalling it now could reach a reused pid).
    pub(crate) fn reaped(&self) -> bool {
        self.child.is_none()
    }
}

impl Drop for ProcessSlot {
    /// A process handle dropped with its child still running (the reactor itself was
    /// dropped): the child goes with it, killed and reaped, never left a zombie.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Children whose process handle was killed before they exited: SIGKILLed, waiting to be
/// reaped.
#[derive(Default)]
pub(crate) struct Orphans {
    children: Vec<(Child, OwnedFd)>,
}

impl Orphans {
    /// Kills `child` and watches its pidfd until it can be reaped.
    fn adopt(&mut self, selector: &dyn Selector, mut child: Child, pidfd: OwnedFd) {
        let _ = sys::pidfd::send_signal(pidfd.as_fd(), libc::SIGKILL);
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Level: the pidfd is deregistered as soon as the child is reaped.
        let read = Interest {
            read: true,
            write: false,
        };
        match selector.register(pidfd.as_fd(), ORPHANS_KEY, read, Trigger::Level) {
            Ok(()) => self.children.push((child, pidfd)),
            Err(e) => {
                // Nothing will tell us when it exits; SIGKILL makes that moments away.
                log::warn!(
                    "pid {}: watching an orphan failed ({e}); reaping it now",
                    child.id()
                );
                let _ = child.wait();
            }
        }
    }

    /// Reaps every orphan that has exited (one of their pidfds turned readable).
    pub(crate) fn reap(&mut self, selector: &dyn Selector) {
        self.children.retain_mut(|(child, pidfd)| {
            let gone = !matches!(child.try_wait(), Ok(None));
            if gone {
                let _ = selector.deregister(pidfd.as_fd());
            }
            !gone
        });
    }
}

impl Drop for Orphans {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            // SIGKILLed already: the wait is short.
            let _ = child.wait();
        }
    }
}

impl Registry {
    /// Starts `command` and registers its process and pipes; see
    /// [`Reactor::spawn`](crate::Reactor::spawn).
    pub(crate) fn spawn(
        &mut self,
        command: &mut Command,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<ChildHandles> {
        let mut child = command.spawn()?;
        let pidfd = match sys::pidfd::open(child.id()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let pipes: [(Option<OwnedFd>, ChildStdio); 3] = [
            (child.stdin.take().map(OwnedFd::from), ChildStdio::Stdin),
            (child.stdout.take().map(OwnedFd::from), ChildStdio::Stdout),
            (child.stderr.take().map(OwnedFd::from), ChildStdio::Stderr),
        ];
        let shared = Rc::new(RefCell::new(handler));
        let pid = child.id();
        let shape = Shape {
            kind: Kind::Process,
            transport: Transport::Other,
            readable_end: true,
            writable_end: false,
            short_read_drains: false,
        };
        // A pidfd turns readable once, at the exit. Not `sole_owner`: a killed process
        // handle's pidfd lives on among the orphans, so it must be deregistered.
        // The framing is for the pipes; the rest (the linger time) serves the process too.
        let mut own = options.clone();
        own.framing = None;
        let entry = Entry::new(shape, Some(pidfd), Rc::new(own), true);
        let process = self.insert(
            entry,
            Box::new(ChildPart {
                shared: shared.clone(),
                stdio: None,
                process: None,
            }),
        );
        let process = match process {
            Ok(token) => token,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut handles = ChildHandles {
            pid,
            process,
            stdin: None,
            stdout: None,
            stderr: None,
        };
        if let Some(entry) = self.entry_mut(process) {
            entry.state = State::Process(Box::new(ProcessSlot {
                child: Some(child),
                handles,
                pipes_open: 0,
                status: None,
            }));
        }
        let mut pipes_open = 0;
        for (fd, stdio) in pipes {
            let Some(fd) = fd else { continue };
            let part = ChildPart {
                shared: shared.clone(),
                stdio: Some(stdio),
                process: Some(process),
            };
            let token = match self.add(fd, options.clone(), Box::new(part)) {
                Ok(token) => token,
                Err(e) => {
                    // Undo: the pipes so far go, and the child is killed and reaped.
                    for token in [handles.stdin, handles.stdout, handles.stderr]
                        .into_iter()
                        .flatten()
                    {
                        self.kill(token, CloseReason::Killed);
                    }
                    self.kill(process, CloseReason::Killed);
                    return Err(e);
                }
            };
            pipes_open += 1;
            match stdio {
                ChildStdio::Stdin => handles.stdin = Some(token),
                ChildStdio::Stdout => handles.stdout = Some(token),
                ChildStdio::Stderr => handles.stderr = Some(token),
            }
        }
        if let Some(State::Process(slot)) = self.entry_mut(process).map(|e| &mut e.state) {
            slot.handles = handles;
            slot.pipes_open = pipes_open;
        }
        log::debug!("{process}: spawned pid {pid}");
        Ok(handles)
    }

    /// The process handle's child, if it has not been reaped: signals reach it through its
    /// pidfd, never a reused pid.
    pub(crate) fn signal_child(&mut self, process: Token, signal: i32) -> Result<(), Error> {
        let entry = self.entry(process).ok_or(Error::StaleToken(process))?;
        let State::Process(slot) = &entry.state else {
            return Err(Error::WrongKind {
                operation: "signal_child",
                kind: entry.kind(),
            });
        };
        let (false, Some(pidfd)) = (slot.reaped(), entry.fd.as_ref()) else {
            // Reaped already: its pid may belong to another process by now.
            return Err(Error::Io(io::Error::from_raw_os_error(libc::ESRCH)));
        };
        sys::pidfd::send_signal(pidfd.as_fd(), signal).map_err(Error::Io)
    }

    /// Graceful close of a process handle: SIGTERM, then the exit as usual; the linger
    /// timer (set by `close_with`) kills it if it does not come.
    pub(crate) fn close_process(&mut self, token: Token) {
        if let Err(e) = self.signal_child(token, libc::SIGTERM) {
            log::debug!("{token}: asking the child to end: {e}");
        }
    }

    /// One of a child's pipes has closed: the exit may now be delivered.
    fn pipe_closed(&mut self, process: Token) {
        let Some(State::Process(slot)) = self.entry_mut(process).map(|e| &mut e.state) else {
            return;
        };
        slot.pipes_open = slot.pipes_open.saturating_sub(1);
        if slot.pipes_open == 0 && slot.status.is_some() {
            self.deferred.push_back(Deferred::Exit(process));
        }
    }

    /// A process handle is being finalized: a child not yet reaped is killed and left to
    /// the orphans.
    pub(crate) fn orphan(&mut self, entry: &mut Entry) {
        let State::Process(slot) = &mut entry.state else {
            return;
        };
        let (Some(child), Some(pidfd)) = (slot.child.take(), entry.fd.take()) else {
            return;
        };
        let Registry {
            orphans, selector, ..
        } = self;
        orphans.adopt(&**selector, child, pidfd);
    }
}

impl Reactor {
    /// One visit of a ready process handle: the child has exited; reap it.
    pub(crate) fn drive_process(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        if entry.life == Life::Dying || !entry.ready.readable() {
            return;
        }
        entry.ready.remove(Ready::READABLE);
        let State::Process(slot) = &mut entry.state else {
            return;
        };
        let Some(child) = slot.child.as_mut() else {
            return;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                log::debug!("{token}: pid {} exited: {status}", child.id());
                slot.child = None;
                slot.status = Some(status);
                let (stdin, waiting) = (slot.handles.stdin, slot.pipes_open);
                // A reaped child's pidfd stays readable and says nothing more: stop
                // watching it (level-triggered backends would report it every turn).
                if let Some(entry) = self.registry.entry_mut(token) {
                    entry.paused = true;
                }
                self.registry.update_interest(token);
                // Nobody reads the child's input any more.
                if let Some(stdin) = stdin.filter(|&t| self.registry.entry(t).is_some()) {
                    self.registry.kill(stdin, CloseReason::PeerClosed);
                }
                if waiting == 0 {
                    self.registry.deferred.push_back(Deferred::Exit(token));
                }
            }
            Ok(None) => {} // not yet (a spurious wakeup)
            Err(e) => self.registry.fail(token, Error::Io(e)),
        }
    }

    /// Delivers `on_exit` to a reaped child whose pipes have all closed, then closes its
    /// process handle.
    pub(crate) fn deliver_exit(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let State::Process(slot) = &mut entry.state else {
            return;
        };
        let Some(status) = slot.status.take() else {
            return;
        };
        let reason = match entry.life {
            Life::Closing { reason } | Life::Lingering { reason } => reason,
            Life::Open => CloseReason::Exited,
            Life::Dying => return,
        };
        dispatch(&mut self.registry, token, |h, ctx| h.on_exit(ctx, status));
        self.registry.kill(token, reason);
    }
}

/// The handler in each slot of a child: forwards every callback to the one handler the
/// user gave [`Reactor::spawn`](crate::Reactor::spawn), telling the context which of the
/// child's handles it is for. Every `Handler` method is forwarded, so a method added to
/// the trait must be added here too.
struct ChildPart {
    shared: Rc<RefCell<Box<dyn Handler>>>,
    /// `None` for the process handle.
    stdio: Option<ChildStdio>,
    /// The process handle (`None`: this is it).
    process: Option<Token>,
}

impl ChildPart {
    fn forward<R>(
        &mut self,
        ctx: &mut Context<'_>,
        f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
    ) -> R {
        let link = ChildLink {
            process: self.process.unwrap_or(ctx.token()),
            stdio: self.stdio,
        };
        let token = ctx.token();
        let before = ctx.registry_mut().child_link.replace((token, link));
        // Callbacks never nest, so the handler is never borrowed already; a panic in `f`
        // unwinds through the borrow and releases it (and leaves a link that names only
        // the handle it killed).
        let result = f(&mut **self.shared.borrow_mut(), ctx);
        ctx.registry_mut().child_link = before;
        result
    }
}

impl Handler for ChildPart {
    fn on_accept(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        self.forward(ctx, |h, ctx| h.on_accept(ctx, incoming))
    }
    fn on_accepting(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_accepting(ctx))
    }
    fn on_connect(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_connect(ctx))
    }
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.forward(ctx, |h, ctx| h.on_read(ctx, data))
    }
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        self.forward(ctx, |h, ctx| h.on_datagram(ctx, data, from))
    }
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        self.forward(ctx, |h, ctx| h.on_packet(ctx, packet))
    }
    fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn std::any::Any + Send>) {
        self.forward(ctx, |h, ctx| h.on_user_event(ctx, event))
    }
    fn on_read_last(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.forward(ctx, |h, ctx| h.on_read_last(ctx, data))
    }
    fn on_sent(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_sent(ctx))
    }
    fn on_readable(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_readable(ctx))
    }
    fn on_writable(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_writable(ctx))
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        self.forward(ctx, |h, ctx| h.on_timer(ctx, timer))
    }
    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        self.forward(ctx, |h, ctx| h.on_error(ctx, error))
    }
    fn on_closing(&mut self, ctx: &mut Context<'_>, missing: usize) {
        self.forward(ctx, |h, ctx| h.on_closing(ctx, missing))
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {
        // Counted first, so that a panic in on_close cannot hold the exit back (it is
        // delivered after this callback anyway).
        if let Some(process) = self.process {
            ctx.registry_mut().pipe_closed(process);
        }
        self.forward(ctx, |h, ctx| h.on_close(ctx, reason));
    }
    fn on_watermark(&mut self, ctx: &mut Context<'_>, mark: Watermark) {
        self.forward(ctx, |h, ctx| h.on_watermark(ctx, mark))
    }
    fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &Signal) {
        self.forward(ctx, |h, ctx| h.on_signal(ctx, signal))
    }
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.forward(ctx, |h, ctx| h.on_shutdown(ctx))
    }
    fn on_fds(&mut self, ctx: &mut Context<'_>, fds: Vec<OwnedFd>) {
        self.forward(ctx, |h, ctx| h.on_fds(ctx, fds))
    }
    fn on_exit(&mut self, ctx: &mut Context<'_>, status: ExitStatus) {
        self.forward(ctx, |h, ctx| h.on_exit(ctx, status))
    }
}
