//! The registry: the slab of handle slots, their generations, the scheduling lists (ready,
//! dirty, deferred work) and every handle's lifecycle: graceful close and linger, kill,
//! remove, failure. It also admits output into a handle's queue, since a send that breaks
//! the output bound is a lifecycle event of that handle.
//!
//! The registry never calls a handler and knows no driving code. Whatever must be reported
//! (an error, a close) is queued as a [`Deferred`] and delivered by the reactor once the
//! running callback has returned, which is what makes it safe for a handler to close, kill,
//! remove or add any handle, itself included, from inside any callback.

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use slab::Slab;
use socket2::SockRef;

use crate::context::ChildLink;
use crate::deadline::{millis, reached, Clock};
use crate::handle::buffer_pool::BufferPool;
use crate::handle::fd_passing::Attachments;
use crate::handle::process::Orphans;
use crate::handle::slot::Seats;
use crate::handle::stream::EARLY_FLUSH;
use crate::handle::{Entry, Kind, Life, State};
use crate::selector::{Selector, Trigger};
use crate::timer::{TimerPurpose, Timers};
use crate::{
    Address, CloseReason, Credentials, Deadline, Error, Handler, PanicPolicy, PumpStats, TimerId,
    Token, Watermark,
};

/// Work the reactor does after the current callback returns.
pub(crate) enum Deferred {
    /// Deliver `on_error`.
    Error(Token, Error),
    /// Run `on_closing` and `on_close`, then drop the handle.
    Finalize(Token, CloseReason),
    /// Start a graceful close (after an error the handler could still answer).
    Close(Token, CloseReason),
    /// Deliver `on_connect` to an added socket that was connected already.
    Connect(Token),
    /// Deliver `on_watermark`.
    Watermark(Token, Watermark),
    /// Deliver `on_shutdown`.
    Shutdown(Token),
    /// Deliver `on_exit` to a reaped child whose pipes have all closed.
    Exit(Token),
}

pub(crate) struct Registry {
    pub(crate) entries: Slab<Entry>,
    pub(crate) selector: Box<dyn Selector>,
    pub(crate) timers: Timers,
    pub(crate) deferred: VecDeque<Deferred>,
    /// Handles with readiness to act on, in arrival order.
    pub(crate) ready: Vec<Token>,
    /// Handles whose output grew since the last flush.
    pub(crate) dirty: Vec<Token>,
    /// Where drained queues leave their buffers for the next send.
    pub(crate) buffers: BufferPool,
    pub(crate) stopped: bool,
    pub(crate) panic_policy: PanicPolicy,
    /// A caught panic waiting to be resumed ([`PanicPolicy::Propagate`]).
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// The final counters of the pump being finalized, for its `on_closing`/`on_close`.
    pub(crate) closed_pump: Option<(Token, PumpStats)>,
    /// Killed children not reaped yet (see `handle/process.rs`).
    pub(crate) orphans: Orphans,
    /// Every TLS stream's session (see `handle/tls.rs`).
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::handle::tls::TlsSessions,
    /// Which spawned child's handle the running callback is for (see `Context::stdio`).
    pub(crate) child_link: Option<(Token, ChildLink)>,
    /// Descriptors queued by `send_fds`, waiting for their bytes' turn.
    pub(crate) attachments: Attachments,
    next_generation: u32,
    /// This reactor's identity, carried by every token it makes.
    pub(crate) id: u32,
    /// The coarse clock handles' activity is stamped with.
    pub(crate) clock: Clock,
    /// Refused connections still closing (see `handle/listener.rs`).
    pub(crate) refusals: Seats,
    /// A graceful shutdown under way: when its grace time ends, on the clock.
    pub(crate) shutdown_until: Option<u32>,
    /// How often the deadlines are swept (a quarter of the shortest in use, 10 to 500 ms),
    /// and when next; `None` while no handle has a deadline.
    sweep_every: Option<u32>,
    /// A send took some queue to `EARLY_FLUSH` or past it (the read that caused it writes
    /// its queue at once: `read_stream`).
    pub(crate) early_flush: bool,
    next_sweep: u32,
}

