//! Pinning threads to CPUs: a side-by-side benchmark gives its servers one CPU and its load
//! another ([`CpuPair`]), so that a server never competes with the load for its core and
//! runs are comparable.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::affinity;

/// The CPU for server threads and the CPU for load threads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CpuPair {
    server: usize,
    load: usize,
}

impl CpuPair {
    /// The first two CPUs this process may run on, or `None` (with a note printed) if the
    /// affinity mask allows fewer or cannot be read.
    pub fn first_allowed() -> Option<CpuPair> {
        match affinity::allowed_cpus() {
            Ok(cpus) if cpus.len() >= 2 => Some(CpuPair {
                server: cpus[0],
                load: cpus[1],
            }),
            Ok(cpus) => {
                println!("note: only CPUs {cpus:?} are allowed; threads run unpinned");
                None
            }
            Err(e) => {
                println!("note: sched_getaffinity failed ({e}); threads run unpinned");
                None
            }
        }
    }

    /// The CPU for server threads.
    pub fn server(&self) -> usize {
        self.server
    }

    /// The CPU for load threads.
    pub fn load(&self) -> usize {
        self.load
    }
}

/// Pins the calling thread to `cpu` if there is one; a failure is noted once per process
/// and otherwise ignored (the thread runs unpinned).
pub fn pin_to(cpu: Option<usize>) {
    static FAILURE_NOTED: AtomicBool = AtomicBool::new(false);
    let Some(cpu) = cpu else {
        return;
    };
    if let Err(e) = affinity::run_only_on(cpu) {
        if !FAILURE_NOTED.swap(true, Ordering::Relaxed) {
            eprintln!("note: pinning a thread to CPU {cpu} failed ({e}); it runs unpinned");
        }
    }
}
