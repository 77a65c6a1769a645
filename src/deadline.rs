//! Deadlines: how long a peer may take before the reactor gives up on it. [`Deadline`]
//! names each one (it travels in [`Error::Timeout`](crate::Error::Timeout) and
//! [`CloseReason::Timeout`](crate::CloseReason::Timeout)); [`Clock`] is the coarse clock
//! the reactor stamps activity with.
//!
//! Deadlines cost nothing per message: a read or write only stores the turn's clock reading
//! (a `u32` of milliseconds, read once per turn) in the handle's slot, and the reactor
//! sweeps its handles a few times per shortest deadline (at least twice a second) to find
//! the expired ones. No timer is armed, moved or cancelled per byte.

use std::fmt;
use std::time::Duration;

/// Which deadline of a handle expired.
///
/// ```
/// use eventmux::{Context, Deadline, Error, Handler};
///
/// struct Http;
/// impl Handler for Http {
///     fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
///         if let Error::Timeout(Deadline::Record) = error {
///             // The request did not arrive in time: say so before the close.
///             let _ = ctx.send(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n");
///         }
///     }
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// A framed record had begun and was not complete in time
    /// ([`Options::record_timeout`](crate::Options::record_timeout)): a slow or trickling
    /// peer (slowloris).
    Record,
    /// No byte was read or written for the idle time
    /// ([`Options::idle_timeout`](crate::Options::idle_timeout)).
    Idle,
    /// Output was queued and the peer took none of it in time
    /// ([`Options::send_timeout`](crate::Options::send_timeout)): it stopped reading.
    Send,
    /// An outgoing connect did not complete in time
    /// ([`Options::connect_timeout`](crate::Options::connect_timeout)).
    Connect,
    /// A TLS handshake did not complete in time
    /// ([`Options::handshake_timeout`](crate::Options::handshake_timeout)).
    Handshake,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::Record => "the record did not arrive in time",
            Deadline::Idle => "the connection was idle too long",
            Deadline::Send => "the peer took no output in time",
            Deadline::Connect => "the connect did not complete in time",
            Deadline::Handshake => "the TLS handshake did not complete in time",
        })
    }
}

/// Milliseconds since the reactor started, read once per turn. Wraps after 49 days;
/// differences are taken with wrapping arithmetic, so any deadline under 24 days is exact.
pub(crate) struct Clock {
    /// `CLOCK_MONOTONIC` at the start, in milliseconds.
    start: u64,
    /// The last reading, in milliseconds since `start`.
    now: u32,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            start: crate::sys::clock::monotonic_millis(),
            now: 0,
        }
    }

    /// Reads the clock (once per turn).
    #[inline]
    pub(crate) fn tick(&mut self) -> u32 {
        let elapsed = crate::sys::clock::monotonic_millis().saturating_sub(self.start);
        self.now = elapsed as u32; // wrapping: see the type's docs
        self.now
    }

    /// The reading of this turn, in milliseconds.
    pub(crate) fn now(&self) -> u32 {
        self.now
    }
}

/// A duration as whole milliseconds, saturating (and at least 1, so a deadline is never 0).
pub(crate) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Whether `limit` milliseconds have passed since `since` at `now`. Both readings are cut
/// to whole milliseconds, so only a difference past `limit` proves the time has passed:
/// a deadline never fires early, and at most a millisecond late.
pub(crate) fn expired(now: u32, since: u32, limit: u32) -> bool {
    now.wrapping_sub(since) > limit
}

/// Whether `now` has reached the moment `at` (both on the wrapping clock, less than 24
/// days apart).
pub(crate) fn reached(now: u32, at: u32) -> bool {
    now.wrapping_sub(at) < u32::MAX / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_survives_the_clock_wrapping() {
        assert!(!expired(1_000, 900, 200));
        assert!(
            !expired(1_100, 900, 200),
            "200 ms of readings may be 199.x ms of time"
        );
        assert!(expired(1_101, 900, 200));
        assert!(expired(101, u32::MAX - 99, 200), "across the wrap");
        assert!(!expired(50, u32::MAX - 99, 200));
        assert!(reached(10, 10) && reached(11, 10) && !reached(9, 10));
        assert!(reached(5, u32::MAX - 5), "across the wrap");
    }
}