/// Reactor identities handed out so far in this process.
static REACTORS: AtomicU32 = AtomicU32::new(0);

impl Registry {
    pub(crate) fn new(selector: Box<dyn Selector>) -> Registry {
        Registry {
            entries: Slab::new(),
            selector,
            timers: Timers::default(),
            deferred: VecDeque::new(),
            ready: Vec::new(),
            dirty: Vec::new(),
            buffers: BufferPool::default(),
            stopped: false,
            panic_policy: PanicPolicy::default(),
            panic: None,
            closed_pump: None,
            orphans: Orphans::default(),
            attachments: Attachments::default(),
            child_link: None,
            #[cfg(feature = "tls")]
            tls: Default::default(),
            next_generation: 0,
            id: REACTORS.fetch_add(1, Ordering::Relaxed).wrapping_add(1),
            clock: Clock::new(),
            refusals: Seats::default(),
            shutdown_until: None,
            sweep_every: None,
            early_flush: false,
            next_sweep: 0,
        }
    }

    // ----- slots -------------------------------------------------------------------------

    /// The slot `token` names, if the handle still exists (and the token is this
    /// reactor's).
    pub(crate) fn entry(&self, token: Token) -> Option<&Entry> {
        if token.reactor() != self.id {
            return None;
        }
        self.entries
            .get(token.index())
            .filter(|e| e.generation == token.generation())
    }

    pub(crate) fn entry_mut(&mut self, token: Token) -> Option<&mut Entry> {
        slot_mut(&mut self.entries, self.id, token)
    }

    /// The entry, if it still takes operations.
    pub(crate) fn live_mut(&mut self, token: Token) -> Result<&mut Entry, Error> {
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
            .map(|(i, e)| Token::new(i, e.generation, self.id))
    }

    /// Puts a new handle in a slot and registers its descriptor.
    pub(crate) fn insert(
        &mut self,
        mut entry: Entry,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        entry.handler = Some(handler);
        self.insert_entry(entry)
    }

