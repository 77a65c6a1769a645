//! Per-handle options: EventMux's `ManualAccept`, `ManualRead`, `ManualWrite`, `ReadSize`,
//! `Buffered` (framing) and `MaxSize`, plus the bounds a server needs against peers that
//! push or stall.

use std::time::Duration;

use bytes::Bytes;

use crate::framing::Framing;
use crate::Kind;

/// Default [`Options::read_size`]: 64 KiB, as in IO::EventMux.
///
/// ```
/// use eventmux::{Options, DEFAULT_READ_SIZE};
///
/// // Requests here are small: a quarter of the default per read is plenty.
/// let options = Options::new().read_size(DEFAULT_READ_SIZE / 4);
/// # let _ = options;
/// ```
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;
/// Default [`Options::max_output`]: 16 MiB of queued, unsent bytes per handle (comparable to
/// redis's hard limit for pub/sub clients). A peer that stops reading cannot make a handle
/// hold more than this.
///
/// ```
/// use eventmux::{Options, DEFAULT_MAX_OUTPUT};
///
/// // Clients downloading large files may fall further behind than the default allows.
/// let options = Options::new().max_output(4 * DEFAULT_MAX_OUTPUT);
/// # let _ = options;
/// ```
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Default [`Options::linger`]: how long a graceful close waits for its queue to drain.
///
/// ```
/// use std::time::Duration;
/// use eventmux::{Options, DEFAULT_LINGER};
///
/// assert_eq!(DEFAULT_LINGER, Duration::from_secs(10));
/// let impatient = Options::new().linger(DEFAULT_LINGER / 10); // 1 s
/// # let _ = impatient;
/// ```
pub const DEFAULT_LINGER: Duration = Duration::from_secs(10);
/// Default [`Options::max_size`]: 1 MiB of input buffered while waiting for a record.
///
/// ```
/// use eventmux::framing::{Endian, Framing, Size};
/// use eventmux::{Options, DEFAULT_MAX_SIZE};
///
/// // Length-prefixed uploads of up to 8 MiB each.
/// let framing = Framing::size(Size::new(4, Endian::Big));
/// let options = Options::new().framing(framing).max_size(8 * DEFAULT_MAX_SIZE);
/// # let _ = options;
/// ```
pub const DEFAULT_MAX_SIZE: usize = 1024 * 1024;
/// Default [`Options::record_timeout`]: a framed record must be complete within 60 s of its
/// first byte (nginx's `client_header_timeout`).
///
/// ```
/// use eventmux::framing::Framing;
/// use eventmux::{Options, DEFAULT_RECORD_TIMEOUT};
///
/// // Uploads on a slow link get twice the default.
/// let options = Options::new()
///     .framing(Framing::http())
///     .record_timeout(Some(2 * DEFAULT_RECORD_TIMEOUT));
/// # let _ = options;
/// ```
pub const DEFAULT_RECORD_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Options::send_timeout`]: queued output must make progress within 60 s
/// (nginx's `send_timeout`).
///
/// ```
/// use eventmux::{Options, DEFAULT_SEND_TIMEOUT};
///
/// let options = Options::new().send_timeout(Some(DEFAULT_SEND_TIMEOUT / 4));
/// # let _ = options;
/// ```
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Options::discard_limit`]: 256 KiB, about what a loopback socket's buffers hold.
///
/// ```
/// use eventmux::{Options, DEFAULT_DISCARD_LIMIT};
///
/// // Peers on fat links may have more in flight when the close comes.
/// let options = Options::new().discard_limit(4 * DEFAULT_DISCARD_LIMIT);
/// # let _ = options;
/// ```
pub const DEFAULT_DISCARD_LIMIT: usize = 256 * 1024;
/// Descriptors the default [`Options::max_connections`] leaves to everything else (files,
/// outgoing connections, child processes' pipes): 64, or a quarter of a smaller limit.
///
/// ```
/// use eventmux::{Options, DESCRIPTOR_RESERVE};
///
/// // A server that also opens many backend connections keeps more in reserve itself.
/// let backends = 1000;
/// let options = Options::new().max_connections(20_000 - DESCRIPTOR_RESERVE - backends);
/// # let _ = options;
/// ```
pub const DESCRIPTOR_RESERVE: usize = 64;
/// Default [`Options::connect_timeout`]: an outgoing connect must complete within 30 s.
///
/// ```
/// use std::time::Duration;
/// use eventmux::{Options, DEFAULT_CONNECT_TIMEOUT};
///
/// assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(30));
/// let options = Options::new().connect_timeout(Some(Duration::from_secs(3)));
/// # let _ = options;
/// ```
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a TLS handshake may take (feature `tls`), unless
/// [`Options::handshake_timeout`] says otherwise: a peer that opens a connection and never
/// finishes the handshake is closed.
///
/// ```
/// assert_eq!(eventmux::DEFAULT_HANDSHAKE_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for one handle, given when it is opened. A listener's options are inherited by
/// every connection it accepts.
///
/// Read them as a sentence at the call site:
///
/// ```
/// use std::time::Duration;
/// use eventmux::Options;
///
/// let options = Options::new()
///     .read_size(4096)
///     .max_output(1 << 20)
///     .linger(Duration::from_secs(2));
/// println!("{options:?}"); // the values, as the handle will use them
/// ```
///
/// Options are a builder: they are set, not read back (their `Debug` output shows them).
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) manual_accept: bool,
    pub(crate) manual_read: bool,
    pub(crate) manual_write: bool,
    pub(crate) read_size: usize,
    pub(crate) max_output: usize,
    pub(crate) linger: Duration,
    pub(crate) nodelay: bool,
    pub(crate) framing: Option<Framing>,
    pub(crate) max_size: usize,
    pub(crate) kind: Option<Kind>,
    pub(crate) errors: bool,
    pub(crate) record_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) discard_limit: usize,
    pub(crate) watermarks: Option<(usize, usize)>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) refusal: Option<Bytes>,
    pub(crate) receive_fds: bool,
    pub(crate) reuse_port: bool,
    pub(crate) handshake_timeout: Option<Duration>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsSide>,
}

