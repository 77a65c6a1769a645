//! The turn ([`Reactor::run_once`]): the loop that turns readiness into callbacks.
//!
//! 1. deliver what earlier calls queued (errors, closes, finalization);
//! 2. wait for readiness, no longer than the next timer (not at all if work is pending),
//!    after arming the waker and looking at other threads' channels;
//! 3. take the readiness into each handle's slot; this is the first round: a stream whose
//!    visit is only a read reads at once, on the slot in hand (`read_entry`), and its
//!    handler's reply is written in the same dispatch (`write_reply`); the rest goes on
//!    the ready list. Then drain what other threads handed over;
//! 4. the other rounds over the ready list: each ready handle is driven once per round by
//!    its kind's file (a stream reads once, a listener accepts a batch, a datagram handle
//!    takes one `recvmmsg`), and a handle with more to do goes to the back; at most
//!    [`ROUNDS_PER_TURN`] rounds in all, so one busy peer cannot starve the rest;
//! 5. fire due timers;
//! 6. flush every handle whose output grew and was not written as a reply: one vectored
//!    write (or `sendmmsg`) each, then `on_sent` on a drain;
//! 7. resume a panic caught under [`PanicPolicy::Propagate`](crate::PanicPolicy).
//!
//! Deferred work is delivered after every callback that may have queued it, never during
//! one.

use std::io;
use std::time::{Duration, Instant};

use super::dispatch::{call, dispatch, dispatch_sent};
use super::registry::{schedule_entry, slot_mut, Deferred};
use crate::handle::process::ORPHANS_KEY;
use crate::handle::stream::{read_entry, write_stream_of, Read};
use crate::handle::{Flushed, Life, State};
use crate::pump::Pump;
use crate::selector::{millis_rounded_up, Readiness, Trigger};
use crate::timer::TimerPurpose;
use crate::waker::WAKER_KEY;
use crate::{CloseReason, Reactor, Token, Watermark};

/// How many flush rounds one turn does when `on_sent` keeps sending; the rest waits for
/// the next turn so that a handler cannot hold the loop.
const FLUSH_ROUNDS: usize = 4;
/// Rounds over the ready list per turn: at most this many reads per handle per turn.
const ROUNDS_PER_TURN: usize = 8;

