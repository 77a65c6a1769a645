//! Passing descriptors over Unix sockets (`SCM_RIGHTS`): `sendmsg` with the descriptors as
//! ancillary data, and `recvmsg` that takes whatever descriptors came with the bytes
//! (close-on-exec at once, `MSG_CMSG_CLOEXEC`).

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// At most this many descriptors are taken per receive: more are closed by the kernel and
/// the receive reports `MSG_CTRUNC` (a peer cannot fill our descriptor table in one go).
pub(crate) const MAX_FDS_PER_READ: usize = 32;

/// Room for one `SCM_RIGHTS` message of `count` descriptors, aligned for `cmsghdr`.
fn control_space(count: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((count * mem::size_of::<RawFd>()) as u32) as usize }
}

/// A control buffer aligned for `cmsghdr` (u64 words), `bytes` long at least.
fn control_buffer(bytes: usize) -> Vec<u64> {
    vec![0u64; bytes.div_ceil(mem::size_of::<u64>())]
}

/// Sends `bufs` with `fds` attached (`MSG_NOSIGNAL`); the descriptors arrive with the first
/// byte of what is written. Returns the bytes written (at least one, or the descriptors did
/// not go: the caller sends them again with what is left).
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    let data_len = fds.len() * mem::size_of::<RawFd>();
    let mut control = control_buffer(control_space(fds.len()));
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec; // IoSlice is an iovec on unix
    msg.msg_iovlen = bufs.len();
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control_space(fds.len());
    // SAFETY: `control` is msg_controllen bytes, aligned, so CMSG_FIRSTHDR gives a header
    // inside it with room for CMSG_LEN(data_len) bytes; the descriptors are copied into
    // its data, which CMSG_DATA points at. sendmsg reads `bufs` and `control` only.
    let sent = unsafe {
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(data_len as u32) as usize;
        let data = libc::CMSG_DATA(header).cast::<RawFd>();
        for (i, fd) in fds.iter().enumerate() {
            data.add(i).write_unaligned(fd.as_raw_fd());
        }
        libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Receives into `buf`, appending the descriptors that came with the bytes to `fds`.
/// Returns the bytes read (0: end of stream) and whether descriptors were cut off
/// (more than [`MAX_FDS_PER_READ`] came; the kernel closed the rest).
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<(usize, bool)> {
    let space = control_space(MAX_FDS_PER_READ);
    let mut control = control_buffer(space);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: recvmsg writes at most iov_len bytes into `buf` and msg_controllen bytes into
    // `control`, both valid for the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `control` with msg_controllen bytes of well-formed cmsghdrs;
    // CMSG_FIRSTHDR/CMSG_NXTHDR walk them within that length, and each SCM_RIGHTS header's
    // data holds (cmsg_len - CMSG_LEN(0)) / 4 descriptors newly installed in this process,
    // owned by nobody else.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                for i in 0..bytes / mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            header = libc::CMSG_NXTHDR(&msg, header);
        }
    }
    Ok((n as usize, msg.msg_flags & libc::MSG_CTRUNC != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn descriptors_arrive_with_their_bytes() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut pipe_a, pipe_b) = UnixStream::pair().unwrap();
        let sent = send_with_fds(a.as_fd(), &[IoSlice::new(b"x")], &[pipe_b.as_fd()]).unwrap();
        assert_eq!(sent, 1);
        drop(pipe_b);
        let mut buf = [0u8; 8];
        let mut fds = Vec::new();
        let (n, cut) = recv_with_fds(b.as_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!((n, cut, fds.len()), (1, false, 1));
        // The received descriptor is the other end of pipe_a.
        let mut other = UnixStream::from(fds.pop().unwrap());
        pipe_a.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        other.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
    }

    #[test]
    fn more_descriptors_than_one_read_takes_are_cut_off_and_reported() {
        let (a, b) = UnixStream::pair().unwrap();
        let (one, _two) = UnixStream::pair().unwrap();
        let many: Vec<BorrowedFd<'_>> = (0..MAX_FDS_PER_READ + 5).map(|_| one.as_fd()).collect();
        send_with_fds(a.as_fd(), &[IoSlice::new(b"x")], &many).unwrap();
        let mut fds = Vec::new();
        let (n, cut) = recv_with_fds(b.as_fd(), &mut [0u8; 8], &mut fds).unwrap();
        assert_eq!((n, cut), (1, true));
        assert!(fds.len() <= MAX_FDS_PER_READ);
    }
}
