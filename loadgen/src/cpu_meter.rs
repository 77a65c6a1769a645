//! [`CpuMeter`] and [`CpuUsage`]: the wall time of one measured run and the CPU time used
//! meanwhile by the process, the machine and, where the server runs in this process, the
//! server's thread. A share of one CPU is a CPU time over the run's wall time: 1.0 means
//! one CPU kept busy all along.

use std::time::{Duration, Instant};

use crate::CpuClock;

/// Readings of the clocks at the start of a run; [`CpuMeter::stop`] gives the difference.
///
/// ```
/// let meter = loadgen::CpuMeter::start(None);
/// let usage = meter.stop();
/// assert!(usage.share(usage.process_cpu()) >= 0.0);
/// ```
#[derive(Debug)]
pub struct CpuMeter {
    began: Instant,
    process: Option<Duration>,
    machine: Option<Duration>,
    server: Option<(CpuClock, Duration)>,
}

impl CpuMeter {
    /// Starts a run; `server`, if given, is the clock of the server's thread.
    pub fn start(server: Option<CpuClock>) -> CpuMeter {
        CpuMeter {
            server: server.and_then(|clock| Some((clock, clock.read()?))),
            process: CpuClock::process().read(),
            machine: CpuClock::machine().read(),
            began: Instant::now(),
        }
    }

    /// Ends the run: what every clock advanced by since [`CpuMeter::start`].
    pub fn stop(&self) -> CpuUsage {
        let elapsed = self.began.elapsed();
        let since =
            |before: Option<Duration>, clock: CpuClock| Some(clock.read()?.saturating_sub(before?));
        CpuUsage {
            server: self
                .server
                .and_then(|(clock, before)| since(Some(before), clock)),
            process: since(self.process, CpuClock::process()).unwrap_or_default(),
            machine: since(self.machine, CpuClock::machine()),
            elapsed,
        }
    }
}

/// What one run cost: its wall time and the CPU time used during it.
#[derive(Copy, Clone, Debug)]
pub struct CpuUsage {
    elapsed: Duration,
    process: Duration,
    machine: Option<Duration>,
    server: Option<Duration>,
}

impl CpuUsage {
    /// The run's wall time.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// CPU time the whole process used (servers in it, load threads, the main thread).
    pub fn process_cpu(&self) -> Duration {
        self.process
    }

    /// CPU time the server's thread used, if the meter was given its clock and it could be
    /// read.
    pub fn server_cpu(&self) -> Option<Duration> {
        self.server
    }

    /// `cpu` as a share of one CPU over the run.
    pub fn share(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// The share of one CPU that other processes (and the kernel on their behalf) used,
    /// if the machine's busy time is known.
    pub fn foreign_busy(&self) -> Option<f64> {
        Some(self.share(self.machine?.saturating_sub(self.process)))
    }
}
