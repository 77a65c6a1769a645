//! The socket error queue (Linux `IP_RECVERR` / `IPV6_RECVERR`): with it on, ICMP errors
//! for datagrams sent from an unconnected socket are queued with the datagram that caused
//! them and read back with `recvmsg(MSG_ERRQUEUE)`. An unread error keeps `EPOLLERR`
//! raised, so the queue must be drained whenever the flag is seen (libuv bug #4447 spun
//! on exactly that).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::SockAddr;

/// One queued error.
pub(crate) struct QueuedError {
    pub(crate) errno: i32,
    /// Who reported it (the router or host that sent the ICMP message), if known.
    pub(crate) offender: Option<SockAddr>,
    /// Where the failed datagram was going.
    pub(crate) destination: Option<SockAddr>,
    /// The failed datagram's payload (as much as fit in the buffer).
    pub(crate) payload: Vec<u8>,
}

/// Turns the error queue on for a datagram socket of `family` (`AF_INET` or `AF_INET6`).
pub(crate) fn enable(fd: BorrowedFd<'_>, family: i32) -> io::Result<()> {
    let (level, name) = if family == libc::AF_INET6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    super::fd::set_socket_option_int(fd, level, name, 1)
}

/// Reads one error from the queue; `Ok(None)` when it is empty.
pub(crate) fn read(fd: BorrowedFd<'_>, payload: &mut [u8]) -> io::Result<Option<QueuedError>> {
    // Room for a sock_extended_err plus the offender's address, generously aligned.
    let mut control = [0u64; 64];
    // SAFETY: `try_init` provides storage for the destination address; the header points at
    // `payload`, `control` and that storage, all valid for writes for the whole call.
    let result = unsafe {
        SockAddr::try_init(|storage, len| {
            let mut iov = libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = storage.cast();
            msg.msg_namelen = *len;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(
                fd.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            *len = msg.msg_namelen;
            Ok((n as usize, parse_control(&msg)))
        })
    };
    let ((n, error), destination) = match result {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some((errno, offender)) = error else {
        return Ok(None);
    };
    Ok(Some(QueuedError {
        errno,
        offender,
        destination: (destination.len() > 0).then_some(destination),
        payload: payload[..n.min(payload.len())].to_vec(),
    }))
}

/// Finds the `sock_extended_err` among the control messages: its errno and the offender's
/// address that follows it (`SO_EE_OFFENDER`).
///
/// # Safety
///
/// `msg` must be a header just filled by a successful `recvmsg`, its control buffer valid.
unsafe fn parse_control(msg: &libc::msghdr) -> Option<(i32, Option<SockAddr>)> {
    // SAFETY: the caller guarantees the control buffer is valid; the CMSG_* macros stay
    // within `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let is_error = (header.cmsg_level == libc::SOL_IP
                && header.cmsg_type == libc::IP_RECVERR)
                || (header.cmsg_level == libc::SOL_IPV6 && header.cmsg_type == libc::IPV6_RECVERR);
            if is_error {
                let data = libc::CMSG_DATA(cmsg);
                let extended = std::ptr::read_unaligned(data.cast::<libc::sock_extended_err>());
                let after = data.add(std::mem::size_of::<libc::sock_extended_err>());
                let space = header.cmsg_len as usize - (after as usize - cmsg as usize);
                let offender = offender_address(after, space);
                return Some((extended.ee_errno as i32, offender));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
        None
    }
}

/// Reads the offender's `sockaddr` of `space` bytes at `at`, if it names an IP family.
///
/// # Safety
///
/// `at` must be readable for `space` bytes.
unsafe fn offender_address(at: *const u8, space: usize) -> Option<SockAddr> {
    let family_size = std::mem::size_of::<libc::sa_family_t>();
    if space < family_size {
        return None;
    }
    // SAFETY: `space` bytes are readable at `at` (caller); we copy at most that many.
    unsafe {
        let family = std::ptr::read_unaligned(at.cast::<libc::sa_family_t>());
        let size = match i32::from(family) {
            libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
            libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
            _ => return None,
        };
        if space < size {
            return None;
        }
        let (_, addr) = SockAddr::try_init(|storage, len| {
            std::ptr::copy_nonoverlapping(at, storage.cast::<u8>(), size);
            *len = size as libc::socklen_t;
            Ok(())
        })
        .ok()?;
        Some(addr)
    }
}
