//! Signals. SIGPIPE: sockets are written with `MSG_NOSIGNAL`, but pipes can only be written
//! with `write(2)`, which raises SIGPIPE when the reader has gone. Rust programs ignore
//! SIGPIPE from startup; a C host embedding this library may not, so the reactor makes sure.
//! And the signalfd behind `Reactor::signals`: blocking signals, opening the descriptor,
//! reading what arrived.

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Sets SIGPIPE to "ignore" if it is at its default action (which kills the process);
/// leaves any handler or mask the program chose alone.
pub(crate) fn ignore_sigpipe() {
    // SAFETY: sigaction with a null new action only reads the current one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_DFL
        {
            let mut ignore: libc::sigaction = std::mem::zeroed();
            ignore.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(libc::SIGPIPE, &ignore, std::ptr::null_mut());
        }
    }
}

/// A `sigset_t` holding `signals`.
fn set_of(signals: &[i32]) -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigemptyset initializes the set it is given; sigaddset only writes into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &signal in signals {
            if libc::sigaddset(&mut set, signal) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(set)
    }
}

/// Blocks `signals` in the calling thread (threads it starts afterwards inherit the mask).
pub(crate) fn block(signals: &[i32]) -> std::io::Result<()> {
    let set = set_of(signals)?;
    // SAFETY: `set` is an initialized sigset; the old mask is not asked for.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Blocks every signal in the calling thread: for threads eventmux starts, so that a
/// signal meant for a signalfd is never delivered to them instead.
pub(crate) fn block_all() {
    // SAFETY: sigfillset initializes the set; pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A non-blocking, close-on-exec signalfd for `signals`.
pub(crate) fn signalfd(signals: &[i32]) -> std::io::Result<OwnedFd> {
    let set = set_of(signals)?;
    // SAFETY: `set` is initialized; -1 asks for a new descriptor, which nothing else owns.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd (`None` when none is pending).
pub(crate) fn read_signal(fd: BorrowedFd<'_>) -> std::io::Result<Option<libc::signalfd_siginfo>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is valid for writes of `size` bytes for the call.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(e),
        };
    }
    if n as usize != size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "short read from a signalfd",
        ));
    }
    // SAFETY: the kernel wrote a whole signalfd_siginfo.
    Ok(Some(unsafe { info.assume_init() }))
}
