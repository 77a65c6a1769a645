//! SIGPIPE. Sockets are written with `MSG_NOSIGNAL`, but pipes can only be written with
//! `write(2)`, which raises SIGPIPE when the reader has gone. Rust programs ignore SIGPIPE
//! from startup; a C host embedding this library may not, so the reactor makes sure.

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
