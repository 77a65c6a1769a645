//! [`Waker`]: how other threads (pump threads, [`Remote`](crate::Remote)s) wake the reactor.
//!
//! One eventfd, registered once with the readiness backend, plus an `awake` flag that says
//! whether the reactor will look at the channels again before it waits. A producer that
//! has queued work calls [`Waker::wake`], which writes the eventfd only if the flag was
//! down, and raises it. Every turn, before its wait, the reactor lowers the flag
//! ([`Waker::arm`]) and looks at the channels: if work is there it raises the flag again
//! ([`Waker::disarm`]) and takes the work this turn without blocking; if not, the first
//! producer from then on writes the eventfd and the rest see the flag up. So while the
//! producers keep the reactor busy they cost it and themselves no system call at all,
//! and a reactor that sleeps is woken once.
//!
//! Ordering: both sides *swap* the flag. A producer pushes, then swaps it up; the reactor
//! swaps it down, then looks at the channels. If the producer's swap came first, the
//! reactor's swap reads its value, so the push is visible to the look that follows; if the
//! reactor's came first, the producer reads "down" and writes the eventfd, which ends the
//! wait at once.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sys;

/// The readiness key under which the waker's eventfd is registered. No token has it (slab
/// indexes never come near `u32::MAX`), and it is not `u64::MAX`, which the `polling`
/// backend refuses (it reserves `usize::MAX` for its own notifier).
pub(crate) const WAKER_KEY: u64 = u64::MAX - 1;

/// Shared by the reactor and every producer thread.
pub(crate) struct Waker {
    fd: OwnedFd,
    /// Up: the reactor will look at the channels before it waits; no need to signal.
    awake: AtomicBool,
    /// Eventfd writes, for [`Remote::wakeups`](crate::Remote::wakeups).
    signals: AtomicU64,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Arc<Waker>> {
        Ok(Arc::new(Waker {
            fd: sys::eventfd::new()?,
            // Down: until the reactor has been seen awake, the first producer signals.
            awake: AtomicBool::new(false),
            signals: AtomicU64::new(0),
        }))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Called by a producer after queueing work.
    pub(crate) fn wake(&self) {
        if !self.awake.swap(true, Ordering::SeqCst) {
            self.signals.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = sys::eventfd::signal(self.fd.as_fd()) {
                log::error!("waking the reactor failed: {e}");
            }
        }
    }

    /// Called by the reactor before it looks at the channels ahead of its wait: from here
    /// on, producers signal. Returns whether the flag was up: false means no producer has
    /// woken the reactor since the last `arm` (and the last look took what it found), so
    /// the channels hold nothing that look did not see.
    pub(crate) fn arm(&self) -> bool {
        self.awake.swap(false, Ordering::SeqCst)
    }

    /// Called by the reactor when that look found work, which it takes this turn without
    /// blocking: until the next look, producers need not signal.
    pub(crate) fn disarm(&self) {
        self.awake.store(true, Ordering::SeqCst);
    }

    /// Called by the reactor when the eventfd was reported readable: consumes the signal
    /// (it is registered level-triggered).
    pub(crate) fn consume_signal(&self) {
        sys::eventfd::reset(self.fd.as_fd());
    }

    /// How many times producers had to write the eventfd.
    pub(crate) fn signals(&self) -> u64 {
        self.signals.load(Ordering::Relaxed)
    }
}
