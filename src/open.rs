//! Opening handles: creating, binding and connecting sockets for every kind of endpoint,
//! and classifying descriptors handed in by the user (EventMux's type detection).
//!
//! Every descriptor ends up non-blocking and close-on-exec and is registered once. Unix
//! socket paths a listener or datagram handle binds are removed again when it closes; a
//! stale socket file left by a crashed process (nobody accepts on it) is replaced.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::entry::{Entry, Kind, Shape, Transport};
use crate::registry::Registry;
use crate::sys;
use crate::{Endpoint, Error, Handler, Options, Token};

impl Registry {
    /// Listens on a stream endpoint, or binds a datagram one.
    pub(crate) fn listen(
        &mut self,
        endpoint: Endpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let (shape, fd, path) = match endpoint {
            Endpoint::Tcp(addr) => {
                let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                socket.bind(&addr.into())?;
                socket.listen(libc::SOMAXCONN)?;
                (
                    Shape::socket(Kind::Listener, Transport::Tcp),
                    OwnedFd::from(socket),
                    None,
                )
            }
            Endpoint::Udp(addr) => {
                let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
                socket.bind(&addr.into())?;
                (
                    Shape::socket(Kind::Datagram, Transport::Udp),
                    socket.into(),
                    None,
                )
            }
            Endpoint::Unix(path) => {
                remove_stale_socket(&path);
                let listener = UnixListener::bind(&path)?;
                (
                    Shape::socket(Kind::Listener, Transport::Unix),
                    listener.into(),
                    Some(path),
                )
            }
            Endpoint::UnixDatagram(path) => {
                remove_stale_socket(&path);
                let socket = UnixDatagram::bind(&path)?;
                (
                    Shape::socket(Kind::Datagram, Transport::Unix),
                    socket.into(),
                    Some(path),
                )
            }
        };
        self.open(shape, fd, options, handler, path)
    }

    /// Connects to an endpoint: a non-blocking connect for streams, a connected socket for
    /// datagrams.
    pub(crate) fn connect(
        &mut self,
        endpoint: Endpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let (shape, socket, to) = match endpoint {
            Endpoint::Tcp(addr) => (
                Shape::socket(Kind::Stream, Transport::Tcp),
                Socket::new(Domain::for_address(addr), Type::STREAM, None)?,
                SockAddr::from(addr),
            ),
            Endpoint::Udp(addr) => (
                Shape::socket(Kind::Datagram, Transport::Udp),
                Socket::new(Domain::for_address(addr), Type::DGRAM, None)?,
                SockAddr::from(addr),
            ),
            Endpoint::Unix(path) => (
                Shape::socket(Kind::Stream, Transport::Unix),
                Socket::new(Domain::UNIX, Type::STREAM, None)?,
                SockAddr::unix(path)?,
            ),
            Endpoint::UnixDatagram(path) => (
                Shape::socket(Kind::Datagram, Transport::Unix),
                Socket::new(Domain::UNIX, Type::DGRAM, None)?,
                SockAddr::unix(path)?,
            ),
        };
        socket.set_nonblocking(true)?;
        if shape.transport == Transport::Tcp && options.get_nodelay() {
            socket.set_tcp_nodelay(true)?;
        }
        let refused = match socket.connect(&to) {
            Ok(()) => None,
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::WouldBlock =>
            {
                None
            }
            Err(e) => Some(e),
        };
        // A stream connect completes when the socket turns writable; a datagram socket is
        // connected as soon as connect(2) returns.
        let connected = shape.kind == Kind::Datagram && refused.is_none();
        let token = self.insert(
            Entry::new(shape, Some(socket.into()), options.clone(), connected),
            handler,
        )?;
        self.enable_error_queue(token, &options)?;
        if let Some(e) = refused {
            // Reported like an asynchronous refusal: on_error, then on_close.
            self.fail(token, Error::Io(e));
        }
        Ok(token)
    }

