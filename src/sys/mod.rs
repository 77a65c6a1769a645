//! Thin, safe wrappers over the system calls that `std` and `socket2` do not expose in the
//! shape the hot path needs. Every `unsafe` block of the crate lives under this module.
//!
//! - [`epoll`] (Linux only): the epoll instance behind the default readiness backend.
//! - [`fd`]: read, vectored send without SIGPIPE, accept4 with the flags we want, and
//!   socket option queries used to classify a descriptor.

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) mod epoll;
pub(crate) mod fd;
