//! Opening handles: creating, binding and connecting sockets for every kind of endpoint,
//! and classifying descriptors handed in by the user (EventMux's type detection).
//!
//! Every descriptor ends up non-blocking and close-on-exec and is registered once. Unix
//! socket paths a listener or datagram handle binds are removed again when it closes; a
//! stale socket file left by a crashed process (nobody accepts on it) is replaced.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::registry::{Deferred, Registry};
use crate::handle::{Entry, Kind, Shape, State, Transport};
use crate::selector::Ready;
use crate::sys;
use crate::{CloseReason, Endpoint, Error, Handler, Options, Token};

impl Registry {
    /// Listens on a stream endpoint, or binds a datagram one.
    pub(crate) fn listen(
        &mut self,
        endpoint: Endpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        if matches!(endpoint, Endpoint::Tls { .. }) && !serves_tls(&options) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a tls:// listener needs a server configuration: Options::tls (feature `tls`)",
            ));
        }
        let (shape, fd, path) = match endpoint {
            Endpoint::Tcp(addr) | Endpoint::Tls { addr, .. } => {
                let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
                socket.set_reuse_address(true)?;
                socket.set_reuse_port(options.reuse_port)?;
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
                socket.set_reuse_port(options.reuse_port)?;
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
        self.open(shape, fd, options, handler, path, true)
    }

    /// Connects to an endpoint: a non-blocking connect for streams, a connected socket for
    /// datagrams.
    pub(crate) fn connect(
        &mut self,
        endpoint: Endpoint,
        options: Options,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        #[cfg(feature = "tls")]
        let tls = tls_client_side(&endpoint, &options)?;
        #[cfg(not(feature = "tls"))]
        if matches!(endpoint, Endpoint::Tls { .. }) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "tls:// needs eventmux built with its `tls` feature",
            ));
        }
        let (shape, socket, to) = match endpoint {
            Endpoint::Tcp(addr) | Endpoint::Tls { addr, .. } => (
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
        if shape.transport == Transport::Tcp && options.nodelay {
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
        let errors = options.errors;
        let mut entry = Entry::new(shape, Some(socket.into()), Rc::new(options), connected);
        entry.sole_owner = true;
        let token = self.insert(entry, handler)?;
        if let Err(e) = self.enable_error_queue(token, errors) {
            self.kill(token, CloseReason::Error);
            return Err(e);
        }
        if let Some(e) = refused {
            // Reported like an asynchronous refusal: on_error, then on_close.
            self.fail(token, Error::Io(e));
            return Ok(token);
        }
        #[cfg(feature = "tls")]
        if let Some((config, name)) = tls {
            if let Err(e) = self.start_tls_client(token, config, name) {
                self.fail(token, e);
            }
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
        let mut shape = Shape::of(fd.as_fd())?;
        if matches!(options.kind, Some(Kind::Process | Kind::Virtual)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a process handle comes from spawn and a virtual one from add_handler, not from add",
            ));
        }
        if let Some(kind) = options.kind {
            shape.kind = kind;
        }
        if !(options.manual_read && options.manual_write) {
            sys::fd::set_nonblocking(fd.as_fd(), true)?;
        }
        let stream_socket = shape.kind == Kind::Stream && shape.transport.is_socket();
        let connecting = stream_socket
            && SockRef::from(&fd)
                .peer_addr()
                .is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN));
        // The user may hold other descriptors of the same open file (a dup, a child's copy).
        let token = self.open(shape, fd, options, handler, None, false)?;
        if connecting {
            // A non-blocking connect under way: on_connect comes when it completes.
            if let Some(entry) = self.entry_mut(token) {
                if let State::Stream(stream) = &mut entry.state {
                    stream.connected = false;
                }
                entry.ready.remove(Ready::WRITABLE);
            }
            self.update_interest(token);
        } else if stream_socket {
            // Connected already (EventMux's `ready` for an added socket): on_connect once
            // the current callback, if any, has returned.
            self.deferred.push_back(Deferred::Connect(token));
        }
        Ok(token)
    }

    /// Registers a handle with no descriptor.
    pub(crate) fn add_handler(&mut self, handler: Box<dyn Handler>) -> Token {
        let entry = Entry::new(
            Shape::virtual_handle(),
            None,
            Rc::new(Options::default()),
            true,
        );
        // Nothing to register, so nothing can fail.
        match self.insert(entry, handler) {
            Ok(token) => token,
            Err(e) => unreachable!("a handle without a descriptor failed to register: {e}"),
        }
    }

    /// Registers an open descriptor: a listener, a bound datagram socket, or one the user
    /// added. `sole_owner`: the reactor made it, so nothing else shares it.
    fn open(
        &mut self,
        shape: Shape,
        fd: OwnedFd,
        options: Options,
        handler: Box<dyn Handler>,
        bound_path: Option<PathBuf>,
        sole_owner: bool,
    ) -> io::Result<Token> {
        sys::fd::set_nonblocking(fd.as_fd(), true)?;
        let errors = options.errors;
        let mut entry = Entry::new(shape, Some(fd), Rc::new(options), true);
        entry.sole_owner = sole_owner;
        match &mut entry.state {
            State::Listener(listener) => listener.bound_path = bound_path,
            State::Datagram(datagram) => datagram.bound_path = bound_path,
            _ => {}
        }
        let token = self.insert(entry, handler)?;
        if let Err(e) = self.enable_error_queue(token, errors) {
            self.kill(token, CloseReason::Error);
            return Err(e);
        }
        Ok(token)
    }

    /// The Errors option: turns the error queue on for a UDP handle.
    fn enable_error_queue(&mut self, token: Token, errors: bool) -> io::Result<()> {
        let Some(entry) = self.entry_mut(token) else {
            return Ok(());
        };
        let (Some(fd), State::Datagram(datagram)) = (entry.fd.as_ref(), &mut entry.state) else {
            return Ok(());
        };
        if !errors || entry.transport != Transport::Udp {
            return Ok(());
        }
        let family = sys::fd::socket_option_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        sys::errqueue::enable(fd.as_fd(), family)?;
        datagram.error_queue = true;
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

/// Whether the options make a listener's connections TLS servers.
fn serves_tls(options: &Options) -> bool {
    #[cfg(feature = "tls")]
    return matches!(options.tls, Some(crate::options::TlsSide::Server(_)));
    #[cfg(not(feature = "tls"))]
    {
        let _ = options;
        false
    }
}

/// The client side of TLS a connect runs, if any: an explicit configuration and name, or a
/// configuration with the name of the endpoint (the host of a `tls://` URL, else the IP
/// address), or for a `tls://` URL without either the system's trust store.
#[cfg(feature = "tls")]
fn tls_client_side(
    endpoint: &Endpoint,
    options: &Options,
) -> io::Result<
    Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
> {
    use crate::options::TlsSide;
    use rustls::pki_types::ServerName;
    let (config, name) = match (&options.tls, endpoint) {
        (Some(TlsSide::Client(config, name)), _) => return Ok(Some((config.clone(), name.clone()))),
        (Some(TlsSide::Server(_)), _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Options::tls is a server configuration; a connect takes tls_client or tls_client_config",
            ))
        }
        (Some(TlsSide::ClientConfig(config)), Endpoint::Tls { host, .. }) => (config.clone(), host),
        (Some(TlsSide::ClientConfig(config)), Endpoint::Tcp(addr)) => {
            return Ok(Some((config.clone(), ServerName::IpAddress(addr.ip().into()))))
        }
        (Some(TlsSide::ClientConfig(_)), _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS runs over TCP only (a tls:// or TCP endpoint)",
            ))
        }
        (None, Endpoint::Tls { host, .. }) => (crate::tls::system_client_config()?, host),
        (None, _) => return Ok(None),
    };
    let name = ServerName::try_from(name.as_str())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?}: {e}")))?
        .to_owned();
    Ok(Some((config, name)))
}
