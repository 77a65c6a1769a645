//! Batched datagram I/O on a connected UDP socket: `sendmmsg`, `send` of a run cut into
//! datagrams by the kernel (`UDP_SEGMENT`, generic segmentation offload), and `recvmmsg`.
//! Datagrams of one batch lie back to back in one buffer, `size` bytes apart.

use std::io;
use std::os::fd::RawFd;

/// The most datagrams one call of this module sends or receives.
pub const BATCH: usize = 64;

/// Sends `count` datagrams of `size` bytes, laid out back to back in `buf`, on a connected
/// socket, in as few `sendmmsg` calls as it takes.
pub fn send_datagrams(fd: RawFd, buf: &[u8], size: usize, count: usize) -> io::Result<()> {
    assert!(count <= BATCH && buf.len() >= count * size);
    // SAFETY: all-zero iovec and mmsghdr values are valid empty ones.
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..count {
        iovecs[i] = libc::iovec {
            iov_base: buf[i * size..].as_ptr() as *mut libc::c_void,
            iov_len: size,
        };
        headers[i].msg_hdr.msg_iov = &mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: every header points at an iovec over `buf`, valid for reads for the call;
        // the socket is connected, so no names are needed.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                headers[sent..].as_mut_ptr(),
                (count - sent) as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
}

/// Makes every send of more than `size` bytes on `fd` leave as datagrams of `size` bytes
/// (`UDP_SEGMENT`); false if the kernel refuses.
pub fn segment_sends(fd: RawFd, size: usize) -> bool {
    let Ok(size) = libc::c_int::try_from(size) else {
        return false;
    };
    // SAFETY: UDP_SEGMENT reads one c_int from a pointer valid for its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Sends `count` datagrams of `size` bytes, back to back in `buf`, on a connected socket
/// set up by [`segment_sends`]: one `send` per 64 datagrams (the kernel's segment limit) or
/// per 64 KB.
pub fn send_segmented(fd: RawFd, buf: &[u8], size: usize, count: usize) -> io::Result<()> {
    assert!(buf.len() >= count * size);
    let per_send = (65_000 / size).clamp(1, 64);
    let mut sent = 0;
    while sent < count {
        let n = (count - sent).min(per_send);
        let chunk = &buf[sent * size..][..n * size];
        // SAFETY: `chunk` is valid for reads of its length for the call.
        let rc = unsafe { libc::send(fd, chunk.as_ptr().cast(), chunk.len(), 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n;
    }
    Ok(())
}

/// Waits (up to the socket's read timeout) for a datagram, then takes up to [`BATCH`] of
/// those waiting in one `recvmmsg`: datagram `i` lands in `buf[i * size..][..size]` and its
/// length (`usize::MAX` if it was cut) in `lens[i]`.
pub fn receive_datagrams(
    fd: RawFd,
    buf: &mut [u8],
    size: usize,
    lens: &mut [usize; BATCH],
) -> io::Result<usize> {
    assert!(buf.len() >= BATCH * size);
    // SAFETY: all-zero iovec and mmsghdr values are valid empty ones.
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..BATCH {
        iovecs[i] = libc::iovec {
            iov_base: buf[i * size..].as_mut_ptr().cast(),
            iov_len: size,
        };
        headers[i].msg_hdr.msg_iov = &mut iovecs[i];
        headers[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points at an iovec over a distinct slot of `buf`, valid for
    // writes for the whole call. MSG_WAITFORONE: wait for the first, take what is there.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (len, header) in lens.iter_mut().zip(&headers[..n]) {
        *len = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            usize::MAX
        } else {
            header.msg_len as usize
        };
    }
    Ok(n)
}
