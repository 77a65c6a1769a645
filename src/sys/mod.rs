//! Thin, safe wrappers over the system calls that `std` and `socket2` do not expose in the
//! shape the hot path needs. Every `unsafe` block of the crate lives under this module.
//!
//! - [`clock`]: the monotonic clock in milliseconds, read once per turn.
//! - [`epoll`] (Linux only): the epoll instance behind the default readiness backend.
//! - [`fd`]: read, vectored send without SIGPIPE, accept4 with the flags we want, datagram
//!   receive and batched send (`sendmmsg`), peer credentials, and the queries used to
//!   classify a descriptor.
//! - [`errqueue`] (Linux only): the socket error queue behind the Errors option.
//! - [`signal`]: making sure SIGPIPE cannot kill the process on a pipe write.
//! - [`eventfd`] (Linux only): the counter that wakes the reactor from other threads.
//! - [`pidfd`] (Linux 5.3+): watching and signalling a child process by descriptor.
//! - [`poll`]: poll(2), for the level-triggered backend.
//! - [`rights`]: passing descriptors over Unix sockets (`SCM_RIGHTS`).
//! - [`syscall`]: the hot path's system calls, trapped inline on x86_64 and aarch64.
//! - [`sched`] (Linux only): the `SCHED_BATCH` policy pump threads run under, and CPU
//!   affinity for a reactor group's threads.

pub(crate) mod clock;
pub(crate) mod epoll;
pub(crate) mod errqueue;
pub(crate) mod eventfd;
pub(crate) mod fd;
pub(crate) mod pidfd;
pub(crate) mod poll;
pub(crate) mod rights;
pub(crate) mod sched;
pub(crate) mod signal;
pub(crate) mod syscall;

/// The timeout argument of epoll_wait(2) and poll(2): `-1` for none, else the
/// milliseconds, capped at what the argument holds.
pub(crate) fn timeout_arg(timeout_ms: Option<u32>) -> libc::c_int {
    timeout_ms.map_or(-1, |ms| ms.min(libc::c_int::MAX as u32) as libc::c_int)
}
