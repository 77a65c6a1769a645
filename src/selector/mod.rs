//! Readiness backends: the seam between the reactor and the OS notification mechanism
//! (EventMux's `EventLoop` option).
//!
//! The reactor asks a [`Selector`] for two registration styles:
//!
//! - **edge** ([`Trigger::Edge`]): registered once for reading and writing, never touched
//!   again. The reactor remembers readiness itself and clears it only when a read or write
//!   comes back short or with `EWOULDBLOCK`. This is what buffered handles use, so a busy
//!   connection costs no `epoll_ctl` at all.
//! - **level** ([`Trigger::Level`]): reported for as long as the condition holds, with an
//!   interest the reactor updates. Manual modes (ManualRead, ManualWrite, ManualAccept)
//!   use it, because there the *user* does the I/O and the reactor cannot see `EWOULDBLOCK`.
//!
//! Backends: [`Backend::Epoll`] talks to epoll(7) directly (Linux, the default),
//! [`Backend::Polling`] goes through the portable `polling` crate, and [`Backend::Poll`]
//! uses poll(2), level-triggered only (a backend without edge triggering gets every handle
//! registered level-triggered, with interest kept up to date by the reactor). On Linux `polling` 3.11
//! adds a `timerfd_settime` and an eventfd `read` plus two `epoll_ctl` calls to every
//! `wait()`, which is four syscalls per turn that a ping-pong server pays per message;
//! that is why it is not the default here (see ARCHITECTURE.md for the measurement).

mod epoll;
mod poll;
mod polling;

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// Which readiness mechanism a [`Reactor`](crate::Reactor) uses.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Backend, Reactor};
/// let reactor = Reactor::with_backend(Backend::Polling)?;
/// # drop(reactor); Ok(()) }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// epoll(7) called directly: no syscall beyond `epoll_wait` per turn. Linux only.
    #[default]
    Epoll,
    /// The `polling` crate: portable (kqueue, event ports, epoll), a few syscalls dearer
    /// per turn on Linux.
    Polling,
    /// poll(2): level-triggered, a scan of every descriptor per wait. Proves the backend
    /// seam; fine for a few hundred handles.
    Poll,
}

impl Backend {
    /// The backend named by the `EVENTMUX_BACKEND` environment variable (`epoll`,
    /// `polling` or `poll`), or the default. [`Reactor::new`](crate::Reactor::new) uses
    /// it, which lets a whole test suite run on each backend without changing code.
    pub fn from_env() -> Backend {
        match std::env::var("EVENTMUX_BACKEND").as_deref() {
            Ok("epoll") => Backend::Epoll,
            Ok("polling") => Backend::Polling,
            Ok("poll") => Backend::Poll,
            Ok(other) => {
                log::warn!("EVENTMUX_BACKEND={other:?} is not a backend; using the default");
                Backend::default()
            }
            Err(_) => Backend::default(),
        }
    }
}

/// What a registration waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl Interest {
    pub(crate) const BOTH: Interest = Interest {
        read: true,
        write: true,
    };
}

/// How readiness is reported for one registration; see the module docs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Edge,
    Level,
}

/// One readiness report: the kernel's own `epoll_event` (its key, and its events as
/// [`Ready`] reads them), so that the epoll backend waits straight into the reactor's list
/// of reports, with no pass to convert each; the other backends build theirs with
/// [`Readiness::new`]. `READ_CLOSED` and `ERROR` are hints (HUP/RDHUP, ERR): the reactor
/// confirms them with a read or `SO_ERROR`.
#[derive(Copy, Clone)]
#[repr(transparent)]
pub(crate) struct Readiness(libc::epoll_event);

impl Readiness {
    pub(crate) fn new(key: u64, ready: Ready) -> Readiness {
        Readiness(libc::epoll_event {
            events: ready.to_epoll(),
            u64: key,
        })
    }

    /// The key the descriptor was registered with.
    #[inline]
    pub(crate) fn key(self) -> u64 {
        self.0.u64
    }

    #[inline]
    pub(crate) fn ready(self) -> Ready {
        Ready::from_epoll(self.0.events)
    }
}

/// Readiness as a set of flags: what an event reports, and what a slot knows of (under
/// edge triggering a flag stays set until a read or write shows otherwise; under level
/// triggering it is cleared after each turn). One byte, so that taking an event into a
/// slot is one `or`: epoll's own bits where they fit in one (`EPOLLIN`, `EPOLLPRI`,
/// `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`), and `EPOLLRDHUP` moved down to `0x20`, so that
/// reading an epoll report is a shift and two masks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready(u8);

/// Where `EPOLLRDHUP` (`0x2000`) sits in a [`Ready`].
const RDHUP: u8 = 0x20;

impl Ready {
    /// Data (`EPOLLIN`) or urgent data (`EPOLLPRI`) to read.
    pub(crate) const READABLE: Ready = Ready(libc::EPOLLIN as u8 | libc::EPOLLPRI as u8);
    pub(crate) const WRITABLE: Ready = Ready(libc::EPOLLOUT as u8);
    /// The peer closed its sending side (RDHUP/HUP): read on to the end of stream.
    pub(crate) const READ_CLOSED: Ready = Ready(libc::EPOLLHUP as u8 | RDHUP);
    pub(crate) const ERROR: Ready = Ready(libc::EPOLLERR as u8);

