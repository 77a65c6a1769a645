//! Socket activation: adopting the listening sockets a supervisor (systemd, or anything that
//! speaks its protocol) opened and passed down, so that a restart never refuses a
//! connection. The supervisor sets `LISTEN_PID` to the server's pid and `LISTEN_FDS` to how
//! many descriptors it passed, starting at descriptor 3 (`SD_LISTEN_FDS_START`).
//! [`listen_fds`] takes them; hand each to [`Reactor::add`](crate::Reactor::add), which
//! detects a listener by `SO_ACCEPTCONN`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor a supervisor passes (systemd's `SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The descriptors a supervisor passed to this process (none if `LISTEN_PID` names another
/// process or the variables are missing). They are made close-on-exec, and the variables
/// are removed so that child processes do not take the descriptors for theirs. Call it
/// once, early, before starting threads (it changes the environment).
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Handler, Options, Reactor};
///
/// struct Server;
/// impl Handler for Server {}
///
/// let mut reactor = Reactor::new()?;
/// let passed = eventmux::listen_fds()?;
/// if passed.is_empty() {
///     reactor.listen("127.0.0.1:7007", Server)?; // started by hand
/// }
/// for fd in passed {
///     reactor.add(fd, Options::new(), Server)?;
/// }
/// reactor.run()
/// # }
/// ```
pub fn listen_fds() -> io::Result<Vec<OwnedFd>> {
    let pid = std::env::var("LISTEN_PID").unwrap_or_default();
    let fds = std::env::var("LISTEN_FDS").unwrap_or_default();
    let passed = passed_descriptors(&pid, &fds, std::process::id());
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    passed
        .map(|fd| {
            crate::sys::fd::set_cloexec(fd)?;
            // SAFETY: the supervisor passed `fd` to this process for it to own, and
            // nothing in this process has taken it (LISTEN_* are read once, then removed).
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .collect()
}

/// The descriptors `LISTEN_PID=pid` and `LISTEN_FDS=fds` name for the process `me`.
fn passed_descriptors(pid: &str, fds: &str, me: u32) -> std::ops::Range<RawFd> {
    let for_me = pid.trim().parse::<u32>().is_ok_and(|pid| pid == me);
    let count = fds.trim().parse::<RawFd>().unwrap_or(0).clamp(0, 1 << 16);
    if for_me {
        LISTEN_FDS_START..LISTEN_FDS_START + count
    } else {
        LISTEN_FDS_START..LISTEN_FDS_START
    }
}

#[cfg(test)]
mod tests {
    use super::passed_descriptors;

    #[test]
    fn only_descriptors_passed_to_this_process_are_taken() {
        assert_eq!(passed_descriptors("42", "2", 42), 3..5);
        assert_eq!(passed_descriptors("41", "2", 42), 3..3, "another process's");
        assert_eq!(passed_descriptors("", "2", 42), 3..3, "no LISTEN_PID");
        assert_eq!(passed_descriptors("42", "", 42), 3..3, "no LISTEN_FDS");
        assert_eq!(passed_descriptors("42", "-1", 42), 3..3, "nonsense");
        assert_eq!(passed_descriptors(" 42 ", "1\n", 42), 3..4);
    }
}
