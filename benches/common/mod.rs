//! Helpers both side-by-side benchmarks use: reading knobs from the environment, pinning
//! threads to CPUs, how busy the whole machine was, and printing medians.
#![allow(dead_code)] // each benchmark uses a subset

use std::io;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable `name` parsed, or `default`.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first two CPUs this process may run on (server, load), or `None` with a note if
/// pinning is off (`no_pin_var` is set) or impossible.
pub fn choose_cpu_pair(pin: bool, no_pin_var: &str) -> Option<(usize, usize)> {
    if !pin {
        println!("note: {no_pin_var} is set; threads run unpinned");
        return None;
    }
    match allowed_cpus() {
        Ok(cpus) if cpus.len() >= 2 => Some((cpus[0], cpus[1])),
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

pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size given; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    Ok(cpus)
}

/// CPU time all CPUs together have spent busy since boot (user, system, interrupts,
/// steal), from `/proc/stat`; `None` if it cannot be read.
pub fn system_busy_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks_per_sec > 0).then(|| Duration::from_secs_f64(busy as f64 / ticks_per_sec as f64))
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// `value` rounded, with thousands separated by commas.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Pins the calling thread to `cpu` if there is one; a failure is noted once and ignored.
pub fn pin_to(cpu: Option<usize>) {
    static FAILURE_NOTED: AtomicBool = AtomicBool::new(false);
    let Some(cpu) = cpu else {
        return;
    };
    // SAFETY: an all-zero cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` comes from `allowed_cpus`, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 && !FAILURE_NOTED.swap(true, Ordering::Relaxed) {
        let e = io::Error::last_os_error();
        eprintln!("note: pinning a thread to CPU {cpu} failed ({e}); it runs unpinned");
    }
}
