//! [`Backend::Poll`](super::Backend::Poll): poll(2), level-triggered only. It exists to
//! prove the seam: on it every handle is registered level-triggered, and the reactor asks
//! for writability only while it has something to write. One `poll` scans every
//! registration, so it suits a few hundred descriptors, not tens of thousands.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::{Interest, Readiness, Ready, Selector, Trigger};
use crate::sys::poll::{wait, PollFd};

#[derive(Default)]
struct Registrations {
    fds: Vec<PollFd>,
    keys: Vec<u64>,
    index: HashMap<RawFd, usize>,
}

#[derive(Default)]
pub(crate) struct PollSelector {
    registrations: RefCell<Registrations>,
}

fn events(interest: Interest) -> i16 {
    let mut events = libc::POLLRDHUP;
    if interest.read {
        events |= libc::POLLIN | libc::POLLPRI;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    events
}

impl Selector for PollSelector {
    fn register(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        _trigger: Trigger,
    ) -> io::Result<()> {
        let mut r = self.registrations.borrow_mut();
        let raw = fd.as_raw_fd();
        if r.index.contains_key(&raw) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let at = r.fds.len();
        r.fds.push(PollFd {
            fd: raw,
            events: events(interest),
            revents: 0,
        });
        r.keys.push(key);
        r.index.insert(raw, at);
        Ok(())
    }

    fn reregister(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        _trigger: Trigger,
    ) -> io::Result<()> {
        let mut r = self.registrations.borrow_mut();
        let at = *r
            .index
            .get(&fd.as_raw_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        r.fds[at].events = events(interest);
        r.keys[at] = key;
        Ok(())
    }

    fn deregister(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let mut r = self.registrations.borrow_mut();
        let at = r
            .index
            .remove(&fd.as_raw_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        r.fds.swap_remove(at);
        r.keys.swap_remove(at);
        if let Some(moved) = r.fds.get(at).map(|p| p.fd) {
            r.index.insert(moved, at);
        }
        Ok(())
    }

    fn select(&mut self, out: &mut Vec<Readiness>, timeout_ms: Option<u32>) -> io::Result<()> {
        let r = self.registrations.get_mut();
        if wait(&mut r.fds, timeout_ms)? == 0 {
            return Ok(());
        }
        for (pollfd, &key) in r.fds.iter().zip(&r.keys) {
            let bits = pollfd.revents;
            if bits == 0 {
                continue;
            }
            let ready = Ready::when(bits & (libc::POLLIN | libc::POLLPRI) != 0, Ready::READABLE)
                | Ready::when(bits & libc::POLLOUT != 0, Ready::WRITABLE)
                | Ready::when(
                    bits & (libc::POLLHUP | libc::POLLRDHUP) != 0,
                    Ready::READ_CLOSED,
                )
                | Ready::when(bits & (libc::POLLERR | libc::POLLNVAL) != 0, Ready::ERROR);
            out.push(Readiness::new(key, ready));
        }
        Ok(())
    }

    fn reports_read_closed(&self) -> bool {
        true
    }

    fn supports_edge(&self) -> bool {
        false
    }
}
