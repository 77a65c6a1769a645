//! [`Backend::Epoll`](super::Backend::Epoll): epoll(7) without a middle layer.
//!
//! Edge registrations ask for `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` once; level ones
//! ask for what the interest says (plus `EPOLLRDHUP`). `EPOLLERR` and `EPOLLHUP` are always
//! reported by the kernel.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

use super::{Interest, Readiness, Selector, Trigger};
use crate::sys::epoll::{Epoll, Event};

/// Most reports one wait takes.
const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct EpollSelector {
    epoll: Epoll,
}

impl EpollSelector {
    pub(crate) fn new() -> io::Result<EpollSelector> {
        Ok(EpollSelector {
            epoll: Epoll::new()?,
        })
    }
}

/// What a registration asks for. Reports carry only these bits plus `EPOLLERR` and
/// `EPOLLHUP`, which is what lets `Ready` keep `EPOLLRDHUP` in bit 5 (`EPOLLNVAL`'s): asking
/// for more (`EPOLLPRI` is fine; `EPOLLNVAL` is not) would need `Ready::from_epoll` changed.
fn flags(interest: Interest, trigger: Trigger) -> u32 {
    let mut flags = libc::EPOLLRDHUP as u32;
    if interest.read {
        flags |= libc::EPOLLIN as u32;
    }
    if interest.write {
        flags |= libc::EPOLLOUT as u32;
    }
    if trigger == Trigger::Edge {
        flags |= libc::EPOLLET as u32;
    }
    flags
}

impl Selector for EpollSelector {
    fn register(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.epoll
            .ctl(libc::EPOLL_CTL_ADD, fd, flags(interest, trigger), key)
    }

    fn reregister(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.epoll
            .ctl(libc::EPOLL_CTL_MOD, fd, flags(interest, trigger), key)
    }

    fn deregister(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.epoll.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn select(&mut self, out: &mut Vec<Readiness>, timeout_ms: Option<u32>) -> io::Result<()> {
        // The kernel writes its reports straight after what `out` holds.
        out.reserve(EVENTS_PER_WAIT);
        let room = &mut out.spare_capacity_mut()[..EVENTS_PER_WAIT];
        // SAFETY: `Readiness` is `repr(transparent)` over `epoll_event`, so the two slices
        // have the same layout.
        let room =
            unsafe { &mut *(room as *mut [MaybeUninit<Readiness>] as *mut [MaybeUninit<Event>]) };
        let n = self.epoll.wait(room, timeout_ms)?;
        // SAFETY: `wait` returns how many of `room`'s first entries the kernel wrote (never
        // more than `room` holds), and `room` starts at `out`'s length.
        unsafe { out.set_len(out.len() + n) };
        Ok(())
    }

    fn reports_read_closed(&self) -> bool {
        true
    }

    fn closing_deregisters(&self) -> bool {
        true
    }
}
