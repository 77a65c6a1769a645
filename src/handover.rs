//! Hand-over of listening sockets between server processes, without a refused connection
//! (haproxy's `-x`): a running server offers its listeners on a Unix socket
//! ([`Reactor::offer_listeners`](crate::Reactor::offer_listeners)); a new process started
//! beside it asks for them ([`take_over`]), starts accepting on them, and says it is ready;
//! the old one then shuts down gracefully, finishing its own connections. Both processes
//! hold the same listening sockets in between, so the kernel keeps queueing connections
//! throughout: whichever process accepts them, none is refused.
//!
//! The protocol, one line each way over the Unix stream socket:
//!
//! 1. new → old: `TAKEOVER`;
//! 2. old → new: `LISTENERS <n>`, with the `n` listening sockets attached (`SCM_RIGHTS`).
//!    The old server has removed its offer's socket file by then, so the new one can offer
//!    at the same path;
//! 3. new → old: `READY`; the old server starts its graceful shutdown. If the new process
//!    goes away without saying it, the old one offers again and goes on serving.
//!
//! Only peers of the same user (or root) are served, by `SO_PEERCRED`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::framing::Framing;
use crate::handle::State;
use crate::reactor::registry::Registry;
use crate::sys;
use crate::{CloseReason, Context, Handler, Incoming, Kind, Options, Token};

/// How long [`take_over`] waits for the running server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Listening sockets taken over from a running server (see [`take_over`]).
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Handler, Options, Reactor};
///
/// struct Server;
/// impl Handler for Server {}
///
/// let mut reactor = Reactor::new()?;
/// let path = "/run/myserver/handover.sock";
/// match eventmux::take_over(path)? {
///     Some(mut taken) => {
///         for listener in taken.take_listeners() {
///             reactor.add(listener, Options::new(), Server)?; // accepting from now on
///         }
///         taken.ready()?; // the old server drains its connections and exits
///     }
///     None => {
///         reactor.listen("127.0.0.1:7007", Server)?; // nobody to take over from
///     }
/// }
/// reactor.offer_listeners(path, std::time::Duration::from_secs(30))?; // for the next one
/// reactor.run()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TakeOver {
    control: UnixStream,
    listeners: Vec<OwnedFd>,
}

impl TakeOver {
    /// The listening sockets, to be added to a reactor (`add` detects listeners). Taken
    /// once; a second call returns none.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// if let Some(mut taken) = eventmux::take_over("/tmp/server.sock")? {
    ///     println!("{} listeners", taken.take_listeners().len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take_listeners(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.listeners)
    }

    /// Tells the old server that this one accepts now: it starts its graceful shutdown.
    /// Dropping a `TakeOver` without calling this leaves the old server serving (and
    /// offering its listeners again).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// if let Some(taken) = eventmux::take_over("/tmp/server.sock")? {
    ///     taken.ready()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn ready(mut self) -> io::Result<()> {
        self.control.write_all(b"READY\n")?;
        // Wait for the old server to close its end: it has read READY by then.
        let mut rest = Vec::new();
        let _ = self.control.read_to_end(&mut rest);
        Ok(())
    }
}

/// Asks the server offering its listeners at `path` for them. `Ok(None)` if nobody offers
/// there (no socket file, or nobody listening on it): start afresh then. Blocks until the
/// answer comes (at most 10 s); call it before running the reactor.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// match eventmux::take_over("/tmp/server.sock")? {
///     Some(taken) => println!("taking over from the running server"),
///     None => println!("first server: listening afresh"),
/// }
/// # Ok(()) }
/// ```
pub fn take_over(path: impl AsRef<Path>) -> io::Result<Option<TakeOver>> {
    let mut control = match UnixStream::connect(path.as_ref()) {
        Ok(control) => control,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    control.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    control.write_all(b"TAKEOVER\n")?;
    let mut line = Vec::new();
    let mut listeners = Vec::new();
    let mut buf = [0u8; 64];
    while !line.ends_with(b"\n") {
        let (n, cut) = sys::rights::recv_with_fds(control.as_fd(), &mut buf, &mut listeners)?;
        if n == 0 || cut || line.len() > 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the running server did not answer the takeover",
            ));
        }
        line.extend_from_slice(&buf[..n]);
    }
    let announced = std::str::from_utf8(&line)
        .ok()
        .and_then(|l| l.trim_end().strip_prefix("LISTENERS "))
        .and_then(|n| n.parse::<usize>().ok());
    if announced != Some(listeners.len()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the running server announced {:?} and passed {} listeners",
                String::from_utf8_lossy(line.trim_ascii_end()),
                listeners.len()
            ),
        ));
    }
    Ok(Some(TakeOver { control, listeners }))
}