/// Which side of TLS a handle's options ask for.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub(crate) enum TlsSide {
    Server(std::sync::Arc<rustls::ServerConfig>),
    Client(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
    /// A client whose server name comes from the endpoint.
    ClientConfig(std::sync::Arc<rustls::ClientConfig>),
}

impl Default for Options {
    fn default() -> Options {
        Options {
            manual_accept: false,
            manual_read: false,
            manual_write: false,
            read_size: DEFAULT_READ_SIZE,
            max_output: DEFAULT_MAX_OUTPUT,
            linger: DEFAULT_LINGER,
            nodelay: true,
            framing: None,
            max_size: DEFAULT_MAX_SIZE,
            kind: None,
            errors: false,
            record_timeout: Some(DEFAULT_RECORD_TIMEOUT),
            idle_timeout: None,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            discard_limit: DEFAULT_DISCARD_LIMIT,
            watermarks: None,
            max_connections: None,
            refusal: None,
            receive_fds: false,
            reuse_port: false,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Options {
    /// The defaults: automatic accept, read and write; 64 KiB reads; 16 MiB output bound;
    /// 10 s linger; `TCP_NODELAY` on.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // What `reactor.listen("127.0.0.1:0", Server)` uses:
    /// reactor.listen_with("127.0.0.1:0", Options::new(), Server)?;
    /// # Ok(()) }
    /// ```
    pub fn new() -> Options {
        Options::default()
    }

    /// ManualAccept: instead of accepting and calling
    /// [`Handler::on_accept`](crate::Handler::on_accept), the reactor calls
    /// [`Handler::on_accepting`](crate::Handler::on_accepting) and the handler accepts with
    /// [`Context::accept`](crate::Context::accept). The callback repeats every turn while
    /// connections are pending.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::TcpStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Accepts by hand and gives each connection a thread of its own (blocking I/O).
    /// struct Acceptor;
    /// impl Handler for Acceptor {
    ///     fn on_accepting(&mut self, ctx: &mut Context<'_>) {
    ///         while let Ok(Some((fd, _peer))) = ctx.accept() {
    ///             let mut stream = TcpStream::from(fd);
    ///             std::thread::spawn(move || {
    ///                 stream.set_nonblocking(false)?; // accept() returns it non-blocking
    ///                 stream.write_all(b"hello from a thread\n")
    ///             });
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let options = Options::new().manual_accept(true);
    /// let listener = reactor.listen_with("127.0.0.1:0", options, Acceptor)?;
    /// let client = TcpStream::connect(reactor.local_addr(listener)?)?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?; // on_accepting
    /// let mut line = String::new();
    /// BufReader::new(client).read_line(&mut line)?;
    /// assert_eq!(line, "hello from a thread\n");
    /// # Ok(()) }
    /// ```
    pub fn manual_accept(mut self, on: bool) -> Options {
        self.manual_accept = on;
        self
    }

    /// ManualRead: the reactor never reads; it calls
    /// [`Handler::on_readable`](crate::Handler::on_readable) every turn while the handle is
    /// readable, and the handler reads (e.g. with [`Context::read`](crate::Context::read)) or
    /// pauses reading.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Reads by hand, into its own buffer.
    /// struct Raw { got: Vec<u8> }
    /// impl Handler for Raw {
    ///     fn on_readable(&mut self, ctx: &mut Context<'_>) {
    ///         let mut chunk = [0; 512];
    ///         match ctx.read(&mut chunk) {
    ///             Ok(0) => ctx.close(), // end of stream
    ///             Ok(n) => self.got.extend_from_slice(&chunk[..n]),
    ///             Err(_) => {} // nothing more for now
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut peer) = UnixStream::pair()?;
    /// let raw = reactor.add(ours, Options::new().manual_read(true), Raw { got: Vec::new() })?;
    /// peer.write_all(b"read by hand")?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// assert_eq!(reactor.handler_mut::<Raw>(raw).unwrap().got, b"read by hand");
    /// # Ok(()) }
    /// ```
    pub fn manual_read(mut self, on: bool) -> Options {
        self.manual_read = on;
        self
    }

    /// ManualWrite: the handler writes itself, asking for
    /// [`Handler::on_writable`](crate::Handler::on_writable) with
    /// [`Context::watch_writable`](crate::Context::watch_writable). `send` still works.
    /// With both manual modes the descriptor's blocking mode is left as it was.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixStream;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Writes its banner with its own write, bypassing the queue.
    /// struct Banner;
    /// impl Handler for Banner {
    ///     fn on_writable(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.write(b"220 ready\r\n");
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _peer) = UnixStream::pair()?;
    /// // One on_writable is due after registration; ask for more with `watch_writable`.
    /// reactor.add(ours, Options::new().manual_write(true), Banner)?;
    /// # Ok(()) }
    /// ```
    pub fn manual_write(mut self, on: bool) -> Options {
        self.manual_write = on;
        self
    }

    /// ReadSize: the most bytes one read asks for (default 64 KiB). All handles share one
    /// read buffer, sized for the largest `read_size` in use. Values below 1 are taken as 1.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Chat;
    /// impl Handler for Chat {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // At most 4 KiB per on_read, so one busy client holds the loop only briefly.
    /// reactor.listen_with("127.0.0.1:0", Options::new().read_size(4096), Chat)?;
    /// # Ok(()) }
    /// ```
    pub fn read_size(mut self, bytes: usize) -> Options {
        self.read_size = bytes.max(1);
        self
    }

    /// The bound on queued output. A send that would take the queue past it is refused: the
    /// handle gets [`Error::OutputLimit`](crate::Error::OutputLimit) in `on_error` and is
    /// killed. `usize::MAX` means no bound, which only a trusted peer deserves.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixStream;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// /// A feed subscriber: one that falls more than 1 MiB behind is cut off.
    /// struct Subscriber;
    /// impl Handler for Subscriber {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _peer) = UnixStream::pair()?;
    /// let token = reactor.add(ours, Options::new().max_output(1 << 20), Subscriber)?;
    /// let mut handle = reactor.handle(token).unwrap();
    /// assert!(handle.send(&vec![0; 1 << 20]).is_ok()); // up to the bound: queued
    /// assert!(handle.send(b"one more").is_err()); // past it: refused, and the handle is killed
    /// # Ok(()) }
    /// ```
    pub fn max_output(mut self, bytes: usize) -> Options {
        self.max_output = bytes;
        self
    }

    /// How long a graceful close may take: for queued output to drain (if it has not by then,
    /// the handle is killed, [`CloseReason::LingerExpired`](crate::CloseReason::LingerExpired),
    /// and `on_closing` reports the bytes never written), then for the peer to close its side.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Api;
    /// impl Handler for Api {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // A closing client gets 2 s to take its last reply and hang up, not 10.
    /// let options = Options::new().linger(Duration::from_secs(2));
    /// reactor.listen_with("127.0.0.1:0", options, Api)?;
    /// # Ok(()) }
    /// ```
    pub fn linger(mut self, time: Duration) -> Options {
        self.linger = time;
        self
    }

    /// Sets `TCP_NODELAY` on TCP connections (default on: replies go out at once).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Upload;
    /// impl Handler for Upload {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// // A bulk upload: let the kernel coalesce small writes (Nagle) instead.
    /// reactor.connect_with(server.local_addr()?, Options::new().nodelay(false), Upload)?;
    /// # Ok(()) }
    /// ```
    pub fn nodelay(mut self, on: bool) -> Options {
        self.nodelay = on;
        self
    }

    /// Buffered: hand `on_read` whole records cut by `framing` instead of whatever each read
    /// returned. On a listener it is the template: every accepted connection gets a fresh
    /// copy (its own state and buffer). Not for datagram handles (each datagram is a record)
    /// and ignored with ManualRead. Change it on a live handle with
    /// [`Context::set_framing`](crate::Context::set_framing).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Gets one command per call, without its line ending.
    /// struct Commands { seen: Vec<String> }
    /// impl Handler for Commands {
    ///     fn on_read(&mut self, _: &mut Context<'_>, line: &[u8]) {
    ///         self.seen.push(String::from_utf8_lossy(line).into_owned());
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut peer) = UnixStream::pair()?;
    /// let options = Options::new().framing(Framing::lines());
    /// let token = reactor.add(ours, options, Commands { seen: Vec::new() })?;
    /// peer.write_all(b"GET a\r\nGET b\r\nGE")?; // the unfinished line waits for its end
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// assert_eq!(reactor.handler_mut::<Commands>(token).unwrap().seen, ["GET a", "GET b"]);
    /// # Ok(()) }
    /// ```
    pub fn framing(mut self, framing: Framing) -> Options {
        self.framing = Some(framing);
        self
    }

