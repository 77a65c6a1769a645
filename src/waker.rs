//! [`Waker`]: how other threads (pump threads, [`Remote`](crate::Remote)s) wake the reactor.
//!
//! One eventfd, registered once with the readiness backend, plus a flag. A producer that
//! has queued work calls [`Waker::wake`]: only the first call after the reactor last
//! drained writes the eventfd; the rest see the flag already set and return. So under load
//! a burst of packets or commands costs one eventfd write per reactor turn, not one each.
//!
//! Ordering: the reactor resets the eventfd, *then* clears the flag, *then* drains the
//! channels. A producer pushes, *then* sets the flag. Whatever it pushed before the flag
//! was cleared is seen by the drain; whatever it pushed after makes it write the eventfd.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys;

/// The readiness key under which the waker's eventfd is registered. No token has it (slab
/// indexes never come near `u32::MAX`), and it is not `u64::MAX`, which the `polling`
/// backend refuses (it reserves `usize::MAX` for its own notifier).
pub(crate) const WAKER_KEY: u64 = u64::MAX - 1;

/// Shared by the reactor and every producer thread.
pub(crate) struct Waker {
    fd: OwnedFd,
    pending: AtomicBool,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Arc<Waker>> {
        Ok(Arc::new(Waker {
            fd: sys::eventfd::new()?,
            pending: AtomicBool::new(false),
        }))
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Called by a producer after queueing work.
    pub(crate) fn wake(&self) {
        if !self.pending.swap(true, Ordering::SeqCst) {
            if let Err(e) = sys::eventfd::signal(self.fd.as_fd()) {
                log::error!("waking the reactor failed: {e}");
            }
        }
    }

    /// Called by the reactor before it drains the producers' channels.
    pub(crate) fn reset(&self) {
        sys::eventfd::reset(self.fd.as_fd());
        self.pending.store(false, Ordering::SeqCst);
    }
}
