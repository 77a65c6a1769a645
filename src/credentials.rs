//! [`Credentials`]: who is on the other end of a Unix socket (`SO_PEERCRED`), as the kernel
//! recorded it when the connection was made. EventMux reports them with `accepted` events
//! on Unix sockets (`pid`, `uid`, `gid`).

use std::os::fd::BorrowedFd;

use crate::sys;

/// The peer process of a Unix stream connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    pid: i32,
    uid: u32,
    gid: u32,
}

impl Credentials {
    pub(crate) fn of(fd: BorrowedFd<'_>) -> std::io::Result<Credentials> {
        let cred = sys::fd::peer_credentials(fd)?;
        Ok(Credentials {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// The peer's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The peer's user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}
