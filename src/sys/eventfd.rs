//! eventfd(2): the counter other threads write to wake the reactor out of `epoll_wait`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub(crate) fn new() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to the counter (wakes a waiter).
pub(crate) fn signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, valid for the call.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    // EAGAIN means the counter is saturated: a wakeup is pending anyway.
    if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resets the counter to zero.
pub(crate) fn reset(fd: BorrowedFd<'_>) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into `value`. EAGAIN (already zero) is fine.
    unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
}
