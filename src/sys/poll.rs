//! poll(2), for [`Backend::Poll`](crate::Backend::Poll).

use std::io;

pub(crate) use libc::pollfd as PollFd;

/// Waits on `fds`, up to `timeout_ms` milliseconds (`None`: without end); returns how
/// many have events (`revents` set).
pub(crate) fn wait(fds: &mut [PollFd], timeout_ms: Option<u32>) -> io::Result<usize> {
    let timeout_ms = super::timeout_arg(timeout_ms);
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd entries.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
