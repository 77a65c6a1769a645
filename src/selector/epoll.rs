//! [`Backend::Epoll`](super::Backend::Epoll): epoll(7) without a middle layer.
//!
//! Edge registrations ask for `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` once; level ones
//! ask for what the interest says (plus `EPOLLRDHUP`). `EPOLLERR` and `EPOLLHUP` are always
//! reported by the kernel.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{Interest, Readiness, Ready, Selector, Trigger};
use crate::sys::epoll::{Epoll, Event};

const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct EpollSelector {
    epoll: Epoll,
    events: Vec<Event>,
}

impl EpollSelector {
    pub(crate) fn new() -> io::Result<EpollSelector> {
        Ok(EpollSelector {
            epoll: Epoll::new()?,
            events: vec![Event { events: 0, u64: 0 }; EVENTS_PER_WAIT],
        })
    }
}

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

    fn select(&mut self, out: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        let n = self.epoll.wait(&mut self.events, timeout)?;
        out.extend(self.events[..n].iter().map(|event| {
            let bits = event.events;
            Readiness {
                key: event.u64,
                ready: Ready::when(
                    bits & (libc::EPOLLIN as u32 | libc::EPOLLPRI as u32) != 0,
                    Ready::READABLE,
                ) | Ready::when(bits & libc::EPOLLOUT as u32 != 0, Ready::WRITABLE)
                    | Ready::when(
                        bits & (libc::EPOLLHUP as u32 | libc::EPOLLRDHUP as u32) != 0,
                        Ready::READ_CLOSED,
                    )
                    | Ready::when(bits & libc::EPOLLERR as u32 != 0, Ready::ERROR),
            }
        }));
        Ok(())
    }

    fn reports_read_closed(&self) -> bool {
        true
    }

    fn closing_deregisters(&self) -> bool {
        true
    }
}