/// The offer's Unix listener: serves takeover requests from processes of the same user.
pub(crate) struct Offer {
    pub(crate) path: PathBuf,
    pub(crate) grace: Duration,
}

impl Offer {
    /// The options of the offer's listener and its sessions: a request is one short line,
    /// and a peer that does not send it within ten seconds is closed.
    pub(crate) fn options() -> Options {
        Options::new()
            .framing(Framing::lines())
            .max_size(64)
            .record_timeout(Some(ANSWER_TIMEOUT))
            .idle_timeout(Some(ANSWER_TIMEOUT))
    }
}

impl Handler for Offer {
    fn on_accept(
        &mut self,
        ctx: &mut Context<'_>,
        incoming: &Incoming,
    ) -> Option<Box<dyn Handler>> {
        let peer = incoming.credentials()?;
        // SAFETY: geteuid cannot fail and touches no memory.
        let ours = unsafe { libc::geteuid() };
        if peer.uid() != ours && peer.uid() != 0 {
            log::warn!("{}: takeover refused to uid {}", ctx.token(), peer.uid());
            return None;
        }
        Some(Box::new(Session {
            offer: ctx.token(),
            path: self.path.clone(),
            grace: self.grace,
            handed: false,
            ready: false,
        }))
    }

    /// A shutdown of this server closes the offer with the listeners.
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        ctx.kill();
    }
}

/// One takeover request.
struct Session {
    offer: Token,
    path: PathBuf,
    grace: Duration,
    handed: bool,
    ready: bool,
}

impl Handler for Session {
    fn on_read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        match (line, self.handed) {
            (b"TAKEOVER", false) => {
                let listeners = ctx.registry_mut().hand_over_listeners(self.offer);
                let borrowed: Vec<BorrowedFd<'_>> = listeners.iter().map(|l| l.as_fd()).collect();
                let answer = format!("LISTENERS {}\n", listeners.len());
                if let Err(e) = ctx.send_fds(answer.as_bytes(), &borrowed) {
                    log::warn!("{}: passing the listeners failed: {e}", ctx.token());
                    ctx.close();
                    return;
                }
                // The new server offers at the same path next: ours goes now (its file is
                // removed as it is finalized, before the listeners are even written).
                if let Some(mut offer) = ctx.handle(self.offer) {
                    offer.kill();
                }
                self.handed = true;
                log::info!("{}: {} listeners handed over", ctx.token(), listeners.len());
            }
            (b"READY", true) => {
                self.ready = true;
                log::info!("{}: the new server accepts; draining", ctx.token());
                ctx.shutdown(self.grace);
            }
            _ => {
                let _ = ctx.send(b"ERROR\n");
                ctx.close();
            }
        }
    }

    /// The new server went away before it was ready: offer the listeners again.
    fn on_close(&mut self, ctx: &mut Context<'_>, _reason: CloseReason) {
        if self.handed && !self.ready {
            log::warn!("{}: the new server left before it was ready", ctx.token());
            let offer = Offer {
                path: self.path.clone(),
                grace: self.grace,
            };
            if let Err(e) = ctx.listen_with(self.path.as_path(), Offer::options(), offer) {
                log::error!("offering the listeners again at {:?}: {e}", self.path);
            }
        }
    }
}

impl Registry {
    /// Duplicates of every live listener's socket except `offer`, for passing to a new
    /// server. The listeners now share their open files with another process: they
    /// deregister explicitly when they close, and leave a Unix socket's file in place (it
    /// is the new server's now).
    fn hand_over_listeners(&mut self, offer: Token) -> Vec<OwnedFd> {
        let id = self.id;
        let mut listeners = Vec::new();
        for (index, entry) in self.entries.iter_mut() {
            let token = Token::new(index, entry.generation, id);
            if token == offer || entry.kind() != Kind::Listener || !entry.is_live() {
                continue;
            }
            let Some(Ok(fd)) = entry.fd.as_ref().map(OwnedFd::try_clone) else {
                continue;
            };
            entry.sole_owner = false;
            if let State::Listener(listener) = &mut entry.state {
                listener.bound_path = None;
            }
            listeners.push(fd);
        }
        listeners
    }
}
