//! The [`Handler`] trait: one object per handle, one method per event.
//!
//! Each IO::EventMux event type becomes a callback (`accepted` → `on_accept`, `ready` →
//! `on_connect`, `read` → `on_read`, `sent` → `on_sent`, `closing` → `on_closing`, `closed`
//! → `on_close`, `error` → `on_error`, `accepting`, `can_read`, `can_write` →
//! `on_accepting`, `on_readable`, `on_writable`), and EventMux's per-handle `Meta` is simply
//! the handler object's own fields. Every method has a default, so a handler implements
//! only what it needs.

use std::any::Any;
use std::net::SocketAddr;

use crate::{
    Address, CloseReason, Context, Credentials, Error, Packet, Signal, TimerId, Token, Watermark,
};

/// A connection a listener has just accepted, shown to [`Handler::on_accept`].
#[derive(Debug)]
pub struct Incoming {
    pub(crate) peer: Address,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) token: Token,
}

impl Incoming {
    /// The new connection's token. It is registered already: `on_accept` may keep the
    /// token (in a room's member list, say) or queue a greeting on it with
    /// [`Context::handle`]; if `on_accept` refuses, the token goes stale at once.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Incoming, Token};
    ///
    /// struct Conn;
    /// impl Handler for Conn {}
    ///
    /// struct Room { members: Vec<Token> }
    /// impl Handler for Room {
    ///     fn on_accept(&mut self, ctx: &mut Context<'_>, incoming: &Incoming) -> Option<Box<dyn Handler>> {
    ///         self.members.push(incoming.token());
    ///         if let Some(mut new) = ctx.handle(incoming.token()) {
    ///             let _ = new.send(b"welcome\n");
    ///         }
    ///         Some(Box::new(Conn))
    ///     }
    /// }
    /// ```
    pub fn token(&self) -> Token {
        self.token
    }

    /// The peer's IP address and port (`None` for Unix sockets).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::{IpAddr, TcpStream};
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Incoming, Reactor};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// /// Serves the local network only; other peers are refused (closed at once).
    /// struct Private;
    /// impl Handler for Private {
    ///     fn on_accept(
    ///         &mut self,
    ///         _: &mut Context<'_>,
    ///         incoming: &Incoming,
    ///     ) -> Option<Box<dyn Handler>> {
    ///         let local = match incoming.peer_addr()?.ip() {
    ///             IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
    ///             IpAddr::V6(ip) => ip.is_loopback(),
    ///         };
    ///         local.then(|| Box::new(Session) as Box<dyn Handler>)
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let listener = reactor.listen("127.0.0.1:0", Private)?;
    /// let _client = TcpStream::connect(reactor.local_addr(listener)?)?;
    /// while reactor.run_once(Some(Duration::from_millis(100)))? {} // until idle
    /// assert_eq!(reactor.len(), 2); // the listener and the client's session
    /// # Ok(()) }
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.as_inet()
    }

    /// The peer's address, of whatever family.
    ///
    /// ```
    /// use eventmux::{Context, Handler, Incoming};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// /// Logs every peer: `127.0.0.1:50432`, `/run/app/client.sock` or `(unnamed)`.
    /// struct Logged;
    /// impl Handler for Logged {
    ///     fn on_accept(
    ///         &mut self,
    ///         _: &mut Context<'_>,
    ///         incoming: &Incoming,
    ///     ) -> Option<Box<dyn Handler>> {
    ///         println!("connection from {}", incoming.address());
    ///         Some(Box::new(Session))
    ///     }
    /// }
    /// ```
    pub fn address(&self) -> &Address {
        &self.peer
    }

    /// The peer process's pid, uid and gid, on a Unix listener (`SO_PEERCRED`).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::fs::MetadataExt;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Incoming, Reactor};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// /// Serves processes of one user only.
    /// struct SameUser { uid: u32 }
    /// impl Handler for SameUser {
    ///     fn on_accept(
    ///         &mut self,
    ///         _: &mut Context<'_>,
    ///         incoming: &Incoming,
    ///     ) -> Option<Box<dyn Handler>> {
    ///         let peer = incoming.credentials()?; // `None` (refuse) unless a Unix socket
    ///         (peer.uid() == self.uid).then(|| Box::new(Session) as Box<dyn Handler>)
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let path = std::env::temp_dir().join(format!("eventmux-doc-{}.sock", std::process::id()));
    /// let uid = std::fs::metadata("/proc/self")?.uid(); // our own user
    /// reactor.listen(path.as_path(), SameUser { uid })?;
    /// let _client = UnixStream::connect(&path)?;
    /// while reactor.run_once(Some(Duration::from_millis(100)))? {} // until idle
    /// assert_eq!(reactor.len(), 2); // the listener and the client's session
    /// # drop(reactor);
    /// # let _ = std::fs::remove_file(&path);
    /// # Ok(()) }
    /// ```
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials
    }
}