    /// Adds a descriptor the user opened: socket, pipe, FIFO, terminal.
    pub(crate) fn add(
        &mut self,
        fd: OwnedFd,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let mut shape = classify(fd.as_fd())?;
        if let Some(kind) = options.get_kind() {
            shape.kind = kind;
        }
        if !(options.get_manual_read() && options.get_manual_write()) {
            sys::fd::set_nonblocking(fd.as_fd(), true)?;
        }
        self.open(shape, fd, options, handler, None)
    }

    /// Registers a connection a listener accepted.
    pub(crate) fn add_accepted(
        &mut self,
        fd: OwnedFd,
        transport: Transport,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        if transport == Transport::Tcp && options.get_nodelay() {
            SockRef::from(&fd).set_tcp_nodelay(true)?;
        }
        self.insert(
            Entry::new(
                Shape::socket(Kind::Stream, transport),
                Some(fd),
                options,
                true,
            ),
            handler,
        )
    }

    /// Registers a handle with no descriptor.
    pub(crate) fn add_handler(&mut self, handler: Box<dyn Handler>) -> Token {
        let shape = Shape {
            kind: Kind::Virtual,
            transport: Transport::None,
            readable_end: false,
            writable_end: false,
            short_read_drains: false,
        };
        self.insert(Entry::new(shape, None, Options::default(), true), handler)
            .expect("registering a handle without a descriptor cannot fail")
    }

    fn open(
        &mut self,
        shape: Shape,
        fd: OwnedFd,
        options: Options,
        handler: Box<dyn Handler>,
        bound_path: Option<std::path::PathBuf>,
    ) -> io::Result<Token> {
        sys::fd::set_nonblocking(fd.as_fd(), true)?;
        let mut entry = Entry::new(shape, Some(fd), options.clone(), true);
        entry.bound_path = bound_path;
        let token = self.insert(entry, handler)?;
        if let Err(e) = self.enable_error_queue(token, &options) {
            self.kill(token, crate::CloseReason::Error);
            return Err(e);
        }
        Ok(token)
    }

    /// The Errors option: turns the error queue on for a UDP handle.
    fn enable_error_queue(&mut self, token: Token, options: &Options) -> io::Result<()> {
        let Some(entry) = self.entry_mut(token) else {
            return Ok(());
        };
        if !options.get_errors() || entry.transport != Transport::Udp {
            return Ok(());
        }
        let fd = entry.fd.as_ref().expect("a UDP handle has a descriptor");
        let family = sys::fd::socket_option_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        sys::errqueue::enable(fd.as_fd(), family)?;
        entry.error_queue = true;
        Ok(())
    }
}

/// Replaces a Unix socket file nobody accepts on (left by a process that died).
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && std::os::unix::net::UnixStream::connect(path).is_err() {
        log::debug!("removing stale socket file {}", path.display());
        let _ = std::fs::remove_file(path);
    }
}

/// Detects what a descriptor is: `SO_TYPE`, `SO_DOMAIN` and `SO_ACCEPTCONN` for sockets,
/// `fstat` for the rest; and which ends it was opened for.
pub(crate) fn classify(fd: BorrowedFd<'_>) -> io::Result<Shape> {
    let (readable_end, writable_end) = sys::fd::access_mode(fd)?;
    let (kind, transport, short_read_drains) =
        match sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_TYPE) {
            Ok(socket_type) => {
                let domain = sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
                let transport = match (domain, socket_type) {
                    (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => Transport::Tcp,
                    (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => Transport::Udp,
                    (libc::AF_UNIX, _) => Transport::Unix,
                    _ => Transport::OtherSocket,
                };
                let kind = match socket_type {
                    libc::SOCK_STREAM => {
                        let listening =
                            sys::fd::socket_option_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN)?;
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
                            format!(
                                "socket type {other} is not supported (stream and datagram are)"
                            ),
                        ))
                    }
                };
                (kind, transport, socket_type == libc::SOCK_STREAM)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                match sys::fd::file_type(fd)? {
                libc::S_IFIFO => (Kind::Stream, Transport::Pipe, true),
                // A terminal hands out a line per read: a short read says nothing.
                libc::S_IFCHR => (Kind::Stream, Transport::Pipe, false),
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