    /// No framing: `on_read` gets whatever each read returned (the default).
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// use eventmux::Options;
    ///
    /// let lines = Options::new().framing(Framing::lines()).max_size(4096);
    /// // The same settings for a listener that takes raw bytes:
    /// let raw = lines.clone().without_framing();
    /// # let _ = (lines, raw);
    /// ```
    pub fn without_framing(mut self) -> Options {
        self.framing = None;
        self
    }

    /// MaxSize: the most input a handle buffers while waiting for the rest of a record
    /// (default 1 MiB). A record that would need more gives
    /// `on_error(`[`Error::InputLimit`](crate::Error::InputLimit)`)`, (the handle can still
    /// send there, e.g. an error reply), then a graceful close: `on_read_last` with what
    /// was buffered, then the close callbacks. `0` means no bound, which only a trusted
    /// peer deserves.
    ///
    /// It bounds memory, not records: a record that arrives whole in one read is handed
    /// over as a slice of the read buffer (at most [`read_size`](Options::read_size)) and
    /// is not refused for its size. To refuse every record of a rule above a size, give
    /// the rule its own limit ([`Framing::max_size`](crate::framing::Framing::max_size)),
    /// which also replaces this bound while the rule is in force.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::framing::Framing;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Web;
    /// impl Handler for Web {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// // Requests of at most 64 KiB, head and body together.
    /// let options = Options::new().framing(Framing::http()).max_size(64 * 1024);
    /// reactor.listen_with("127.0.0.1:0", options, Web)?;
    /// # Ok(()) }
    /// ```
    pub fn max_size(mut self, bytes: usize) -> Options {
        self.max_size = bytes;
        self
    }

