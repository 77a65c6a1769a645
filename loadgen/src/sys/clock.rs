//! CPU-time clocks (`clock_gettime` on `CLOCK_*_CPUTIME_ID` or a thread's clock from
//! `pthread_getcpuclockid`) and the kernel's clock tick, the unit of `/proc/stat`.

use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;
use std::time::Duration;

/// The clock of the CPU time `thread` uses.
pub fn thread_cpu_clock<T>(thread: &JoinHandle<T>) -> io::Result<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: the thread is alive or joinable (its JoinHandle is not joined, so its
    // pthread_t is valid) and `clock` is writable.
    match unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) } {
        0 => Ok(clock),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// The time `clock` shows, or `None` if it cannot be read (its thread has ended, say).
pub fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// Clock ticks per second (`_SC_CLK_TCK`), if the system says.
pub fn ticks_per_sec() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&ticks| ticks > 0)
}
