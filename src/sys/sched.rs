//! Scheduling policy of the calling thread (Linux only).
//!
//! Pump threads run under `SCHED_BATCH`: when a packet wakes one while the reactor thread
//! is running on the same CPU, the woken thread does not preempt it, but waits for the
//! reactor to block or use up its time slice. By then more packets have arrived, so each
//! wakeup and each hand-over serves a large batch instead of one or two packets.

use std::io;

/// Puts the calling thread under `SCHED_BATCH` (priority 0, the only one the policy has).
/// Unprivileged: any thread may lower itself from `SCHED_OTHER` to `SCHED_BATCH`.
pub(crate) fn set_batch_policy() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 means the
    // calling thread, so no other thread's state is touched.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