    /// On a Unix stream socket, take the descriptors a peer passes (`SCM_RIGHTS`, sent with
    /// [`Context::send_fds`](crate::Context::send_fds) or any `sendmsg`): the socket is read
    /// with `recvmsg`, and each batch of descriptors goes to
    /// [`Handler::on_fds`](crate::Handler::on_fds) before any byte that came with it
    /// reaches `on_read`. They arrive close-on-exec; at most 32 per read (more, and the
    /// kernel closes the rest and the handler gets an `InvalidData` error). Off by default:
    /// then the kernel closes whatever descriptors a peer sends, so a peer cannot make this
    /// process hold any. On a listener, its connections get it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::fd::OwnedFd;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// A broker that receives connections handed to it by a front end.
    /// struct Broker;
    /// impl Handler for Broker {
    ///     fn on_fds(&mut self, ctx: &mut Context<'_>, fds: Vec<OwnedFd>) {
    ///         for fd in fds {
    ///             let _ = ctx.add(fd, Options::new(), Broker);
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _front_end) = std::os::unix::net::UnixStream::pair()?;
    /// reactor.add(ours, Options::new().receive_fds(true), Broker)?;
    /// # Ok(()) }
    /// ```
    pub fn receive_fds(mut self, on: bool) -> Options {
        self.receive_fds = on;
        self
    }

    /// `SO_REUSEPORT` on a TCP listener or UDP socket this reactor opens (`listen`,
    /// `listen_with`, `bind`): several sockets, one per reactor thread or per process, bind
    /// the same address and the kernel spreads new connections (or datagrams) over them by
    /// a hash of the peer's address. Every socket on the address must set it, and be of the
    /// same user. Off by default. See [`ReactorGroup`](crate::ReactorGroup) for one reactor
    /// per core.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Server;
    /// impl Handler for Server {}
    ///
    /// let (mut first, mut second) = (Reactor::new()?, Reactor::new()?);
    /// let a = first.listen_with("127.0.0.1:0", Options::new().reuse_port(true), Server)?;
    /// let addr = first.local_addr(a)?;
    /// // The same address again: the kernel balances between the two listeners.
    /// second.listen_with(addr, Options::new().reuse_port(true), Server)?;
    /// # Ok(()) }
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Options {
        self.reuse_port = on;
        self
    }

    /// How long a TLS handshake may take from the connection's start (default 10 s;
    /// `None`: no bound): past it the handle gets
    /// `on_error(`[`Error::Timeout`](crate::Error::Timeout)`(`[`Deadline::Handshake`](crate::Deadline::Handshake)`))`
    /// and is closed. Only TLS handles (feature `tls`) have a handshake.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::Options;
    /// let options = Options::new().handshake_timeout(Some(Duration::from_secs(5)));
    /// # let _ = options;
    /// ```
    pub fn handshake_timeout(mut self, limit: Option<Duration>) -> Options {
        self.handshake_timeout = limit;
        self
    }

    /// TLS, server side (feature `tls`): on a listener, every accepted connection runs a
    /// TLS handshake inside the reactor with `config` and gets `on_connect` once it
    /// completes; framing and `on_read` see plaintext, `send` encrypts, and a graceful
    /// close sends `close_notify`. [`eventmux::tls::server_config`](crate::tls::server_config)
    /// loads one from PEM files.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {}
    ///
    /// let config = eventmux::tls::server_config("cert.pem".as_ref(), "key.pem".as_ref())?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen_with("127.0.0.1:7443", Options::new().tls(config), Echo)?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Options {
        self.tls = Some(TlsSide::Server(config));
        self
    }

    /// TLS, client side (feature `tls`): a `connect_with` these options runs a TLS
    /// handshake with `config`, verifying the server as `server_name`, once the TCP
    /// connect completes; `on_connect` comes when the handshake has.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use std::sync::Arc;
    /// use eventmux::tls::rustls;
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Client;
    /// impl Handler for Client {}
    ///
    /// let roots = rustls::RootCertStore::empty(); // add your CA here
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let name = rustls::pki_types::ServerName::try_from("example.com").unwrap();
    /// let mut reactor = Reactor::new()?;
    /// reactor.connect_with("example.com:443", Options::new().tls_client(Arc::new(config), name), Client)?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_client(
        mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> Options {
        self.tls = Some(TlsSide::Client(config, server_name));
        self
    }

    /// TLS, client side (feature `tls`), with the server name taken from where the
    /// connect goes: the host of a `tls://HOST:PORT` URL, or the IP address of any other
    /// TCP endpoint. Without this option a `tls://` connect verifies the server against
    /// the system's trust store ([`eventmux::tls::system_client_config`](crate::tls::system_client_config)).
    /// [`eventmux::tls::client_config`](crate::tls::client_config) makes one that trusts
    /// the certificates of a PEM file.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Handler, Options, Reactor};
    ///
    /// struct Client;
    /// impl Handler for Client {}
    ///
    /// let config = eventmux::tls::client_config("ca.pem".as_ref())?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.connect_with("tls://localhost:7443", Options::new().tls_client_config(config), Client)?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_client_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Options {
        self.tls = Some(TlsSide::ClientConfig(config));
        self
    }

    /// Type: treat a descriptor given to `add` as this kind instead of what detection says
    /// (EventMux's `Type` and `Listen` options).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixDatagram;
    /// use eventmux::{Handler, Kind, Options, Reactor};
    ///
    /// struct Messages;
    /// impl Handler for Messages {}
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _theirs) = UnixDatagram::pair()?;
    /// // Read and written as a stream: on_read without a sender, buflen in bytes.
    /// let token = reactor.add(ours, Options::new().kind(Kind::Stream), Messages)?;
    /// assert_eq!(reactor.handle(token).unwrap().kind(), Some(Kind::Stream));
    /// # Ok(()) }
    /// ```
    pub fn kind(mut self, kind: Kind) -> Options {
        self.kind = Some(kind);
        self
    }

    /// Errors (Linux): on a UDP handle, turn on the socket error queue (`IP_RECVERR` /
    /// `IPV6_RECVERR`), so ICMP errors for datagrams sent with `send_to` come back as
    /// `on_error(`[`Error::Undeliverable`](crate::Error::Undeliverable)`)` carrying the errno,
    /// who reported it, the destination and the payload. Off by default, as in EventMux.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Error, Handler, Options, Reactor};
    ///
    /// /// Learns which destinations are unreachable (ICMP port unreachable, ...).
    /// struct Prober;
    /// impl Handler for Prober {
    ///     fn on_error(&mut self, _: &mut Context<'_>, error: &Error) {
    ///         if let Error::Undeliverable(report) = error {
    ///             eprintln!("{:?}: {}", report.to(), report.message());
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.bind("udp://127.0.0.1:0", Options::new().errors(true), Prober)?;
    /// # Ok(()) }
    /// ```
    pub fn errors(mut self, on: bool) -> Options {
        self.errors = on;
        self
    }

    /// The record deadline (default [`DEFAULT_RECORD_TIMEOUT`], 60 s; `None`: none): once a
    /// framed record has begun to arrive, it must be complete within `time`, or the handle
    /// gets `on_error(`[`Error::Timeout`](crate::Error::Timeout)`(`[`Deadline::Record`](crate::Deadline::Record)`))`,
    /// where it can still answer (HTTP's 408), then a graceful close with
    /// [`CloseReason::Timeout`](crate::CloseReason::Timeout). A peer trickling a request a
    /// byte at a time (slowloris) cannot hold a connection longer. Applies to framed
    /// streams; not while the handler has paused reading.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::framing::Framing;
    /// use eventmux::Options;
    ///
    /// let http = Options::new()
    ///     .framing(Framing::http())
    ///     .record_timeout(Some(Duration::from_secs(10)));
    /// # let _ = http;
    /// ```
    pub fn record_timeout(mut self, time: Option<Duration>) -> Options {
        self.record_timeout = time;
        self
    }

    /// The idle deadline (default `None`: a handle's silence may be normal): if no byte is
    /// read or written for `time`, the handle gets
    /// `on_error(`[`Error::Timeout`](crate::Error::Timeout)`(`[`Deadline::Idle`](crate::Deadline::Idle)`))`,
    /// then a graceful close. Not while the handler has paused reading.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::Options;
    ///
    /// // Keep-alive connections that stay silent for 75 s are closed (nginx's default).
    /// let keep_alive = Options::new().idle_timeout(Some(Duration::from_secs(75)));
    /// # let _ = keep_alive;
    /// ```
    pub fn idle_timeout(mut self, time: Option<Duration>) -> Options {
        self.idle_timeout = time;
        self
    }

    /// The send deadline (default [`DEFAULT_SEND_TIMEOUT`], 60 s; `None`: none): while
    /// output is queued, the peer must take some of it within `time`, or the handle gets
    /// `on_error(`[`Error::Timeout`](crate::Error::Timeout)`(`[`Deadline::Send`](crate::Deadline::Send)`))`
    /// and is killed (a graceful close could not flush either). A reader that stopped
    /// cannot hold memory for ever.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::Options;
    ///
    /// let impatient = Options::new().send_timeout(Some(Duration::from_secs(5)));
    /// # let _ = impatient;
    /// ```
    pub fn send_timeout(mut self, time: Option<Duration>) -> Options {
        self.send_timeout = time;
        self
    }

    /// The connect deadline (default [`DEFAULT_CONNECT_TIMEOUT`], 30 s; `None`: none): an
    /// outgoing connect that has not completed within `time` fails with
    /// `on_error(`[`Error::Timeout`](crate::Error::Timeout)`(`[`Deadline::Connect`](crate::Deadline::Connect)`))`
    /// then `on_close`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::Options;
    ///
    /// let quick = Options::new().connect_timeout(Some(Duration::from_secs(2)));
    /// # let _ = quick;
    /// ```
    pub fn connect_timeout(mut self, time: Option<Duration>) -> Options {
        self.connect_timeout = time;
        self
    }

    /// How much a graceful close reads and throws away, at most, while it waits for the
    /// peer's end of stream (default [`DEFAULT_DISCARD_LIMIT`], 256 KiB). Past it the handle
    /// is closed at once, whatever the linger time left: a peer refused for an oversized
    /// record cannot make the server read (and spend CPU on) gigabytes it will never use.
    /// A close that never wrote a byte does not linger at all: there is nothing the peer
    /// must still read.
    ///
    /// ```
    /// use eventmux::Options;
    ///
    /// let options = Options::new().discard_limit(64 * 1024);
    /// # let _ = options;
    /// ```
    pub fn discard_limit(mut self, bytes: usize) -> Options {
        self.discard_limit = bytes;
        self
    }

    /// Output watermarks (default none): when queued output passes `high` bytes, the
    /// reactor stops reading from the handle and calls
    /// [`on_watermark`](crate::Handler::on_watermark)`(`[`Watermark::High`](crate::Watermark::High)`)`;
    /// once it drains to `low` (at most `high`), reading resumes and
    /// `on_watermark(`[`Watermark::Low`](crate::Watermark::Low)`)` follows. The hard bound,
    /// [`max_output`](Options::max_output), still applies above them.
    ///
    /// ```
    /// use eventmux::Options;
    ///
    /// let relay = Options::new().watermarks(1 << 20, 256 << 10); // 1 MiB / 256 KiB
    /// # let _ = relay;
    /// ```
    pub fn watermarks(mut self, high: usize, low: usize) -> Options {
        self.watermarks = Some((high, low.min(high)));
        self
    }

    /// Listeners: the most connections open at once (default, and upper bound: the
    /// process's open-file limit, `RLIMIT_NOFILE`, less [`DESCRIPTOR_RESERVE`] for
    /// everything else, so that running out of descriptors stays an accident rather than
    /// the normal way of saying no). Past it a new connection is accepted, sent the [`refusal`](Options::refusal)
    /// message if there is one, and closed cleanly; the refusal is counted
    /// ([`Context::refused_connections`](crate::Context::refused_connections)). Open
    /// connections are not affected, and the listener never spins.
    ///
    /// ```
    /// use eventmux::Options;
    ///
    /// let options = Options::new()
    ///     .max_connections(10_000)
    ///     .refusal(&b"-ERR max number of clients reached\r\n"[..]);
    /// # let _ = options;
    /// ```
    pub fn max_connections(mut self, connections: usize) -> Options {
        self.max_connections = Some(connections);
        self
    }

    /// Listeners: what a connection refused past
    /// [`max_connections`](Options::max_connections) is sent before it is closed (default
    /// nothing).
    ///
    /// ```
    /// use eventmux::Options;
    ///
    /// let busy = Options::new().refusal("HTTP/1.1 503 Service Unavailable\r\n\r\n");
    /// # let _ = busy;
    /// ```
    pub fn refusal(mut self, message: impl Into<Bytes>) -> Options {
        self.refusal = Some(message.into());
        self
    }

    /// The connection limit in force for a listener with these options: the one asked
    /// for, but never more than the descriptors allow (as redis lowers `maxclients`), so
    /// that connections past it are refused rather than left in the backlog by EMFILE.
    pub(crate) fn connection_limit(&self) -> usize {
        let descriptors = crate::sys::fd::open_files_limit().map_or(usize::MAX, |limit| {
            let limit = limit as usize;
            (limit - DESCRIPTOR_RESERVE.min(limit / 4)).max(1)
        });
        self.max_connections
            .map_or(descriptors, |asked| asked.min(descriptors))
    }

    /// The shortest deadline these options set, if any.
    pub(crate) fn shortest_deadline(&self) -> Option<Duration> {
        [
            self.record_timeout,
            self.idle_timeout,
            self.send_timeout,
            self.connect_timeout,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_connection_limit_leaves_a_reserve_under_the_open_file_limit() {
        let soft = crate::sys::fd::open_files_limit().expect("a finite RLIMIT_NOFILE");
        let limit = Options::new().connection_limit();
        let reserve = DESCRIPTOR_RESERVE.min(soft as usize / 4) as u64;
        assert_eq!(limit as u64, soft - reserve);
        assert_eq!(Options::new().max_connections(7).connection_limit(), 7);
        assert_eq!(
            Options::new()
                .max_connections(usize::MAX)
                .connection_limit(),
            limit,
            "never past what the descriptors allow"
        );
    }
}
