//! The epoll(7) instance behind the default Linux backend.
//!
//! Only what the reactor uses: create, `EPOLL_CTL_ADD/MOD/DEL`, and the wait (`epoll_pwait`
//! without a signal mask, which is `epoll_wait`; strace shows it so) into room the caller
//! provides (the reactor's own list of reports). The timeout comes in whole milliseconds,
//! rounded up by the reactor (`selector::millis_rounded_up`).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::syscall::{result, syscall6};

pub(crate) use libc::epoll_event as Event;

pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn ctl(&self, op: i32, fd: BorrowedFd<'_>, flags: u32, data: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: flags,
            u64: data,
        };
        // SAFETY: `event` is valid for the call; both descriptors are live.
        let rc = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_raw_fd(), &mut event) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Waits up to `timeout_ms` milliseconds (`None`: without end) for events, filling
    /// `events` from the start; returns how many arrived, which the kernel keeps within
    /// `events.len()`.
    pub(crate) fn wait(
        &self,
        events: &mut [MaybeUninit<Event>],
        timeout_ms: Option<u32>,
    ) -> io::Result<usize> {
        let timeout_ms = super::timeout_arg(timeout_ms);
        // SAFETY: `events` is a valid writable array of `events.len()` entries; a null
        // signal mask makes epoll_pwait exactly epoll_wait. Made directly, like the hot
        // path's reads and writes (see `sys::fd`): glibc's wrapper is a cancellation
        // point, ~35 instructions a turn for cancellation nobody uses.
        let ret = unsafe {
            syscall6(
                libc::SYS_epoll_pwait,
                self.fd.as_raw_fd() as usize,
                events.as_mut_ptr() as usize,
                events.len().min(i32::MAX as usize),
                timeout_ms as isize as usize,
                0, // no signal mask
                8, // the kernel's sigset size (ignored without a mask)
            )
        };
        result(ret)
    }
}