    /// [`insert`](Registry::insert) without a handler yet (an accepted connection, whose
    /// handler `on_accept` is about to give); it gets no callback until it has one.
    pub(crate) fn insert_entry(&mut self, mut entry: Entry) -> io::Result<Token> {
        if entry.options.framing.is_some() && !matches!(entry.kind(), Kind::Stream | Kind::Listener)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "framing applies to stream handles, not to a {:?} handle",
                    entry.kind()
                ),
            ));
        }
        if let Some(framing) = &entry.options.framing {
            crate::handle::stream::fits(framing, &entry.options)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.generation = self.next_generation;
        if !self.selector.supports_edge() {
            entry.trigger = Trigger::Level;
        }
        // Without RDHUP a FIN that came with the last bytes would raise no further edge, so
        // on such a backend a short read proves nothing (see `Selector::reports_read_closed`).
        if let State::Stream(stream) = &mut entry.state {
            stream.short_read_drains &= self.selector.reports_read_closed();
            let now = self.clock.tick();
            (stream.active_at, stream.sent_at, stream.record_at) = (now, now, now);
            if let Some(shortest) = entry.options.shortest_deadline() {
                let every = (millis(shortest) / 4).clamp(10, 500);
                if self.sweep_every.is_none_or(|current| every < current) {
                    self.sweep_every = Some(every);
                    self.next_sweep = now.wrapping_add(every);
                }
            }
        }
        entry.interest = entry.desired_interest();
        let slot = self.entries.vacant_entry();
        let token = Token::new(slot.key(), entry.generation, self.id);
        if let Some(fd) = &entry.fd {
            self.selector
                .register(fd.as_fd(), token.to_key(), entry.interest, entry.trigger)?;
            entry.registered = true;
        }
        slot.insert(entry);
        log::trace!("{token}: added");
        Ok(token)
    }

    /// Removes a slot (finalization), returning what it held, its timers cancelled.
    pub(crate) fn take(&mut self, token: Token) -> Option<Entry> {
        self.entry(token)?;
        let mut entry = self.entries.remove(token.index());
        deregister(&*self.selector, &mut entry);
        for id in entry.timers.drain(..) {
            self.timers.cancel(id);
        }
        Some(entry)
    }

    /// Drops a handle at once, with no callback: a connection `on_accept` refused.
    pub(crate) fn discard(&mut self, token: Token) {
        if let Some(entry) = self.take(token) {
            log::trace!("{token}: discarded");
            drop(entry);
        }
    }

    // ----- scheduling --------------------------------------------------------------------

    /// Brings a level-triggered registration in line with what the entry wants now.
    pub(crate) fn update_interest(&mut self, token: Token) {
        let Registry {
            entries,
            selector,
            id,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return;
        };
        if entry.trigger == Trigger::Edge || !entry.registered {
            return;
        }
        let wanted = entry.desired_interest();
        if wanted == entry.interest {
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
        if let Some(entry) = slot_mut(&mut self.entries, self.id, token) {
            schedule_entry(&mut self.ready, entry, token);
        }
    }

    /// Starts a graceful shutdown, or shortens the one under way to `grace`: listeners
    /// close at once, every other handle hears `on_shutdown`, and the reactor stops once
    /// no stream, datagram or process handle is left or the grace time is over (see
    /// `turn.rs`).
    pub(crate) fn shutdown(&mut self, grace: Duration) {
        let now = self.clock.tick();
        let until = now.wrapping_add(millis(grace));
        if let Some(current) = self.shutdown_until {
            // A second call can only bring the end nearer (a second SIGTERM forces it).
            if reached(until, current) {
                return;
            }
            self.shutdown_until = Some(until);
            return;
        }
        self.shutdown_until = Some(until);
        let open: Vec<(Token, Kind)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_live())
            .map(|(index, e)| (Token::new(index, e.generation, self.id), e.kind()))
            .collect();
        for (token, kind) in open {
            match kind {
                Kind::Listener => self.kill(token, CloseReason::Shutdown),
                _ => self.deferred.push_back(Deferred::Shutdown(token)),
            }
        }
    }

    /// Whether a shutdown under way is done: no stream, datagram or process handle left, or the
    /// grace time over. Everything still open is killed then.
    #[inline]
    pub(crate) fn shutdown_done(&mut self) -> bool {
        // Looked at every turn; a shutdown is rare.
        self.shutdown_until.is_some() && self.shutdown_finished()
    }

    #[inline(never)]
    fn shutdown_finished(&mut self) -> bool {
        let Some(until) = self.shutdown_until else {
            return false;
        };
        let draining = self
            .entries
            .iter()
            .any(|(_, e)| matches!(e.kind(), Kind::Stream | Kind::Datagram | Kind::Process));
        if draining && !reached(self.clock.now(), until) {
            return false;
        }
        let open: Vec<Token> = self
            .entries
            .iter()
            .filter(|(_, e)| e.life != Life::Dying)
            .map(|(index, e)| Token::new(index, e.generation, self.id))
            .collect();
        for token in open {
            self.kill(token, CloseReason::Shutdown);
        }
        self.shutdown_until = None;
        true
    }

    /// How many milliseconds until a shutdown's grace time ends (`None`: none under way).
    pub(crate) fn until_shutdown_ends(&self) -> Option<u32> {
        let until = self.shutdown_until?;
        let now = self.clock.now();
        Some(if reached(now, until) {
            0
        } else {
            until.wrapping_sub(now)
        })
    }

    /// How many milliseconds until the deadlines are due to be swept (`None`: no handle
    /// has one).
    pub(crate) fn until_sweep(&self) -> Option<u32> {
        self.sweep_every?;
        if self.entries.is_empty() {
            return None;
        }
        let now = self.clock.now();
        Some(if reached(now, self.next_sweep) {
            0
        } else {
            self.next_sweep.wrapping_sub(now)
        })
    }

    /// Whether a deadline sweep is due now (looked at every turn).
    #[inline]
    pub(crate) fn sweep_due(&self) -> bool {
        self.sweep_every.is_some() && reached(self.clock.now(), self.next_sweep)
    }

    /// The handles whose deadlines expired, if a sweep is due now (appended to `out`).
    pub(crate) fn expired_deadlines(&mut self, out: &mut Vec<(Token, Deadline)>) {
        let (Some(every), now) = (self.sweep_every, self.clock.now()) else {
            return;
        };
        if !reached(now, self.next_sweep) {
            return;
        }
        self.next_sweep = now.wrapping_add(every);
        for (index, entry) in &mut self.entries {
            if let Some(deadline) = entry.expired_deadline(now) {
                out.push((Token::new(index, entry.generation, self.id), deadline));
            }
            // The buffer a drained queue kept for its next send (`keeps_drained_buffers`).
            if let State::Stream(stream) = &mut entry.state {
                stream.output.release(&mut self.buffers);
            }
        }
    }

    /// Whether a stream's queue keeps its buffer when a write drains it: with deadlines,
    /// the sweep (at least twice a second) returns it to the pool, so a busy connection
    /// saves the round trip through the pool per message and an idle one still holds no
    /// buffer. Without a sweep, the buffer goes back at once.
    #[inline]
    pub(crate) fn keeps_drained_buffers(&self) -> bool {
        self.sweep_every.is_some()
    }

    /// A deadline expired: the handler hears which in `on_error`, then the handle closes,
    /// gracefully where an answer can still be written (record, idle), at once where
    /// nothing would move (send, connect).
    pub(crate) fn time_out(&mut self, token: Token, deadline: Deadline) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        log::debug!("{token}: {deadline}");
        match deadline {
            Deadline::Record | Deadline::Idle => {
                entry.paused = true;
                self.report(token, Error::Timeout(deadline));
                self.deferred
                    .push_back(Deferred::Close(token, CloseReason::Timeout(deadline)));
            }
            Deadline::Send | Deadline::Connect | Deadline::Handshake => {
                self.fail_with(
                    token,
                    Error::Timeout(deadline),
                    CloseReason::Timeout(deadline),
                );
            }
        }
    }

    /// Queues `error` for the handle's `on_error`, delivered once the running callback has
    /// returned. The handle stays open.
    pub(crate) fn report(&mut self, token: Token, error: Error) {
        self.deferred.push_back(Deferred::Error(token, error));
    }

    // ----- output admission --------------------------------------------------------------

    /// Queues output on `token`, all in one slot lookup: checks that the handle can send
    /// and that `attempted` more bytes stay within its output bound (past it the handle is
    /// failed with [`Error::OutputLimit`]), lets `push` queue them, then notes a crossing of
    /// the high watermark and marks the handle for the end-of-turn flush.
    fn admit(
        &mut self,
        token: Token,
        attempted: usize,
        push: impl FnOnce(&mut Entry, &mut BufferPool, u32),
    ) -> Result<(), Error> {
        let Registry {
            entries,
            buffers,
            clock,
            id,
            dirty,
            ..
        } = self;
        let entry = match slot_mut(entries, *id, token) {
            None => return Err(Error::StaleToken(token)),
            Some(e) if !e.is_live() => return Err(Error::Closing(token)),
            Some(e) => e,
        };
        if !entry.kind().can_send() || !entry.writable_end {
            return Err(Error::WrongKind {
                operation: "send (a listener, virtual or read-only handle)",
                kind: entry.kind(),
            });
        }
        let limit = entry.options.max_output;
        let queued = entry.queued_bytes();
        if queued.saturating_add(attempted) > limit {
            let error = || Error::OutputLimit {
                limit,
                queued,
                attempted,
            };
            self.fail_with(token, error(), CloseReason::OutputLimit);
            return Err(error());
        }
        push(entry, buffers, clock.now());
        self.early_flush |= entry.buflen() >= EARLY_FLUSH;
        let passed_high = match (&mut entry.state, entry.options.watermarks) {
            (State::Stream(stream), Some((high, _))) if !stream.above_high => {
                stream.above_high = stream.output.len() > high;
                stream.above_high
            }
            _ => false,
        };
        if !entry.in_dirty {
            entry.in_dirty = true;
            dirty.push(token);
        }
        if passed_high {
            // Stop reading, and tell the handler once the running callback has returned.
            self.update_interest(token);
            self.deferred
                .push_back(Deferred::Watermark(token, Watermark::High));
        }
        Ok(())
    }

    /// Queues a copy of `data` (a stream's bytes, or one datagram).
    #[inline]
    pub(crate) fn send(&mut self, token: Token, data: &[u8]) -> Result<(), Error> {
        if self.queue_on_open_stream(token, data) {
            return Ok(());
        }
        self.send_admitted(token, data)
    }

    /// `send` past its common case: TLS, bounds, watermarks, datagrams and errors.
    #[inline(never)]
    fn send_admitted(&mut self, token: Token, data: &[u8]) -> Result<(), Error> {
        // TLS: what rustls takes at once needs no copy into the queue.
        #[cfg(feature = "tls")]
        let data = {
            let took = self.encrypt_now(token, data);
            if took > 0 && took == data.len() {
                return Ok(());
            }
            &data[took..]
        };
        self.admit(token, data.len(), |entry, buffers, now| {
            match &mut entry.state {
                State::Stream(stream) => {
                    if stream.output.is_empty() {
                        stream.sent_at = now;
                    }
                    stream.output.push_slice(data, buffers);
                }
                _ => queue_datagram(entry, data, None),
            }
        })
    }

    /// `send`'s common case in one look at the slot: an open plain stream whose queue stays
    /// within its bound and does not cross its high watermark. Anything else (TLS, an error
    /// to report, a watermark to announce, a datagram) is left to `send_admitted`: false.
    #[inline(always)]
    fn queue_on_open_stream(&mut self, token: Token, data: &[u8]) -> bool {
        let Registry {
            entries,
            buffers,
            clock,
            id,
            dirty,
            early_flush,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return false;
        };
        let (Life::Open, true, State::Stream(stream)) =
            (entry.life, entry.writable_end, &mut entry.state)
        else {
            return false;
        };
        #[cfg(feature = "tls")]
        if stream.extras.tls() {
            return false;
        }
        let queued = stream.output.len();
        let after = queued + data.len();
        let options = &entry.options;
        let crosses_high =
            !stream.above_high && options.watermarks.is_some_and(|(high, _)| after > high);
        if after > options.max_output || crosses_high {
            return false;
        }
        if queued == 0 {
            stream.sent_at = clock.now();
        }
        *early_flush |= after >= EARLY_FLUSH;
        stream.output.push_slice(data, buffers);
        if !entry.in_dirty {
            entry.in_dirty = true;
            dirty.push(token);
        }
        true
    }

    /// Queues `data` without copying it (datagram handles copy it into their arena).
    pub(crate) fn send_bytes(&mut self, token: Token, data: Bytes) -> Result<(), Error> {
        self.admit(token, data.len(), |entry, buffers, now| {
            match &mut entry.state {
                State::Stream(stream) => {
                    if stream.output.is_empty() {
                        stream.sent_at = now;
                    }
                    stream.output.push_bytes(data, buffers);
                }
                _ => queue_datagram(entry, &data, None),
            }
        })
    }

    /// Queues one datagram for `to` (EventMux's `sendto`).
    pub(crate) fn send_to(&mut self, token: Token, to: &Address, data: &[u8]) -> Result<(), Error> {
        match self.entry(token).map(Entry::kind) {
            Some(Kind::Datagram) | None => {}
            Some(kind) => {
                return Err(Error::WrongKind {
                    operation: "send_to",
                    kind,
                })
            }
        }
        self.admit(token, data.len(), |entry, _, _| {
            queue_datagram(entry, data, Some(to.clone()))
        })
    }

    /// A write may have drained a stream's queue to its low watermark: read again. Returns
    /// whether it did (the caller tells the handler before anything is read).
    pub(crate) fn reach_low_watermark(&mut self, token: Token) -> bool {
        let Some(entry) = self.entry_mut(token) else {
            return false;
        };
        let Some((_, low)) = entry.options.watermarks else {
            return false;
        };
        let State::Stream(stream) = &mut entry.state else {
            return false;
        };
        if !stream.above_high || stream.output.len() > low {
            return false;
        }
        stream.above_high = false;
        self.update_interest(token);
        // Edge triggering will not report again what is already waiting.
        self.schedule(token);
        true
    }

    pub(crate) fn buflen(&self, token: Token) -> usize {
        self.entry(token).map_or(0, Entry::buflen)
    }

    // ----- reading control ---------------------------------------------------------------

    pub(crate) fn set_paused(&mut self, token: Token, paused: bool) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        let was = std::mem::replace(&mut entry.paused, paused);
        if was == paused {
            return Ok(());
        }
        let waiting = match &entry.state {
            State::Stream(stream) => !stream.input.is_empty(),
            State::Datagram(datagram) => !datagram.held.is_empty(),
            _ => false,
        };
        // Plaintext rustls decrypted before the pause waits inside it, not in the input
        // buffer: the visit that delivers it is a read (which then finds the socket empty).
        #[cfg(feature = "tls")]
        if !paused && matches!(&entry.state, State::Stream(s) if s.extras.tls()) {
            entry.ready.insert(crate::selector::Ready::READABLE);
        }
        let resume = !paused && (entry.ready.readable() || entry.ready.read_closed() || waiting);
        self.update_interest(token);
        if resume {
            // Edge triggering will not report readiness it already reported.
            self.schedule(token);
        }
        Ok(())
    }

    // ----- closing -----------------------------------------------------------------------

    /// Graceful close: stop delivering input, flush the queue, shut our side down, wait for
    /// the peer's end of stream, then finalize with `reason`; all within the linger time.
    pub(crate) fn close_with(&mut self, token: Token, reason: CloseReason) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        let process = entry.kind() == Kind::Process;
        if !(entry.kind().can_send() || process)
            || entry.fd.is_none()
            || (!entry.connected() && !entry.has_output())
        {
            self.kill(token, reason);
            return;
        }
        entry.life = Life::Closing { reason };
        let drained = !entry.has_output();
        let linger = entry.options.linger;
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
        if process {
            // A process closes when the child exits: ask it to.
            self.close_process(token);
        } else if drained {
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
        #[cfg(feature = "tls")]
        if matches!(&entry.state, State::Stream(s) if s.extras.tls())
            && !self.tls_close_notify(token)
        {
            return; // the flush that writes close_notify comes back here
        }
        let Some(entry) = self.entry_mut(token) else {
            return;
        };
        // Only a stream socket has an end of stream to wait for, and only what was written
        // needs protecting from the reset that closing with unread input causes.
        let waits_for_eof = matches!(&entry.state, State::Stream(s) if !s.eof && s.wrote_any);
        if !waits_for_eof || !entry.transport.is_socket() {
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
            entries,
            selector,
            id,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        entry.life = Life::Dying;
        if entry.sole_owner && selector.closing_deregisters() {
            // Finalization closes the descriptor before the next wait, and closing the only
            // descriptor of an open file ends its epoll registration: no EPOLL_CTL_DEL.
            // Events already in flight for it are dropped as coming from a dying handle.
            entry.registered = false;
        } else {
            deregister(&**selector, entry);
        }
        self.deferred.push_back(Deferred::Finalize(token, reason));
    }

    /// Forgets the handle without closing its descriptor, which is returned.
    pub(crate) fn remove(&mut self, token: Token) -> Result<OwnedFd, Error> {
        let entry = self.live_mut(token)?;
        if entry.fd.is_none() {
            return Err(Error::WrongKind {
                operation: "remove",
                kind: entry.kind(),
            });
        }
        deregister(&*self.selector, &mut self.entries[token.index()]);
        let fd = self.entries[token.index()]
            .fd
            .take()
            .expect("checked above");
        self.kill(token, CloseReason::Removed);
        Ok(fd)
    }

    /// Reports `error` to the handle, then kills it with `reason`.
    pub(crate) fn fail_with(&mut self, token: Token, error: Error, reason: CloseReason) {
        if self.entry(token).is_some_and(|e| e.life != Life::Dying) {
            log::debug!("{token}: {error}");
            self.report(token, error);
            self.kill(token, reason);
        }
    }

    /// Reports `error` to the handle, then kills it ([`CloseReason::Error`]).
    pub(crate) fn fail(&mut self, token: Token, error: Error) {
        self.fail_with(token, error, CloseReason::Error);
    }

    // ----- descriptors -------------------------------------------------------------------

    /// The descriptor of a live handle.
    pub(crate) fn fd_of(&self, token: Token) -> Result<BorrowedFd<'_>, Error> {
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
                kind: entry.kind(),
            })
    }

    pub(crate) fn local_addr(&self, token: Token) -> Result<SocketAddr, Error> {
        let addr = SockRef::from(&self.fd_of(token)?).local_addr()?;
        addr.as_socket().ok_or_else(|| not_inet().into())
    }

    pub(crate) fn peer_addr(&self, token: Token) -> Result<SocketAddr, Error> {
        let addr = SockRef::from(&self.fd_of(token)?).peer_addr()?;
        addr.as_socket().ok_or_else(|| not_inet().into())
    }

    pub(crate) fn peer_credentials(&self, token: Token) -> Result<Credentials, Error> {
        Ok(Credentials::of(self.fd_of(token)?)?)
    }

    // ----- timers ------------------------------------------------------------------------

    /// Starts a timer owned by `token` (cancelled when the handle goes).
    /// Cancels `token`'s internal timers of `purpose`.
    #[cfg(feature = "tls")]
    pub(crate) fn cancel_purpose(&mut self, token: Token, purpose: TimerPurpose) {
        let Registry {
            entries,
            timers,
            id,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return;
        };
        entry.timers.retain(|&t| {
            let matches = timers.get(t).is_some_and(|timer| timer.purpose == purpose);
            if matches {
                timers.cancel(t);
            }
            !matches
        });
    }

    /// Puts `token` on the list of handles to flush at the end of the turn.
    #[cfg(feature = "tls")]
    pub(crate) fn mark_dirty(&mut self, token: Token) {
        if let Some(entry) = self.entry_mut(token) {
            if !entry.in_dirty {
                entry.in_dirty = true;
                self.dirty.push(token);
            }
        }
    }

    pub(crate) fn own_timer(
        &mut self,
        token: Token,
        purpose: TimerPurpose,
        after: Duration,
        period: Option<Duration>,
    ) -> TimerId {
        let id = self.timers.insert(token, purpose, after, period);
        if let Some(entry) = self.entry_mut(token) {
            entry.timers.push(id);
        }
        id
    }

    pub(crate) fn set_timer(
        &mut self,
        token: Token,
        after: Duration,
        period: Option<Duration>,
    ) -> Result<TimerId, Error> {
        self.live_mut(token)?;
        Ok(self.own_timer(token, TimerPurpose::User, after, period))
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

/// The slot `token` names in `entries` of reactor `id`: for callers that borrow other
/// registry fields (the selector, the buffer pool) beside it.
/// [`Registry::schedule`] on a slot already in hand: onto the ready list once.
#[inline]
pub(crate) fn schedule_entry(ready: &mut Vec<Token>, entry: &mut Entry, token: Token) {
    if !entry.in_ready {
        entry.in_ready = true;
        ready.push(token);
    }
}

#[inline]
pub(crate) fn slot_mut(entries: &mut Slab<Entry>, id: u32, token: Token) -> Option<&mut Entry> {
    if token.reactor() != id {
        return None;
    }
    entries
        .get_mut(token.index())
        .filter(|e| e.generation == token.generation())
}

/// Queues one datagram on a datagram or pump handle (checked by `check_room`).
fn queue_datagram(entry: &mut Entry, data: &[u8], to: Option<Address>) {
    if let Some(queue) = entry.datagrams() {
        queue.push(data, to);
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

fn not_inet() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not an IP socket")
}
