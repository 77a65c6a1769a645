//! Running out of descriptors: a listener whose accept fails with EMFILE reports it a few
//! times, backs off instead of spinning on the still-readable backlog, and accepts the
//! waiting clients once descriptors are available again.
//!
//! This file is its own test binary with a single test, so changing the process's
//! RLIMIT_NOFILE cannot disturb any other test.

mod util;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use eventmux::{Context, Error, Handler, Incoming, Options, Reactor};
use util::{listen_local, run_until, Log, DEADLINE};

const CLIENTS: usize = 8;

struct Server {
    log: Log,
}

impl Handler for Server {
    fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
        self.log.push("accept");
        Some(Box::new(Echo {
            log: self.log.clone(),
        }))
    }

    fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
        match error {
            Error::Io(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                self.log.push("error exhausted")
            }
            other => self.log.push(format!("error {other}")),
        }
    }
}

struct Echo {
    log: Log,
}

impl Handler for Echo {
    fn on_connect(&mut self, _: &mut Context<'_>) {
        self.log.push("connect");
    }

    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        ctx.send(data).unwrap();
        self.log.push("echo");
    }
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit; lowering the soft limit is always permitted.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Restores the descriptor limit, also when the test fails midway.
struct RestoreLimit(libc::rlimit);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        set_nofile_limit(self.0);
    }
}

/// User plus system CPU time this process has used.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is valid storage for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// The descriptor number the kernel would hand out next: the lowest free one.
fn lowest_free_fd() -> u64 {
    let probe = File::open("/dev/null").unwrap();
    probe.as_raw_fd() as u64
}

#[test]
fn accept_backs_off_on_emfile_without_spinning_and_recovers() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let server = Server { log: log.clone() };
    let (_, addr) = listen_local(&mut reactor, Options::new(), server);

    // Connects complete in the kernel's backlog before anything is accepted.
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let client = TcpStream::connect(addr).unwrap();
            client.set_read_timeout(Some(DEADLINE)).unwrap();
            client
        })
        .collect();
    let in_use = std::fs::read_dir("/proc/self/fd").unwrap().count();

    // The kernel gives out the lowest free number and refuses numbers at or above the soft
    // limit; with the limit at the lowest free number, no new descriptor can be opened.
    let original = nofile_limit();
    let restore = RestoreLimit(original);
    let exhausted = lowest_free_fd();
    set_nofile_limit(libc::rlimit {
        rlim_cur: exhausted,
        rlim_max: original.rlim_max,
    });
    assert!(
        File::open("/dev/null").is_err(),
        "{in_use} descriptors in use"
    );

    let (cpu_before, start) = (cpu_time(), Instant::now());
    run_until(&mut reactor, "a second of EMFILE", |_| {
        start.elapsed() >= Duration::from_secs(1)
    });
    let (cpu, wall) = (cpu_time() - cpu_before, start.elapsed());

    let entries = log.entries();
    let errors = log.count_prefix("error");
    assert!(log.count("error exhausted") >= 1, "log: {entries:?}");
    assert_eq!(errors, log.count("error exhausted"), "log: {entries:?}");
    assert!(
        errors <= 20,
        "on_error {errors} times in {wall:?}: no backoff"
    );
    assert_eq!(log.count("accept"), 0, "log: {entries:?}");
    assert!(
        cpu < wall / 2,
        "the loop spun: {cpu:?} of CPU in {wall:?} with the backlog stuck"
    );

    drop(restore);
    assert_eq!(nofile_limit().rlim_cur, original.rlim_cur);
    run_until(&mut reactor, "the waiting clients accepted", |_| {
        log.count("connect") == CLIENTS
    });
    for client in &mut clients {
        client.write_all(b"again").unwrap();
    }
    run_until(&mut reactor, "every echo", |_| log.count("echo") == CLIENTS);
    for client in &mut clients {
        let mut reply = [0; 5];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"again");
    }
    assert_eq!(log.count("accept"), CLIENTS);
}
