//! Any pollable descriptor can be added: an eventfd, timerfd or pidfd is detected as a
//! pollable handle (or forced with `Options::kind`), its readiness reaches `on_readable`,
//! and the handler reads it. Regular files are still refused. `.ci/run` runs them on every
//! backend.

mod util;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use eventmux::{Context, Handler, Kind, Options, Reactor, Transport};
use util::{run_until, settle};

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new descriptor (checked), which nothing else owns.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh, valid descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn signal_eventfd(fd: i32, value: u64) {
    // SAFETY: writes 8 bytes from a valid u64 to a live descriptor.
    let n = unsafe { libc::write(fd, (&value as *const u64).cast(), 8) };
    assert_eq!(n, 8);
}

/// Reads each readiness as an eventfd counter and keeps the values.
struct Counter(Rc<RefCell<Vec<u64>>>);

impl Handler for Counter {
    fn on_readable(&mut self, ctx: &mut Context<'_>) {
        let mut value = [0u8; 8];
        if let Ok(8) = ctx.read(&mut value) {
            self.0.borrow_mut().push(u64::from_ne_bytes(value));
        }
    }
}

#[test]
fn an_eventfd_is_a_pollable_handle_whose_readiness_reaches_on_readable() {
    let mut reactor = Reactor::new().unwrap();
    let counter = eventfd();
    let raw = counter.as_raw_fd();
    let values = Rc::new(RefCell::new(Vec::new()));
    let token = reactor
        .add(counter, Options::new(), Counter(values.clone()))
        .unwrap();
    let handle = reactor.handle(token).unwrap();
    assert_eq!(handle.kind(), Some(Kind::Pollable));
    assert_eq!(handle.transport(), Some(Transport::Other));

    settle(&mut reactor);
    assert!(
        values.borrow().is_empty(),
        "not readable before it is signalled"
    );
    signal_eventfd(raw, 3);
    run_until(&mut reactor, "the counter", |_| !values.borrow().is_empty());
    signal_eventfd(raw, 4);
    run_until(&mut reactor, "the second", |_| values.borrow().len() == 2);
    settle(&mut reactor);
    assert_eq!(
        *values.borrow(),
        [3, 4],
        "one on_readable per signal once read"
    );
}

#[test]
fn a_pidfd_reports_its_child_s_exit() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor (checked).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        eprintln!(
            "skipped: pidfd_open is not available here ({})",
            std::io::Error::last_os_error()
        );
        let _ = child.wait();
        return;
    }
    // SAFETY: `fd` is a fresh, valid descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut reactor = Reactor::new().unwrap();
    let exited = Rc::new(RefCell::new(false));

    struct Exit(Rc<RefCell<bool>>);
    impl Handler for Exit {
        fn on_readable(&mut self, ctx: &mut Context<'_>) {
            *self.0.borrow_mut() = true;
            ctx.close(); // a pidfd stays readable: done with it
        }
    }
    reactor
        .add(pidfd, Options::new(), Exit(exited.clone()))
        .unwrap();
    run_until(&mut reactor, "the child's exit", |_| *exited.borrow());
    assert!(child.wait().unwrap().success());
}

#[test]
fn regular_files_are_still_refused() {
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let mut reactor = Reactor::new().unwrap();
    let error = reactor
        .add(file, Options::new(), Counter(Rc::default()))
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
}
