//! Descriptor-level calls on the hot path and the classification of foreign descriptors.
//!
//! `read(2)`, `send(2)` (one buffer) and `sendmsg(2)` (several) are called directly so that
//! one reactor turn costs exactly one syscall per direction per handle: `std`'s `Write` for `TcpStream` would do, but it cannot
//! pass `MSG_NOSIGNAL`, and without it a write to a reset peer raises SIGPIPE in programs
//! (or C hosts) that have not ignored the signal.
//!
//! They go straight to the kernel ([`crate::sys::syscall`]): glibc's `read`, `send` and
//! `sendmsg` are thread-cancellation points, and their wrappers switch asynchronous
//! cancellation on and off around every call, about 55 instructions per message in
//! all (issue 19's callgrind profiles). The reactor never cancels threads, so it skips
//! them; errors come back as the kernel's `-errno`.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use socket2::SockAddr;

use super::syscall::{result, syscall3, syscall6};
use crate::handle::datagram_queue::{Message, SEND_DATAGRAMS, SEND_MESSAGES};

/// Reads once into `buf`. Returns `Ok(0)` at end of stream.
#[inline]
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for the whole call and
    // `fd` is a live descriptor borrowed for the call.
    let ret = unsafe {
        syscall3(
            libc::SYS_read,
            fd.as_raw_fd() as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
        )
    };
    result(ret)
}

/// Writes as much of `bufs` as the socket takes, in one `sendmsg(2)` with `MSG_NOSIGNAL`,
/// so a peer that has gone away yields `EPIPE` instead of killing the process.
pub(crate) fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is a valid "no name, no control data" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec` on unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs`, which outlives the call; the kernel only reads them.
    let ret = unsafe {
        syscall3(
            libc::SYS_sendmsg,
            fd.as_raw_fd() as usize,
            &msg as *const libc::msghdr as usize,
            libc::MSG_NOSIGNAL as usize,
        )
    };
    result(ret)
}

/// Writes as much of `buf` as the socket takes, in one `send(2)` with `MSG_NOSIGNAL` (the
/// one-buffer case of [`send_vectored`], without a `msghdr` to fill).
#[inline]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call and `fd` is a
    // live descriptor borrowed for the call; no address is passed.
    let ret = unsafe {
        syscall6(
            libc::SYS_sendto,
            fd.as_raw_fd() as usize,
            buf.as_ptr() as usize,
            buf.len(),
            libc::MSG_NOSIGNAL as usize,
            0,
            0,
        )
    };
    result(ret)
}

/// Accepts one connection, already non-blocking and close-on-exec (one syscall, where
/// `std`'s accept would need a second `fcntl`/`ioctl` to clear blocking mode).
pub(crate) fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SockAddr)> {
    // SAFETY: `try_init` hands us storage large enough for any address and its length,
    // which accept4 fills; it returns a fresh descriptor that nothing else owns.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let fd = libc::accept4(
                listener.as_raw_fd(),
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(OwnedFd::from_raw_fd(fd))
            }
        })?
    };
    Ok((fd, addr))
}

/// Reads an integer socket option. `ENOTSOCK` comes back as an error.
pub(crate) fn socket_option_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    socket2::SockRef::from(&fd).set_nonblocking(nonblocking)
}

/// Writes as much of `bufs` as the descriptor takes, in one `writev(2)`: for pipes and other
/// descriptors that are not sockets (and so cannot take `MSG_NOSIGNAL`; see
/// `crate::sys::signal`).
pub(crate) fn write_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: IoSlice is ABI-compatible with iovec; the buffers outlive the call.
    let n = unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), bufs.len() as i32) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Room for one control message carrying a `u16`, aligned as `cmsghdr` needs.
#[repr(C, align(8))]
#[derive(Copy, Clone)]
struct SegmentControl([u8; 32]);