/// Callbacks for one handle. Register an object of yours with the
/// [`Reactor`](crate::Reactor); the reactor calls it on the reactor thread, one callback
/// at a time, each with a [`Context`] to act on this handle and on any other.
///
/// A panic in a callback is caught: by default the handle is closed, what it had queued
/// still written (`on_close` gets [`CloseReason::Panicked`]), and the loop goes on; see
/// [`PanicPolicy`](crate::PanicPolicy).
///
/// ```
/// use eventmux::{Context, Handler};
///
/// /// Echoes what it reads, and counts bytes (its own "Meta").
/// struct Echo { bytes: usize }
///
/// impl Handler for Echo {
///     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
///         self.bytes += data.len();
///         let _ = ctx.send(data); // an error also reaches on_error
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler: Any {
    /// A listener accepted a connection. Return the new connection's handler, or `None` to
    /// refuse it (it is closed at once). The default refuses.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Read;
    /// use std::net::TcpStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Incoming, Reactor};
    ///
    /// /// Numbers its connections; each session greets its client with its number.
    /// struct Server { accepted: u64 }
    /// impl Handler for Server {
    ///     fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
    ///         self.accepted += 1;
    ///         Some(Box::new(Session { number: self.accepted }))
    ///     }
    /// }
    ///
    /// struct Session { number: u64 }
    /// impl Handler for Session {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send(format!("you are client #{}\n", self.number).as_bytes());
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let listener = reactor.listen("127.0.0.1:0", Server { accepted: 0 })?;
    /// let mut client = TcpStream::connect(reactor.local_addr(listener)?)?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// while reactor.run_once(Some(Duration::from_millis(100)))? {} // until idle
    /// let mut greeting = [0; 17];
    /// client.read_exact(&mut greeting)?;
    /// assert_eq!(&greeting, b"you are client #1");
    /// # Ok(()) }
    /// ```
    fn on_accept(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        None
    }

    /// ManualAccept: connections are waiting; accept them with
    /// [`Context::accept`](crate::Context::accept). Repeats each turn while any wait.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// /// Accepts at most 16 connections a turn, so a burst of connects cannot hold up the
    /// /// connections already open; the rest wait for the next turn.
    /// struct Paced;
    /// impl Handler for Paced {
    ///     fn on_accepting(&mut self, ctx: &mut Context<'_>) {
    ///         for _ in 0..16 {
    ///             let Ok(Some((fd, _peer))) = ctx.accept() else {
    ///                 break; // none waiting (or accept failed)
    ///             };
    ///             let _ = ctx.add(fd, Options::new(), Session);
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen_with("127.0.0.1:0", Options::new().manual_accept(true), Paced)?;
    /// # Ok(()) }
    /// ```
    fn on_accepting(&mut self, ctx: &mut Context<'_>) {}

    /// The connection is established: a non-blocking connect completed (EventMux's
    /// `ready`), or a listener just accepted it. A good place for a greeting.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Speaks first, as an SMTP server does.
    /// struct Smtp;
    /// impl Handler for Smtp {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send(b"220 mail.example.com ESMTP\r\n");
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut client) = UnixStream::pair()?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// reactor.add(ours, Options::new(), Smtp)?; // connected already: on_connect comes at once
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut banner = [0; 28];
    /// client.read_exact(&mut banner)?;
    /// assert_eq!(&banner, b"220 mail.example.com ESMTP\r\n");
    /// # Ok(()) }
    /// ```
    fn on_connect(&mut self, ctx: &mut Context<'_>) {}

    /// Bytes arrived: whatever one read returned or, with [framing](crate::framing), one
    /// whole record. `data` usually borrows the reactor's shared read buffer: copy what must
    /// outlive the call. An empty record (an empty line, `fixed(0)`, a length prefix of 0)
    /// arrives as an empty slice; without framing `data` is never empty.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Answers PING, one command per line.
    /// struct Pong;
    /// impl Handler for Pong {
    ///     fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
    ///         let reply: &[u8] = if line == b"PING" { b"+PONG\r\n" } else { b"-ERR\r\n" };
    ///         let _ = ctx.send(reply);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut client) = UnixStream::pair()?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// reactor.add(ours, Options::new().framing(Framing::lines()), Pong)?;
    /// client.write_all(b"PING\r\n")?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut reply = [0; 7];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"+PONG\r\n");
    /// # Ok(()) }
    /// ```
    fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {}

    /// A datagram arrived on a datagram handle, from `from` (an empty datagram is an empty
    /// `data`). The default passes it on to [`on_read`](Handler::on_read), so a handler that
    /// does not care about senders implements only that.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::UdpSocket;
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use eventmux::{Address, Context, Handler, Options, Reactor};
    ///
    /// /// A time service: answers any datagram with the seconds since 1970.
    /// struct Time;
    /// impl Handler for Time {
    ///     fn on_datagram(&mut self, ctx: &mut Context<'_>, _: &[u8], from: &Address) {
    ///         let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    ///         let _ = ctx.send_to(from, now.as_secs().to_string().as_bytes());
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let server = reactor.bind("udp://127.0.0.1:0", Options::new(), Time)?;
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// client.send_to(b"", reactor.local_addr(server)?)?; // an empty datagram will do
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut answer = [0; 20];
    /// let n = client.recv(&mut answer)?;
    /// assert!(std::str::from_utf8(&answer[..n]).unwrap().parse::<u64>().is_ok());
    /// # Ok(()) }
    /// ```
    fn on_datagram(&mut self, ctx: &mut Context<'_>, data: &[u8], from: &Address) {
        let _ = from;
        self.on_read(ctx, data);
    }

    /// A pump delivered a packet (see [`Reactor::pump`](crate::Reactor::pump)). The default
    /// passes a successful one on to [`on_datagram`](Handler::on_datagram) (and so to
    /// `on_read`) and a failed receive to `on_error`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::net::UdpSocket;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};
    ///
    /// /// Echoes every packet to its sender, from the reactor thread.
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
    ///         if let Some(from) = packet.from() {
    ///             let _ = ctx.send_to(from, packet.data());
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let pump = reactor.pump("udp://127.0.0.1:0", PumpOptions::new(), Echo)?;
    /// let client = UdpSocket::bind("127.0.0.1:0")?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// client.send_to(b"ping", reactor.local_addr(pump)?)?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?; // a pump thread hands the packet over
    /// let mut echo = [0; 16];
    /// let n = client.recv(&mut echo)?;
    /// assert_eq!(&echo[..n], b"ping");
    /// # Ok(()) }
    /// ```
    fn on_packet(&mut self, ctx: &mut Context<'_>, packet: &Packet) {
        match packet.from() {
            Some(from) if packet.errno() == 0 => self.on_datagram(ctx, packet.data(), from),
            _ => self.on_error(
                ctx,
                &Error::Io(std::io::Error::from_raw_os_error(packet.errno())),
            ),
        }
    }

    /// An event pushed by [`Remote::push_event`](crate::Remote::push_event) from another
    /// thread. The default drops it (logged at debug).
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::any::Any;
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Sends the lines other threads push to it.
    /// struct Outbox;
    /// impl Handler for Outbox {
    ///     fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
    ///         match event.downcast::<String>() {
    ///             Ok(line) => drop(ctx.send(line.as_bytes())),
    ///             Err(_) => eprintln!("{}: unexpected event", ctx.token()),
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut peer) = UnixStream::pair()?;
    /// # peer.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// let outbox = reactor.add(ours, Options::new(), Outbox)?;
    /// let remote = reactor.remote()?;
    /// let worker = std::thread::spawn(move || remote.push_event(outbox, String::from("hi\n")));
    /// worker.join().unwrap()?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut line = [0; 3];
    /// peer.read_exact(&mut line)?;
    /// assert_eq!(&line, b"hi\n");
    /// # Ok(()) }
    /// ```
    fn on_user_event(&mut self, ctx: &mut Context<'_>, event: Box<dyn Any + Send>) {
        let _ = event;
        log::debug!("{}: unhandled user event", ctx.token());
    }

    /// The stream ended (or is being closed) with bytes that do not make a whole record under
    /// the handle's framing: here they are, once, before `on_closing`/`on_close` (EventMux's
    /// `read_last`). Not called after a kill, a remove or a panic, nor without framing
    /// (then every byte already went to `on_read`). The default hands them to
    /// [`on_read`](Handler::on_read), as EventMux does when no `read_last` is asked for, so
    /// no byte that arrived is dropped silently; override it to tell the tail apart. The
    /// handle is already gone here: what `ctx` is asked to do to it fails.
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Lines;
    /// impl Handler for Lines {
    ///     fn on_read(&mut self, _ctx: &mut Context<'_>, line: &[u8]) {
    ///         println!("line: {}", String::from_utf8_lossy(line));
    ///     }
    ///     fn on_read_last(&mut self, _ctx: &mut Context<'_>, rest: &[u8]) {
    ///         eprintln!("{} bytes without a newline at the end", rest.len());
    ///     }
    /// }
    /// ```
    fn on_read_last(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        self.on_read(ctx, data);
    }

    /// The output queue became empty: everything sent so far is in the kernel. Also called
    /// when a graceful close has drained the queue, right before the close goes on.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use bytes::Bytes;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Sends a large body 64 KiB at a time, the next chunk once the last is written, so
    /// /// each client holds at most one chunk in its queue.
    /// struct Download { rest: Bytes }
    /// impl Handler for Download {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         self.on_sent(ctx);
    ///     }
    ///     fn on_sent(&mut self, ctx: &mut Context<'_>) {
    ///         if self.rest.is_empty() {
    ///             return ctx.close(); // (called once more when the close has drained)
    ///         }
    ///         let chunk = self.rest.split_to(self.rest.len().min(64 * 1024));
    ///         let _ = ctx.send_bytes(chunk);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut client) = UnixStream::pair()?;
    /// # client.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    /// reactor.add(ours, Options::new(), Download { rest: Bytes::from(vec![7; 1 << 20]) })?;
    /// let reader = std::thread::spawn(move || client.read_to_end(&mut Vec::new()));
    /// reactor.run()?; // until the body is out and the client has hung up
    /// assert_eq!(reader.join().unwrap()?, 1 << 20);
    /// # Ok(()) }
    /// ```
    fn on_sent(&mut self, ctx: &mut Context<'_>) {}

    /// ManualRead: the handle is readable. Repeats each turn while it stays readable.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixStream;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Reads by hand while its backlog has room, and pauses reading when it is full (to
    /// /// resume once the backlog is worked off).
    /// struct Bounded { backlog: Vec<u8> }
    /// impl Handler for Bounded {
    ///     fn on_readable(&mut self, ctx: &mut Context<'_>) {
    ///         if self.backlog.len() >= 1 << 20 {
    ///             let _ = ctx.pause_reading();
    ///             return;
    ///         }
    ///         let mut chunk = [0; 4096];
    ///         match ctx.read(&mut chunk) {
    ///             Ok(0) => ctx.close(), // end of stream
    ///             Ok(n) => self.backlog.extend_from_slice(&chunk[..n]),
    ///             Err(_) => {} // nothing more for now: called again when there is
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _peer) = UnixStream::pair()?;
    /// let options = Options::new().manual_read(true);
    /// reactor.add(ours, options, Bounded { backlog: Vec::new() })?;
    /// # Ok(()) }
    /// ```
    fn on_readable(&mut self, ctx: &mut Context<'_>) {}

    /// ManualWrite: the handle became writable after [`Context::watch_writable`](crate::Context::watch_writable)
    /// (or registration). One call per request.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Read;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Writes by hand, as much as the socket takes, and asks again for the rest.
    /// struct Writer { rest: Vec<u8> }
    /// impl Handler for Writer {
    ///     fn on_writable(&mut self, ctx: &mut Context<'_>) {
    ///         if let Ok(n) = ctx.write(&self.rest) {
    ///             self.rest.drain(..n);
    ///         }
    ///         if !self.rest.is_empty() {
    ///             let _ = ctx.watch_writable();
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut peer) = UnixStream::pair()?;
    /// # peer.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// let options = Options::new().manual_write(true); // one on_writable is due at once
    /// reactor.add(ours, options, Writer { rest: b"written by hand\n".to_vec() })?;
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut got = [0; 16];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"written by hand\n");
    /// # Ok(()) }
    /// ```
    fn on_writable(&mut self, ctx: &mut Context<'_>) {}

    /// A timer of this handle fired.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, TimerId};
    ///
    /// /// Two timers: a deadline for logging in, and a keepalive every 30 s.
    /// struct Session { login: Option<TimerId> }
    /// impl Handler for Session {
    ///     fn on_connect(&mut self, ctx: &mut Context<'_>) {
    ///         self.login = ctx.set_timer(Duration::from_secs(10)).ok();
    ///         let _ = ctx.set_interval(Duration::from_secs(30));
    ///     }
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
    ///         if Some(timer) == self.login {
    ///             let _ = ctx.send(b"login timed out\n");
    ///             ctx.close();
    ///         } else {
    ///             let _ = ctx.send(b"PING\n");
    ///         }
    ///     }
    /// }
    /// ```
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {}

    /// An error on this handle. If it ends the handle, `on_closing`/`on_close` follow.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::framing::Framing;
    /// use eventmux::{Context, Error, Handler, Options, Reactor};
    ///
    /// /// Tells a client why it is being closed, when it can.
    /// struct Strict;
    /// impl Handler for Strict {
    ///     fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
    ///         match error {
    ///             Error::InputLimit { .. } => drop(ctx.send(b"-ERR line too long\r\n")),
    ///             other => eprintln!("{}: {other}", ctx.token()),
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, mut client) = UnixStream::pair()?;
    /// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
    /// reactor.add(ours, Options::new().framing(Framing::lines()).max_size(64), Strict)?;
    /// client.write_all(&[b'x'; 100])?; // no end of line in sight
    /// reactor.run_once(Some(Duration::from_secs(5)))?;
    /// let mut reply = [0; 20];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"-ERR line too long\r\n");
    /// # Ok(()) }
    /// ```
    fn on_error(&mut self, ctx: &mut Context<'_>, error: &Error) {
        log::debug!("{}: unhandled error: {error}", ctx.token());
    }

    /// The reactor has stopped serving the handle; `missing` queued bytes were never written
    /// (EventMux's `missing`). Called for every handle that can send, on every close path,
    /// right before `on_close`.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::cell::Cell;
    /// use std::os::unix::net::UnixStream;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use eventmux::{Context, Handler, Options, Reactor};
    ///
    /// /// Adds what its client never got to a server-wide counter.
    /// struct Session { lost: Rc<Cell<usize>> }
    /// impl Handler for Session {
    ///     fn on_closing(&mut self, _: &mut Context<'_>, missing: usize) {
    ///         self.lost.set(self.lost.get() + missing);
    ///     }
    /// }
    ///
    /// let lost = Rc::new(Cell::new(0));
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _peer) = UnixStream::pair()?;
    /// let session = reactor.add(ours, Options::new(), Session { lost: lost.clone() })?;
    /// let mut handle = reactor.handle(session).unwrap();
    /// handle.send(b"never written")?;
    /// handle.kill(); // the queue is dropped
    /// reactor.run_once(Some(Duration::ZERO))?;
    /// assert_eq!(lost.get(), 13);
    /// # Ok(()) }
    /// ```
    fn on_closing(&mut self, ctx: &mut Context<'_>, missing: usize) {}

    /// The handle is gone (its descriptor closed, or handed back by `remove`). The last call
    /// this handler receives; it is dropped after it.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use eventmux::{CloseReason, Context, Handler, Options, Reactor, Token};
    ///
    /// struct Room { members: Vec<Token> }
    /// impl Handler for Room {}
    ///
    /// /// Leaves its room when it goes, for whatever reason.
    /// struct Member { room: Token }
    /// impl Handler for Member {
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {
    ///         let me = ctx.token(); // stale by now, but still names this handle
    ///         if let Some(room) = ctx.handler_mut::<Room>(self.room) {
    ///             room.members.retain(|&member| member != me);
    ///         }
    ///         println!("{me} left: {reason:?}");
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let room = reactor.add_handler(Room { members: Vec::new() });
    /// let (ours, _peer) = UnixStream::pair()?;
    /// let member = reactor.add(ours, Options::new(), Member { room })?;
    /// reactor.handler_mut::<Room>(room).unwrap().members.push(member);
    /// reactor.handle(member).unwrap().kill();
    /// reactor.run_once(Some(Duration::ZERO))?;
    /// assert!(reactor.handler_mut::<Room>(room).unwrap().members.is_empty());
    /// # Ok(()) }
    /// ```
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: CloseReason) {}

    /// The handle's queued output crossed one of its
    /// [`watermarks`](crate::Options::watermarks): past the high mark reading is paused, at
    /// the low mark it resumes. Calls come in order, High then Low. The default does
    /// nothing (the pause and resume happen anyway).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Token, Watermark};
    ///
    /// /// A proxy side: while its output backs up, stop reading the other side too.
    /// struct Side { other: Token }
    /// impl Handler for Side {
    ///     fn on_watermark(&mut self, ctx: &mut Context<'_>, mark: Watermark) {
    ///         if let Some(mut other) = ctx.handle(self.other) {
    ///             let _ = match mark {
    ///                 Watermark::High => other.pause_reading(),
    ///                 Watermark::Low => other.resume_reading(),
    ///             };
    ///         }
    ///     }
    /// }
    /// ```
    fn on_watermark(&mut self, ctx: &mut Context<'_>, mark: Watermark) {}

    /// A signal arrived on a handle from [`Reactor::signals`](crate::Reactor::signals), once
    /// per signal the kernel delivered (signals of one number sent faster than they are
    /// read are merged by the kernel, as ever). The default logs it (at info).
    ///
    /// ```
    /// use eventmux::{Context, Handler, Signal};
    ///
    /// struct Lifecycle;
    /// impl Handler for Lifecycle {
    ///     fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &Signal) {
    ///         match signal.number() {
    ///             libc::SIGHUP => println!("reloading"),
    ///             _ => ctx.stop(), // SIGTERM, SIGINT
    ///         }
    ///     }
    /// }
    /// ```
    fn on_signal(&mut self, ctx: &mut Context<'_>, signal: &Signal) {
        log::info!("{}: unhandled signal {}", ctx.token(), signal.number());
    }

    /// The reactor is shutting down ([`Reactor::shutdown`](crate::Reactor::shutdown)): say
    /// goodbye if the protocol has one, then close. The default closes gracefully, which
    /// flushes what is queued. A handle still open when the grace time ends is killed with
    /// [`CloseReason::Shutdown`].
    ///
    /// ```
    /// use eventmux::{Context, Handler};
    ///
    /// struct Session;
    /// impl Handler for Session {
    ///     fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.send(b"421 server shutting down\r\n");
    ///         ctx.close();
    ///     }
    /// }
    /// ```
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        ctx.close();
    }

    /// Descriptors a peer passed over a Unix stream socket (`SCM_RIGHTS`), on a handle with
    /// [`Options::receive_fds`](crate::Options::receive_fds). They come before any byte
    /// that carried them reaches `on_read`, close-on-exec, and are the handler's to keep
    /// (add them with [`Context::add`], or drop them to close them). The default closes
    /// them.
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// use eventmux::{Context, Handler, Options};
    ///
    /// struct Session;
    /// impl Handler for Session {}
    ///
    /// /// Serves the connections another process accepted and passed here.
    /// struct Worker;
    /// impl Handler for Worker {
    ///     fn on_fds(&mut self, ctx: &mut Context<'_>, fds: Vec<OwnedFd>) {
    ///         for fd in fds {
    ///             if let Err(e) = ctx.add(fd, Options::new(), Session) {
    ///                 eprintln!("cannot serve a passed connection: {e}");
    ///             }
    ///         }
    ///     }
    /// }
    /// ```
    fn on_fds(&mut self, ctx: &mut Context<'_>, fds: Vec<std::os::fd::OwnedFd>) {
        log::debug!("{}: closing {} passed descriptors", ctx.token(), fds.len());
    }

    /// A child from [`Reactor::spawn`](crate::Reactor::spawn) exited and was reaped, and every
    /// pipe of it has closed: all its output came first. Then its process handle closes
    /// ([`CloseReason::Exited`]). The default logs the status (at debug).
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::process::ExitStatus;
    /// use eventmux::{Context, Handler};
    ///
    /// struct Worker;
    /// impl Handler for Worker {
    ///     fn on_exit(&mut self, ctx: &mut Context<'_>, status: ExitStatus) {
    ///         match (status.code(), status.signal()) {
    ///             (Some(0), _) => println!("done"),
    ///             (Some(code), _) => println!("failed with {code}"),
    ///             (_, Some(signal)) => println!("killed by signal {signal}"),
    ///             _ => {}
    ///         }
    ///         ctx.stop();
    ///     }
    /// }
    /// ```
    fn on_exit(&mut self, ctx: &mut Context<'_>, status: std::process::ExitStatus) {
        log::debug!("{}: child exited: {status}", ctx.token());
    }
}

/// What the reactor's entry points take as a handler: any [`Handler`] by value, or one
/// already boxed as `Box<dyn Handler>` (as `on_accept` returns them). So
/// `reactor.listen(addr, Server)` needs no `Box::new`.
///
/// ```
/// use eventmux::{Handler, IntoHandler};
///
/// struct Quiet;
/// impl Handler for Quiet {}
///
/// let by_value = Quiet.into_handler();
/// let boxed: Box<dyn Handler> = Box::new(Quiet);
/// let same = boxed.into_handler();
/// # let _ = (by_value, same);
/// ```
pub trait IntoHandler {
    /// The handler, boxed for its slot.
    ///
    /// ```
    /// use eventmux::{Handler, IntoHandler};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {}
    ///
    /// let boxed: Box<dyn Handler> = Quiet.into_handler();
    /// # let _ = boxed;
    /// ```
    fn into_handler(self) -> Box<dyn Handler>;
}

impl<T: Handler> IntoHandler for T {
    fn into_handler(self) -> Box<dyn Handler> {
        Box::new(self)
    }
}

impl IntoHandler for Box<dyn Handler> {
    fn into_handler(self) -> Box<dyn Handler> {
        self
    }
}
