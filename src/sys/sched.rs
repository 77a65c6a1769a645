//! Scheduling of the calling thread (Linux only): the `SCHED_BATCH` policy of pump threads,
//! and the CPU affinity a reactor group pins its threads with.
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

/// The CPUs the calling thread may run on, in order (its affinity mask).
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is an empty set; sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is an empty set; CPU_SET writes one bit of it (cpu is
    // below CPU_SETSIZE, checked by the caller's allowed list); sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
