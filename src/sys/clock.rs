//! The monotonic clock the reactor reads once per turn, in milliseconds.
//!
//! `Instant::now()` followed by `saturating_duration_since` costs about 95 instructions
//! (the duration's checked arithmetic dominates); reading `CLOCK_MONOTONIC`, the clock
//! `Instant` reads too, and turning it into milliseconds directly costs about a third.

/// Milliseconds on `CLOCK_MONOTONIC` (since an arbitrary point, the same for the whole
/// process; never going back).
#[inline]
pub(crate) fn monotonic_millis() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call; CLOCK_MONOTONIC exists on
    // every system `Instant` works on, so the call cannot fail (and a failure would leave
    // the zeroed reading, which only delays deadlines).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64) * 1000 + (now.tv_nsec as u64) / 1_000_000
}
