//! [`Backend::Polling`](super::Backend::Polling): the portable backend over the `polling`
//! crate. Keys are the token's 64-bit value as `usize`; on 32-bit targets the generation is
//! cut off, which is safe because a handle is always deregistered before its slot is reused.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

use super::{Interest, Readiness, Ready, Selector, Trigger};

pub(crate) struct PollingSelector {
    poller: Poller,
    events: Events,
}

impl PollingSelector {
    pub(crate) fn new() -> io::Result<PollingSelector> {
        Ok(PollingSelector {
            poller: Poller::new()?,
            events: Events::new(),
        })
    }
}

fn event(key: u64, interest: Interest) -> Event {
    Event::new(key as usize, interest.read, interest.write)
}

fn mode(trigger: Trigger) -> PollMode {
    match trigger {
        Trigger::Edge => PollMode::Edge,
        Trigger::Level => PollMode::Level,
    }
}

impl Selector for PollingSelector {
    fn register(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        // SAFETY: the reactor deregisters every descriptor before closing or handing it back,
        // which is the contract `Poller::add_with_mode` asks for.
        unsafe {
            self.poller
                .add_with_mode(fd.as_raw_fd(), event(key, interest), mode(trigger))
        }
    }

    fn reregister(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.poller
            .modify_with_mode(fd, event(key, interest), mode(trigger))
    }

    fn deregister(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }

    fn select(&mut self, out: &mut Vec<Readiness>, timeout_ms: Option<u32>) -> io::Result<()> {
        self.events.clear();
        // Whole milliseconds, as every backend waits (`polling` could take finer ones).
        let timeout = timeout_ms.map(|ms| Duration::from_millis(u64::from(ms)));
        self.poller.wait(&mut self.events, timeout)?;
        out.extend(self.events.iter().map(|event| {
            let ready = Ready::when(event.readable, Ready::READABLE)
                | Ready::when(event.writable, Ready::WRITABLE)
                | Ready::when(event.is_interrupt(), Ready::READ_CLOSED)
                | Ready::when(event.is_err().unwrap_or(false), Ready::ERROR);
            Readiness::new(event.key as u64, ready)
        }));
        Ok(())
    }

    fn reports_read_closed(&self) -> bool {
        // `polling` maps its "interrupt" to EPOLLHUP only, never EPOLLRDHUP.
        false
    }
}