/// The sooner of two waits (`None`: without end).
#[inline]
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Reactor {
    /// One turn; see the module docs. Returns whether anything happened: readiness, other
    /// threads' work, a timer, or work queued before the turn.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let registry = &self.registry;
        let pending = !(registry.deferred.is_empty()
            && registry.dirty.is_empty()
            && registry.ready.is_empty());
        self.process_deferred();
        let wait_ms = self.wait_time(timeout);
        self.events.clear();
        match self.wait(wait_ms, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.last_wait_busy = !self.events.is_empty();
        self.registry.clock.tick();
        let mut woken = false;
        for i in 0..self.events.len() {
            let event = self.events[i];
            if event.key() < ORPHANS_KEY {
                self.take_readiness(event);
            } else if event.key() == WAKER_KEY {
                woken = true;
            } else {
                let registry = &mut self.registry;
                registry.orphans.reap(&*registry.selector);
            }
        }
        if woken {
            self.handoffs.woken();
        }
        let handed_over = woken || self.handoffs.left;
        if handed_over {
            self.drain_handoffs();
        }
        // Rounds over the ready list: each ready handle is served once per round (one read,
        // or a batch of accepts), and handles with more to do go to the back. Round-robin
        // keeps a busy peer from starving the others; the bound keeps the loop from
        // starving timers and the wait.
        // The event loop above was the first round.
        for _ in 1..ROUNDS_PER_TURN {
            if self.registry.ready.is_empty() {
                break;
            }
            // This round's handles; what they schedule meanwhile is the next round.
            let mut round = std::mem::take(&mut self.round);
            std::mem::swap(&mut round, &mut self.registry.ready);
            for &token in &round {
                self.drive(token);
                self.process_deferred();
            }
            round.clear();
            self.round = round;
        }
        let fired = self.fire_timers();
        self.enforce_deadlines();
        self.flush_dirty();
        if self.registry.shutdown_done() {
            // Finalize what was killed, then let `run` return.
            self.process_deferred();
            self.registry.stopped = true;
        }
        if let Some(payload) = self.registry.panic.take() {
            std::panic::resume_unwind(payload);
        }
        Ok(pending || handed_over || fired || !self.events.is_empty())
    }

    /// Waits for readiness into `self.events`, no longer than `timeout_ms` milliseconds
    /// (`wait_time`'s figure), first polling without blocking for the busy-poll window if
    /// the last wait was busy (see [`Reactor::set_busy_poll`]). `timeout` is the caller's
    /// own limit, which with the next timer bounds the spin exactly (a millisecond figure
    /// is rounded up).
    fn wait(&mut self, timeout_ms: Option<u32>, timeout: Option<Duration>) -> io::Result<()> {
        let mut timeout_ms = timeout_ms;
        if self.last_wait_busy && !self.busy_poll.is_zero() && timeout_ms != Some(0) {
            let until_timer = self.registry.timers.until_next();
            let limit = earliest(
                timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
                earliest(timeout, until_timer),
            );
            let window = limit.map_or(self.busy_poll, |t| t.min(self.busy_poll));
            let selector = &mut self.registry.selector;
            let start = Instant::now();
            loop {
                selector.select(&mut self.events, Some(0))?;
                if !self.events.is_empty() {
                    return Ok(());
                }
                if start.elapsed() >= window {
                    break;
                }
            }
            // What the spin used counts against the wait (a timer stays on time).
            timeout_ms = limit.map(|t| millis_rounded_up(t.saturating_sub(start.elapsed())));
        }
        self.registry.selector.select(&mut self.events, timeout_ms)
    }

    /// How long the wait may block, in milliseconds (`None`: until something happens):
    /// not at all if work is pending, else no longer than `timeout`, the next timer, the
    /// next deadline sweep or the end of a shutdown's grace time. Kept in milliseconds,
    /// the kernel's unit and the turn clock's, rather than `Duration`s: this runs every
    /// turn.
    fn wait_time(&mut self, timeout: Option<Duration>) -> Option<u32> {
        self.handoffs.look(&self.registry);
        let registry = &mut self.registry;
        if !registry.ready.is_empty()
            || !registry.dirty.is_empty()
            || !registry.deferred.is_empty()
            || self.handoffs.left
        {
            return Some(0);
        }
        let until_timer = registry.timers.until_next().map(millis_rounded_up);
        // Pairwise: an array's `flatten().min()` was built in memory, ~40 instructions.
        earliest(
            earliest(timeout.map(millis_rounded_up), until_timer),
            earliest(registry.until_sweep(), registry.until_shutdown_ends()),
        )
    }

    fn take_readiness(&mut self, event: Readiness) {
        let registry = &mut self.registry;
        let token = Token::from_key(event.key(), registry.id);
        let Some(entry) = slot_mut(&mut registry.entries, registry.id, token) else {
            // A handle finalized earlier in this batch: its slot may already be reused.
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        entry.ready.insert(event.ready());
        // The event loop is the turn's first round: a stream whose visit is only a read
        // (and that is not on the ready list already) reads now, on the slot in hand.
        // Level-triggered handles and everything else go to the rounds.
        if !entry.in_ready && entry.trigger == Trigger::Edge && entry.only_reads() {
            let now = registry.clock.now();
            match read_entry(entry, &mut self.read_buf, &mut self.passed, now) {
                Read::Direct {
                    n,
                    drained,
                    handler,
                } => self.read_direct(token, n, drained, handler),
                read => self.finish_read(token, read),
            }
            self.process_deferred();
            return;
        }
        schedule_entry(&mut registry.ready, entry, token);
    }

    fn drive(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        entry.in_ready = false;
        match entry.state {
            // The common visit (see `only_reads`) skips `drive_stream`'s look at the slot.
            State::Stream(_) if entry.only_reads() => self.read_stream(token),
            State::Stream(_) => self.drive_stream(token),
            State::Datagram(_) => self.drive_datagram(token),
            State::Listener(_) => self.drive_listener(token),
            State::Pump(_) => self.drive_pump(token),
            State::Pollable => self.drive_pollable(token),
            State::Signals => self.deliver_signals(token),
            State::Process(_) => self.drive_process(token),
            State::Virtual => {}
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
        let keep = self.registry.keeps_drained_buffers();
        let registry = &mut self.registry;
        let now = registry.clock.now();
        let Some(entry) = slot_mut(&mut registry.entries, registry.id, token) else {
            return;
        };
        entry.in_dirty = false;
        let writable = entry.ready.writable() || entry.trigger == Trigger::Level;
        let open = matches!(entry.life, Life::Open | Life::Closing { .. });
        if !entry.has_output() || !writable || !open || !entry.connected() || entry.fd.is_none() {
            return;
        }
        let level = entry.trigger == Trigger::Level;
        // Only a queue above its high watermark can reach the low one by this write.
        let above_high = matches!(&entry.state, State::Stream(s) if s.above_high);
        let outcome = match entry.state {
            // Descriptors wait in the queue: their bytes must go in writes of their own.
            State::Stream(ref stream) if stream.extras.attached() => {
                self.registry.write_attached(token)
            }
            #[cfg(feature = "tls")]
            State::Stream(ref stream) if stream.extras.tls() => self.registry.write_tls(token),
            State::Stream(_) => write_stream_of(entry, &mut registry.buffers, now, keep),
            _ => self.registry.write_datagrams(token),
        };
        if level {
            self.registry.update_interest(token);
        }
        if above_high && self.registry.reach_low_watermark(token) {
            // Before the read it allows, which may come in this same visit.
            dispatch(&mut self.registry, token, |h, ctx| {
                h.on_watermark(ctx, Watermark::Low)
            });
        }
        match outcome {
            Flushed::Idle | Flushed::Partial => {}
            Flushed::Drained => {
                // EventMux posts `sent` for every drain, a graceful close's included.
                let life = dispatch_sent(&mut self.registry, token);
                if let Some(Life::Closing { .. }) = life {
                    self.registry.closing_drained(token);
                }
            }
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

    /// Fires the due timers; returns whether any was due.
    fn fire_timers(&mut self) -> bool {
        if self.registry.timers.is_empty() {
            return false;
        }
        // Timers keep `Instant`s (precise to the microsecond, unlike the turn's clock).
        let now = Instant::now();
        let mut fired = false;
        while let Some((id, timer)) = self.registry.timers.pop_due(now) {
            fired = true;
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
                            log::debug!("{token}: linger expired with {} queued", entry.buflen());
                            CloseReason::LingerExpired
                        }
                    };
                    self.registry.kill(token, reason);
                }
                TimerPurpose::AcceptRetry => self.registry.end_accept_backoff(token),
                #[cfg(feature = "tls")]
                TimerPurpose::Handshake => self.registry.handshake_expired(token),
            }
            self.process_deferred();
        }
        fired
    }

    /// Closes the handles whose deadlines expired, when a sweep is due (see
    /// `crate::deadline`).
    fn enforce_deadlines(&mut self) {
        if !self.registry.sweep_due() {
            return;
        }
        let mut expired = std::mem::take(&mut self.expired);
        self.registry.expired_deadlines(&mut expired);
        if expired.is_empty() {
            self.expired = expired;
            return;
        }
        for (token, deadline) in expired.drain(..) {
            self.registry.time_out(token, deadline);
        }
        self.expired = expired;
        self.process_deferred();
    }

    /// Delivers queued errors and finalizes closed handles, until nothing is queued. Called
    /// after every callback that may have queued some, so the common "nothing" is inline.
    #[inline]
    pub(crate) fn process_deferred(&mut self) {
        if !self.registry.deferred.is_empty() {
            self.deliver_deferred();
        }
    }

    #[inline(never)]
    fn deliver_deferred(&mut self) {
        while let Some(work) = self.registry.deferred.pop_front() {
            match work {
                Deferred::Error(token, error) => {
                    dispatch(&mut self.registry, token, |h, ctx| h.on_error(ctx, &error));
                }
                Deferred::Close(token, reason) => self.registry.close_with(token, reason),
                Deferred::Shutdown(token) => {
                    if self.registry.is_live(token) {
                        dispatch(&mut self.registry, token, |h, ctx| h.on_shutdown(ctx));
                    }
                }
                Deferred::Watermark(token, mark) => {
                    dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_watermark(ctx, mark)
                    });
                }
                Deferred::Connect(token) => {
                    if self.registry.is_live(token) {
                        dispatch(&mut self.registry, token, |h, ctx| h.on_connect(ctx));
                    }
                }
                Deferred::Exit(token) => self.deliver_exit(token),
                Deferred::Finalize(token, reason) => self.finalize(token, reason),
            }
        }
    }

    /// The last of a handle: its slot is freed, its descriptor closed (a pump's threads
    /// stopped and joined first), its bound socket file removed; then its handler hears
    /// `on_read_last` (leftover input, on a graceful path), `on_closing` (handles that can
    /// send) and `on_close`, and is dropped.
    fn finalize(&mut self, token: Token, reason: CloseReason) {
        let Some(mut entry) = self.registry.take(token) else {
            return;
        };
        if let State::Pump(slot) = &mut entry.state {
            // Its final counters stay readable through the context until on_close is done.
            let stats = slot.pump.take().map(Pump::finish);
            self.registry.closed_pump = stats.map(|stats| (token, stats));
            self.handoffs.pumps.retain(|&t| t != token);
        }
        // A child killed before it exited is left to be reaped (its pidfd goes with it).
        self.registry.orphan(&mut entry);
        #[cfg(feature = "tls")]
        if matches!(&entry.state, State::Stream(stream) if stream.extras.tls()) {
            self.registry.tls.forget(token);
        }
        if matches!(&entry.state, State::Stream(stream) if stream.extras.attached()) {
            // Descriptors still waiting to be sent are closed; the peer never gets them.
            self.registry.attachments.forget(token);
        }
        let missing = entry.drop_output();
        drop(entry.fd.take());
        if let Some(path) = entry.bound_path() {
            // The socket file this handle bound; nobody can connect to it now.
            let _ = std::fs::remove_file(path);
        }
        log::debug!("{token}: closed ({reason:?}), {missing} unsent");
        let Some(mut handler) = entry.handler.take() else {
            log::error!("{token}: finalized while its handler was running");
            return;
        };
        let abrupt = matches!(
            reason,
            CloseReason::Killed | CloseReason::Removed | CloseReason::Panicked
        );
        let rest = entry.pending_input();
        if !rest.is_empty() && !abrupt {
            call(&mut self.registry, token, &mut *handler, |h, ctx| {
                h.on_read_last(ctx, rest)
            });
        }
        if entry.kind().can_send() {
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
