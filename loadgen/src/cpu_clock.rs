//! Clocks of CPU time: one thread's, the whole process's, and the whole machine's (every
//! CPU's busy time, whoever used it, from `/proc/stat`). A benchmark reads them before and
//! after a run (see [`CpuMeter`](crate::CpuMeter)): the server thread's clock says how busy
//! the server was, the process's what the load generator added, and the machine's whether
//! other programs disturbed the run.

use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys::clock;

/// A clock that advances with the CPU time used by one thread, the process, or the machine.
///
/// ```
/// let clock = loadgen::CpuClock::current_thread();
/// let before = clock.read().unwrap();
/// let mut x = 0u64;
/// for i in 0..1_000_000 { x = x.wrapping_add(std::hint::black_box(i)); }
/// assert!(clock.read().unwrap() >= before);
/// ```
#[derive(Copy, Clone, Debug)]
pub struct CpuClock(Source);

#[derive(Copy, Clone, Debug)]
enum Source {
    /// A POSIX CPU-time clock: a thread's or the process's.
    Posix(libc::clockid_t),
    /// All CPUs' busy time since boot, from `/proc/stat`.
    Machine,
}

impl CpuClock {
    /// The clock of `thread` (which must not have been joined).
    pub fn of_thread<T>(thread: &JoinHandle<T>) -> io::Result<CpuClock> {
        clock::thread_cpu_clock(thread).map(|id| CpuClock(Source::Posix(id)))
    }

    /// The clock of the calling thread.
    pub fn current_thread() -> CpuClock {
        CpuClock(Source::Posix(libc::CLOCK_THREAD_CPUTIME_ID))
    }

    /// The clock of the whole process: every thread, finished ones included.
    pub fn process() -> CpuClock {
        CpuClock(Source::Posix(libc::CLOCK_PROCESS_CPUTIME_ID))
    }

    /// The time all CPUs together have spent busy (user, system, interrupts, steal), for
    /// anyone; it advances in clock ticks (usually 10 ms).
    pub fn machine() -> CpuClock {
        CpuClock(Source::Machine)
    }

    /// CPU time used so far, or `None` if the clock cannot be read (its thread has ended,
    /// or `/proc/stat` is missing).
    pub fn read(self) -> Option<Duration> {
        match self.0 {
            Source::Posix(id) => clock::read(id),
            Source::Machine => {
                let stat = std::fs::read_to_string("/proc/stat").ok()?;
                let ticks = busy_ticks(&stat)?;
                let per_sec = clock::ticks_per_sec()?;
                Some(Duration::from_secs_f64(ticks as f64 / per_sec as f64))
            }
        }
    }
}

/// The busy ticks of all CPUs together in the text of `/proc/stat`: its first line,
/// `cpu user nice system idle iowait irq softirq steal ...`, less idle and iowait.
fn busy_ticks(stat: &str) -> Option<u64> {
    let mut fields = stat.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  10 20 30 1000 2000 40 50 60 0 0\ncpu0 5 10 15 500 1000 20 25 30 0 0\n";
        assert_eq!(busy_ticks(stat), Some(10 + 20 + 30 + 40 + 50 + 60));
    }

    #[test]
    fn busy_ticks_of_an_old_kernel_count_what_is_there() {
        // Kernels before 2.6.11 had no steal column, before 2.6 no irq columns.
        assert_eq!(busy_ticks("cpu 1 2 3 4\n"), Some(6));
    }

    #[test]
    fn busy_ticks_refuse_other_text() {
        assert_eq!(busy_ticks(""), None);
        assert_eq!(busy_ticks("intr 1 2 3\n"), None);
        assert_eq!(busy_ticks("cpu 1 x 3\n"), None);
    }

    #[test]
    fn the_process_clock_is_at_least_the_thread_clock() {
        let thread = CpuClock::current_thread().read().unwrap();
        let process = CpuClock::process().read().unwrap();
        assert!(process >= thread);
    }
}