    /// `flag` if `on`, else nothing.
    pub(crate) fn when(on: bool, flag: Ready) -> Ready {
        Ready(flag.0 * u8::from(on))
    }

    /// The flags of an epoll report's events.
    #[inline]
    fn from_epoll(events: u32) -> Ready {
        // The low byte holds all but RDHUP, which comes down from bit 13 to bit 5 (bit 5
        // is EPOLLNVAL, which epoll reports only when asked for, and it never is).
        Ready((events as u8 & !RDHUP) | ((events >> 8) as u8 & RDHUP))
    }

    /// [`Ready::from_epoll`]'s inverse.
    fn to_epoll(self) -> u32 {
        u32::from(self.0 & !RDHUP) | (u32::from(self.0 & RDHUP) << 8)
    }

    pub(crate) fn insert(&mut self, flags: Ready) {
        self.0 |= flags.0;
    }

    pub(crate) fn remove(&mut self, flags: Ready) {
        self.0 &= !flags.0;
    }

    pub(crate) fn readable(self) -> bool {
        self.0 & Ready::READABLE.0 != 0
    }

    pub(crate) fn writable(self) -> bool {
        self.0 & Ready::WRITABLE.0 != 0
    }

    pub(crate) fn read_closed(self) -> bool {
        self.0 & Ready::READ_CLOSED.0 != 0
    }

    pub(crate) fn error(self) -> bool {
        self.0 & Ready::ERROR.0 != 0
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;

    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

/// A readiness notification mechanism.
pub(crate) trait Selector {
    fn register(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;
    fn reregister(
        &self,
        fd: BorrowedFd<'_>,
        key: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;
    fn deregister(&self, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Appends the reports that arrive within `timeout_ms` milliseconds (`None`: wait
    /// forever) to `out`.
    fn select(&mut self, out: &mut Vec<Readiness>, timeout_ms: Option<u32>) -> io::Result<()>;
    /// Whether a peer's half-close is reported (`EPOLLRDHUP`) together with the data before
    /// it. Only then may the reactor take a short read as "drained" and skip the extra read
    /// that would return `EWOULDBLOCK`: otherwise a FIN that arrived with the last bytes
    /// would never produce another edge.
    fn reports_read_closed(&self) -> bool;
    /// Whether edge-triggered registrations are supported. Without them every handle is
    /// registered level-triggered.
    fn supports_edge(&self) -> bool {
        true
    }
    /// Whether closing a descriptor that no other descriptor shares ends its registration
    /// by itself (epoll does; a backend with its own list of descriptors does not), so the
    /// reactor can skip deregistering a handle it is about to close.
    fn closing_deregisters(&self) -> bool {
        false
    }
}

/// `d` in whole milliseconds, rounded *up* so that a wait never ends before its deadline
/// (a timer due in 0.3 ms must not make the loop wake early and spin until it is due);
/// at most `u32::MAX`.
pub(crate) fn millis_rounded_up(d: Duration) -> u32 {
    // Without u128 arithmetic (`as_millis`): this runs every turn.
    let ms = d
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)));
    u32::try_from(ms).unwrap_or(u32::MAX)
}

pub(crate) fn open(backend: Backend) -> io::Result<Box<dyn Selector>> {
    Ok(match backend {
        Backend::Epoll => Box::new(epoll::EpollSelector::new()?),
        Backend::Polling => Box::new(polling::PollingSelector::new()?),
        Backend::Poll => Box::new(poll::PollSelector::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::{millis_rounded_up, Readiness, Ready};
    use std::time::Duration;

    #[test]
    fn a_wait_is_never_shorter_than_asked() {
        assert_eq!(millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(millis_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_micros(300)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(7)), 7);
        assert_eq!(millis_rounded_up(Duration::from_micros(7_001)), 8);
        assert_eq!(millis_rounded_up(Duration::from_secs(3)), 3_000);
        assert_eq!(millis_rounded_up(Duration::MAX), u32::MAX);
    }

    #[test]
    fn epoll_bits_read_as_their_flags() {
        let report = |events: i32| {
            Readiness(libc::epoll_event {
                events: events as u32,
                u64: 9,
            })
        };
        assert_eq!(report(libc::EPOLLIN).key(), 9);
        assert!(report(libc::EPOLLIN).ready().readable());
        assert!(report(libc::EPOLLPRI).ready().readable());
        assert!(report(libc::EPOLLOUT).ready().writable());
        assert!(!report(libc::EPOLLOUT).ready().readable());
        assert!(report(libc::EPOLLRDHUP).ready().read_closed());
        assert!(report(libc::EPOLLHUP).ready().read_closed());
        assert!(report(libc::EPOLLERR).ready().error());
        let all = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLERR;
        let ready = report(all).ready();
        assert!(ready.readable() && ready.writable() && ready.read_closed() && ready.error());
        // What another backend builds reads back the same.
        for flags in [
            Ready::READABLE,
            Ready::WRITABLE,
            Ready::READ_CLOSED,
            Ready::ERROR,
        ] {
            assert_eq!(Readiness::new(1, flags).ready(), flags);
        }
    }
}
