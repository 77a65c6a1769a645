//! Handles, one file per kind. A handle is one slot of the reactor's slab ([`slot`]): what
//! every handle has (descriptor, handler, readiness, lifecycle, timers) plus a [`State`] that
//! holds only what its kind uses. Each kind is driven from its own file, read path and write
//! path together:
//!
//! - [`stream`](self::stream): TCP and Unix stream connections, pipes and terminals:
//!   connect completion, reads into the shared buffer, records cut by the framing, the
//!   vectored flush, the lingering close's discard loop, the manual modes;
//! - [`datagram`](self::datagram): UDP and Unix datagram sockets: `recvmmsg` batches,
//!   `sendmmsg` flushes, the error queue;
//! - [`listener`](self::listener): accepting (or ManualAccept), admitting connections,
//!   backing off on descriptor exhaustion;
//! - [`pump`](self::pump): the reactor's side of a UDP pump (threads in `crate::pump`);
//! - [`pollable`](self::pollable): any other descriptor epoll can watch (eventfd, signalfd,
//!   timerfd, pidfd, inotify): readiness to the handler, which reads it;
//! - [`process`](self::process): a spawned child: its pidfd, reaping, `on_exit` after its
//!   pipes, and the one handler its handles share.
//!
//! The queues a handle owns ([`input`], [`output`], [`datagram_queue`]) and the pool their
//! buffers return to when they drain ([`buffer_pool`]) live here too. This file holds the
//! public vocabulary of kinds ([`Kind`], [`Transport`]) and the classification of a
//! descriptor ([`Shape::of`]).

pub(crate) mod buffer_pool;
pub(crate) mod datagram;
pub(crate) mod datagram_queue;
pub(crate) mod fd_passing;
pub(crate) mod input;
pub(crate) mod listener;
pub(crate) mod output;
pub(crate) mod pollable;
pub(crate) mod process;
pub(crate) mod pump;
pub(crate) mod slot;
pub(crate) mod stream;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys;

pub(crate) use slot::{Entry, Life, State};

/// What a handle is (EventMux's `type()`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A listening stream socket: its events are accepted connections.
    Listener,
    /// A byte stream: a TCP or Unix stream connection, a pipe, a terminal.
    Stream,
    /// Datagrams: UDP or Unix datagram sockets. Each datagram is one read.
    Datagram,
    /// A handle with no descriptor (from [`Reactor::add_handler`](crate::Reactor::add_handler)):
    /// it receives timers, and is closed like any other.
    Virtual,
    /// Any other descriptor epoll can watch (an eventfd, signalfd, timerfd, pidfd or
    /// inotify descriptor): the reactor only reports readiness, with
    /// [`Handler::on_readable`](crate::Handler::on_readable) every turn while it lasts, and
    /// the handler reads it ([`Context::read`](crate::Context::read)) as its kind wants.
    Pollable,
    /// A child process from [`Reactor::spawn`](crate::Reactor::spawn) (a pidfd): its exit
    /// comes to [`Handler::on_exit`](crate::Handler::on_exit).
    Process,
}

impl Kind {
    /// Whether handles of this kind have an output queue (and so get `on_closing`).
    pub fn can_send(self) -> bool {
        matches!(self, Kind::Stream | Kind::Datagram)
    }
}

/// What carries a handle's bytes (EventMux's `class()`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// TCP (IPv4 or IPv6).
    Tcp,
    /// UDP (IPv4 or IPv6).
    Udp,
    /// A Unix domain socket, stream or datagram.
    Unix,
    /// A pipe, FIFO, terminal or other character device.
    Pipe,
    /// A socket of another family (e.g. a raw or netlink socket added by hand).
    OtherSocket,
    /// No descriptor (a virtual handle).
    None,
    /// A descriptor that is neither a socket nor a pipe (a pollable handle's eventfd,
    /// signalfd, timerfd, pidfd or inotify descriptor).
    Other,
}

