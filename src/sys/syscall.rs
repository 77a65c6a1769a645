//! Raw system calls for the hot path: `read`, `sendto` and `sendmsg` of every message and
//! the turn's `epoll_pwait`.
//!
//! On x86_64 and aarch64 Linux the trap instruction is issued inline. The alternative,
//! libc's `syscall(2)`, is a variadic function that moves every argument one register
//! along before it traps, about 14 instructions a call (two calls a message; issue 19's
//! callgrind profiles). Other Linux architectures use `syscall(2)`. Either way the result
//! is the kernel's: a count, or `-errno` ([`result`] turns it into an `io::Result`), and
//! `errno` is not touched.
//!
//! The kernel's calling convention: the call number in `rax`, arguments in `rdi`, `rsi`,
//! `rdx`, `r10`, `r8`, `r9`, the result in `rax`, `rcx` and `r11` clobbered (x86_64); the
//! number in `x8`, arguments in `x0`–`x5`, the result in `x0` (aarch64).

use std::io;

/// `-errno` or a count, as the kernel returns it, into an `io::Result`.
#[inline(always)]
pub(crate) fn result(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(os_error(ret))
    } else {
        Ok(ret as usize)
    }
}

/// The error of a failed call, built out of line: inline, the compiler computes it on
/// every call, count or not, and keeps whichever applies (~6 instructions a call).
#[cold]
#[inline(never)]
fn os_error(ret: isize) -> io::Error {
    io::Error::from_raw_os_error(-ret as i32)
}

/// System call `nr` with three arguments.
///
/// # Safety
///
/// The arguments must be what call `nr` expects: pointers valid for what the kernel reads
/// or writes through them, for the whole call.
#[inline(always)]
pub(crate) unsafe fn syscall3(nr: libc::c_long, a1: usize, a2: usize, a3: usize) -> isize {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: isize;
        // SAFETY: the caller's contract; the asm declares every register the kernel uses
        // or clobbers, and may read and write memory (the buffers).
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack, preserves_flags),
            );
        }
        ret
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ret: isize;
        // SAFETY: as above.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a1 as isize => ret,
                in("x1") a2,
                in("x2") a3,
                options(nostack, preserves_flags),
            );
        }
        ret
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // SAFETY: the caller's contract.
        let ret = unsafe { libc::syscall(nr, a1, a2, a3) } as isize;
        if ret < 0 {
            -(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO) as isize)
        } else {
            ret
        }
    }
}

/// System call `nr` with six arguments.
///
/// # Safety
///
/// As for [`syscall3`].
#[inline(always)]
pub(crate) unsafe fn syscall6(
    nr: libc::c_long,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    #[cfg(target_arch = "x86_64")]
    {
        let ret: isize;
        // SAFETY: as in `syscall3`.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a1,
                in("rsi") a2,
                in("rdx") a3,
                in("r10") a4,
                in("r8") a5,
                in("r9") a6,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack, preserves_flags),
            );
        }
        ret
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ret: isize;
        // SAFETY: as in `syscall3`.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a1 as isize => ret,
                in("x1") a2,
                in("x2") a3,
                in("x3") a4,
                in("x4") a5,
                in("x5") a6,
                options(nostack, preserves_flags),
            );
        }
        ret
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        // SAFETY: the caller's contract.
        let ret = unsafe { libc::syscall(nr, a1, a2, a3, a4, a5, a6) } as isize;
        if ret < 0 {
            -(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO) as isize)
        } else {
            ret
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_descriptor_comes_back_as_its_errno() {
        let mut buf = [0u8; 4];
        // SAFETY: `buf` is valid for writes of its length; the descriptor is not open.
        let ret = unsafe { syscall3(libc::SYS_read, 1_000_000, buf.as_mut_ptr() as usize, 4) };
        assert_eq!(result(ret).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn a_read_returns_its_count() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the pipe's write end is open; the buffer is valid for reads of 3 bytes.
        assert_eq!(unsafe { libc::write(fds[1], b"abc".as_ptr().cast(), 3) }, 3);
        let mut buf = [0u8; 8];
        // SAFETY: the read end is open; `buf` is valid for writes of its length.
        let ret = unsafe {
            syscall3(
                libc::SYS_read,
                fds[0] as usize,
                buf.as_mut_ptr() as usize,
                8,
            )
        };
        assert_eq!(result(ret).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        // SAFETY: both descriptors are ours and open.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