/// Why [`send_datagrams`] sent nothing.
#[derive(Debug)]
pub(crate) struct SendFailure {
    /// What the first message got.
    pub(crate) error: io::Error,
    /// Whether that message was segmented (several datagrams in one `UDP_SEGMENT` send),
    /// so the error may be the segmentation's, not the datagrams'.
    pub(crate) segmented: bool,
}

/// Sends `messages` (as [`DatagramQueue::plan`](crate::handle::datagram_queue::DatagramQueue::plan)
/// cut them) of `datagrams` — `(payload, destination)`, no destination on a connected socket
/// — in one `sendmmsg(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT` (never blocking, even on a
/// blocking socket). A message with a segment size goes as one `UDP_SEGMENT` send: the stack
/// is walked once for the run and the datagrams are cut apart at the last moment (by the
/// NIC, by the kernel before the device, or on delivery over loopback); receivers see the
/// same datagrams as without it. Returns how many datagrams were sent; a failure means the
/// first message failed.
pub(crate) fn send_datagrams<'a>(
    fd: BorrowedFd<'_>,
    mut datagrams: impl Iterator<Item = (&'a [u8], Option<&'a SockAddr>)>,
    messages: &[Message],
) -> Result<usize, SendFailure> {
    let messages = &messages[..messages.len().min(SEND_MESSAGES)];
    let mut iovecs = [MaybeUninit::<libc::iovec>::uninit(); SEND_DATAGRAMS];
    let mut headers = [MaybeUninit::<libc::mmsghdr>::uninit(); SEND_MESSAGES];
    let mut controls = [MaybeUninit::<SegmentControl>::uninit(); SEND_MESSAGES];
    let mut used = 0;
    for (i, message) in messages.iter().enumerate() {
        let mut to = None;
        let first = used;
        for k in 0..message.count {
            let Some((data, destination)) = datagrams.next() else {
                break;
            };
            if k == 0 {
                to = destination;
            }
            if used < SEND_DATAGRAMS {
                iovecs[used].write(iovec_of(data));
                used += 1;
            }
        }
        let count = used - first;
        // SAFETY: an all-zero mmsghdr is a valid "no name, no control data" header.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_iov = iovecs[first..].as_mut_ptr().cast();
        header.msg_hdr.msg_iovlen = count as _;
        if let Some(to) = to {
            header.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = to.len();
        }
        if message.segment_size > 0 {
            let control = controls[i].write(SegmentControl([0; 32]));
            set_segment_size(&mut header.msg_hdr, control, message.segment_size);
        }
        headers[i].write(header);
    }
    // SAFETY: the first `messages.len()` headers were written above; each points at its
    // iovecs (written, and inside `iovecs`), (optionally) an address and (optionally) a
    // control message, all of which outlive the call; the kernel only reads them (and
    // writes each header's msg_len).
    let n = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr().cast(),
            messages.len() as u32,
            // MSG_DONTWAIT: a pump's socket stays blocking for its receive threads, and
            // the reactor thread must never wait on a peer's full queue.
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(SendFailure {
            error: io::Error::last_os_error(),
            segmented: messages.first().is_some_and(|m| m.segment_size > 0),
        });
    }
    Ok(messages[..n as usize].iter().map(|m| m.count).sum())
}

fn iovec_of(data: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    }
}

/// Attaches a `UDP_SEGMENT` control message (the segment size) to `header`, in `control`.
fn set_segment_size(header: &mut libc::msghdr, control: &mut SegmentControl, size: u16) {
    header.msg_control = control.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    header.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as _;
    // SAFETY: `header` points at `control`, which is aligned for cmsghdr and (32 bytes)
    // larger than CMSG_SPACE(2) (24 bytes), so CMSG_FIRSTHDR is non-null and the header and
    // its two data bytes lie inside `control`; the data is written unaligned.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(header);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
    }
}

/// The peer process of a connected Unix socket (`SO_PEERCRED`).
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(cred)
    }
}