impl Transport {
    /// Whether the descriptor is a socket (written with `sendmsg`, not `writev`).
    pub(crate) fn is_socket(self) -> bool {
        matches!(
            self,
            Transport::Tcp | Transport::Udp | Transport::Unix | Transport::OtherSocket
        )
    }
}

/// How a descriptor was classified when it was opened or added.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    pub(crate) kind: Kind,
    pub(crate) transport: Transport,
    /// Opened for reading / for writing (a child's stdin is write-only).
    pub(crate) readable_end: bool,
    pub(crate) writable_end: bool,
    /// A read shorter than asked proves the descriptor empty: true for stream sockets and
    /// pipes, false for terminals (a line per read) and datagram sockets forced to `Stream`
    /// (a datagram per read).
    pub(crate) short_read_drains: bool,
}

impl Shape {
    /// A socket the reactor created or accepted: both ends open.
    pub(crate) fn socket(kind: Kind, transport: Transport) -> Shape {
        Shape {
            kind,
            transport,
            readable_end: true,
            writable_end: true,
            short_read_drains: kind != Kind::Datagram,
        }
    }

    /// A handle without a descriptor.
    pub(crate) fn virtual_handle() -> Shape {
        Shape {
            kind: Kind::Virtual,
            transport: Transport::None,
            readable_end: false,
            writable_end: false,
            short_read_drains: false,
        }
    }

    /// Detects what a descriptor is (EventMux's type detection): `SO_TYPE`, `SO_DOMAIN` and
    /// `SO_ACCEPTCONN` for sockets, `fstat` for the rest; and which ends it was opened for.
    pub(crate) fn of(fd: BorrowedFd<'_>) -> io::Result<Shape> {
        let (readable_end, writable_end) = sys::fd::access_mode(fd)?;
        let (kind, transport, short_read_drains) = match sys::fd::socket_option_int(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
        ) {
            Ok(socket_type) => socket_shape(fd, socket_type)?,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                match sys::fd::file_type(fd)? {
                        libc::S_IFIFO => (Kind::Stream, Transport::Pipe, true),
                        // A terminal hands out a line per read: a short read says nothing.
                        libc::S_IFCHR => (Kind::Stream, Transport::Pipe, false),
                        // No file type: an anonymous inode (eventfd, signalfd, timerfd,
                        // pidfd, inotify, epoll): readiness only, the user reads.
                        0 => (Kind::Pollable, Transport::Other, false),
                        _ => return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "regular files and directories are always ready; epoll(7) cannot watch them",
                        )),
                    }
            }
            Err(e) => return Err(e),
        };
        Ok(Shape {
            kind,
            transport,
            readable_end,
            writable_end,
            short_read_drains,
        })
    }
}

/// Kind, transport and whether a short read drains, for a socket of `socket_type`.
fn socket_shape(fd: BorrowedFd<'_>, socket_type: i32) -> io::Result<(Kind, Transport, bool)> {
    let domain = sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let transport = match (domain, socket_type) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => Transport::Tcp,
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => Transport::Udp,
        (libc::AF_UNIX, _) => Transport::Unix,
        _ => Transport::OtherSocket,
    };
    let kind = match socket_type {
        libc::SOCK_STREAM => {
            let listening = sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
            if listening != 0 {
                Kind::Listener
            } else {
                Kind::Stream
            }
        }
        libc::SOCK_DGRAM => Kind::Datagram,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("socket type {other} is not supported (stream and datagram are)"),
            ))
        }
    };
    Ok((kind, transport, socket_type == libc::SOCK_STREAM))
}

/// How a flush went.
pub(crate) enum Flushed {
    /// Nothing was queued, or the handle cannot be written now.
    Idle,
    /// Some output is still queued: wait for writability.
    Partial,
    /// The queue became empty.
    Drained,
    Failed(io::Error),
}