/// Whether the descriptor was opened for reading and for writing (`O_ACCMODE`).
pub(crate) fn access_mode(fd: BorrowedFd<'_>) -> io::Result<(bool, bool)> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match flags & libc::O_ACCMODE {
        libc::O_RDONLY => (true, false),
        libc::O_WRONLY => (false, true),
        _ => (true, true),
    })
}

/// The file type bits of the descriptor (`S_IFIFO`, `S_IFCHR`, ...).
pub(crate) fn file_type(fd: BorrowedFd<'_>) -> io::Result<libc::mode_t> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is valid for writes of a `struct stat`.
    if unsafe { libc::fstat(fd.as_raw_fd(), stat.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled the struct.
    Ok(unsafe { stat.assume_init() }.st_mode & libc::S_IFMT)
}

/// Sets an integer socket option.
pub(crate) fn set_socket_option_int(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// One received datagram's place in a batch: its length (the real one, so larger than the
/// slot if truncated), whether it was truncated, and its sender.
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) truncated: bool,
    pub(crate) from: SockAddr,
}

/// Waits for the first datagram as the socket's mode says (a blocking socket blocks, a
/// non-blocking one fails with `EAGAIN`), then takes up to `buf.len() / slot` of those
/// waiting in one `recvmmsg(2)`: datagram `i` lands in `buf[i * slot..][..slot]`.
pub(crate) fn recv_datagrams(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    slot: usize,
    out: &mut Vec<Received>,
) -> io::Result<()> {
    const MAX: usize = 256;
    let count = (buf.len() / slot).clamp(1, MAX);
    // Only the first `count` entries are set up (and read back): zeroing all 256 would cost
    // 53 KB of stores per call.
    let mut iovecs = [MaybeUninit::<libc::iovec>::uninit(); MAX];
    let mut names = [MaybeUninit::<libc::sockaddr_storage>::uninit(); MAX];
    let mut headers = [MaybeUninit::<libc::mmsghdr>::uninit(); MAX];
    for i in 0..count {
        let iovec = iovecs[i].write(libc::iovec {
            iov_base: buf[i * slot..].as_mut_ptr().cast(),
            iov_len: slot,
        });
        // SAFETY: an all-zero mmsghdr is a valid empty header.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_iov = iovec;
        header.msg_hdr.msg_iovlen = 1;
        header.msg_hdr.msg_name = names[i].as_mut_ptr().cast();
        header.msg_hdr.msg_namelen =
            std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        headers[i].write(header);
    }
    // SAFETY: the first `count` headers are written; each points at a slot of `buf` and a
    // name buffer, both valid for writes for the whole call. MSG_WAITFORONE: block for the
    // first, take what is there; MSG_TRUNC: report each datagram's real length even when
    // its slot cut it.
    let n = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            headers.as_mut_ptr().cast(),
            count as u32,
            libc::MSG_WAITFORONE | libc::MSG_TRUNC,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    out.clear();
    for (header, name) in headers[..n as usize].iter().zip(&names) {
        // SAFETY: the first `count` headers were written above, and `n <= count`.
        let header = unsafe { header.assume_init_ref() };
        let len = header.msg_len as usize;
        let namelen = header.msg_hdr.msg_namelen;
        // SAFETY: the kernel wrote `namelen` bytes of a sockaddr into `name` (at most its
        // size); only those bytes are copied.
        let (_, from) = unsafe {
            SockAddr::try_init(|storage, size| {
                std::ptr::copy_nonoverlapping(
                    name.as_ptr().cast::<u8>(),
                    storage.cast::<u8>(),
                    (namelen as usize).min(std::mem::size_of::<libc::sockaddr_storage>()),
                );
                *size = namelen;
                Ok(())
            })?
        };
        out.push(Received {
            len,
            truncated: header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            from,
        });
    }
    Ok(())
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`), or `None` if it is unlimited or
/// cannot be read.
pub(crate) fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for writes of a `struct rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Sets `FD_CLOEXEC` on a raw descriptor the process was given.
pub(crate) fn set_cloexec(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and set the descriptor's flags; a bad descriptor
    // fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
