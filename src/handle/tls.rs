//! TLS on stream handles (feature `tls`, rustls): the session of each TLS stream lives in
//! the registry ([`TlsSessions`]); the stream's slot only says that it has one
//! ([`Extras`](super::slot::Extras)).
//!
//! **Read**: ciphertext is read into the reactor's TLS buffer, fed to rustls, and the
//! plaintext rustls gives back is read into the shared read buffer and delivered exactly as
//! a plain stream's bytes are (framing, bounds, deadlines). Plaintext rustls holds while the
//! handler has paused reading is delivered first when it resumes.
//!
//! **Write**: `send` queues plaintext as on any stream; the flush hands it to rustls, which
//! encrypts into its own buffer (bounded by `set_buffer_limit`, so what a slow peer makes us
//! hold stays `max_output` plus one buffer), and writes the records. Records of rustls's own
//! (handshake messages, alerts, `close_notify`) mark the stream as having output.
//!
//! **Life**: an accepted connection's `on_connect` comes once the handshake completes,
//! within the handshake deadline; a graceful close sends `close_notify` after the queue has
//! drained, before the socket's write side is shut down.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::output::MAX_IOVECS;
use super::{Flushed, Life, State};
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::{slot_mut, Registry};
use crate::selector::Ready;
use crate::sys;
use crate::timer::TimerPurpose;
use crate::{CloseReason, Deadline, Error, Reactor, Token};

/// rustls's buffers, each way: what a peer can make it hold beyond our queues.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// One stream's TLS session.
pub(crate) struct TlsSession {
    pub(crate) conn: rustls::Connection,
    /// `on_connect` waits for the handshake.
    handshaking: bool,
    close_notify_sent: bool,
    /// Ciphertext read from the socket but not yet taken by rustls when the handler paused
    /// reading part way through a read (at most one read's worth; empty, unallocated,
    /// otherwise). It is fed first when reading resumes.
    unfed: Vec<u8>,
}

/// Every TLS stream's session, at its slot's index (no hashing: several lookups happen per
/// message), with the token it belongs to, so a reused slot never finds another's.
#[derive(Default)]
pub(crate) struct TlsSessions {
    by_slot: Vec<Option<(Token, Box<TlsSession>)>>,
}

impl TlsSessions {
    pub(crate) fn get(&self, token: Token) -> Option<&TlsSession> {
        match self.by_slot.get(token.index()) {
            Some(Some((owner, session))) if *owner == token => Some(session),
            _ => None,
        }
    }

    fn get_mut(&mut self, token: Token) -> Option<&mut TlsSession> {
        match self.by_slot.get_mut(token.index()) {
            Some(Some((owner, session))) if *owner == token => Some(session),
            _ => None,
        }
    }

    fn insert(&mut self, token: Token, session: TlsSession) {
        let index = token.index();
        if self.by_slot.len() <= index {
            self.by_slot.resize_with(index + 1, || None);
        }
        self.by_slot[index] = Some((token, Box::new(session)));
    }

    /// The stream is gone: so is its session.
    pub(crate) fn forget(&mut self, token: Token) {
        if self.get(token).is_some() {
            self.by_slot[token.index()] = None;
        }
    }
}

/// A socket as rustls writes to it: `sendmsg(MSG_NOSIGNAL)`.
struct SocketWriter<'a>(BorrowedFd<'a>);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::fd::send_vectored(self.0, &[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::fd::send_vectored(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Registry {
    /// Starts the server side of TLS on a newly accepted stream; its `on_connect` waits for
    /// the handshake.
    pub(crate) fn start_tls_server(
        &mut self,
        token: Token,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<(), Error> {
        let conn = rustls::ServerConnection::new(config).map_err(Error::Tls)?;
        self.start_tls(token, rustls::Connection::Server(conn))
    }

    /// Starts the client side of TLS on a stream whose connect is under way or done.
    pub(crate) fn start_tls_client(
        &mut self,
        token: Token,
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<(), Error> {
        let conn = rustls::ClientConnection::new(config, name).map_err(Error::Tls)?;
        self.start_tls(token, rustls::Connection::Client(conn))?;
        // The ClientHello is ready: it goes once the connect completes.
        if let Some(State::Stream(stream)) = self.entry_mut(token).map(|e| &mut e.state) {
            stream.extras.set_tls_pending(true);
        }
        self.mark_dirty(token);
        Ok(())
    }

    fn start_tls(&mut self, token: Token, mut conn: rustls::Connection) -> Result<(), Error> {
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        let entry = self.live_mut(token)?;
        let handshake_timeout = entry.options.handshake_timeout;
        let State::Stream(stream) = &mut entry.state else {
            return Err(Error::WrongKind {
                operation: "TLS",
                kind: entry.kind(),
            });
        };
        stream.extras.set_tls(true);
        let session = TlsSession {
            conn,
            handshaking: true,
            close_notify_sent: false,
            unfed: Vec::new(),
        };
        self.tls.insert(token, session);
        if let Some(limit) = handshake_timeout {
            self.own_timer(token, TimerPurpose::Handshake, limit, None);
        }
        Ok(())
    }

    /// The handshake deadline passed: a handshake still under way fails.
    pub(crate) fn handshake_expired(&mut self, token: Token) {
        if self.tls.get(token).is_some_and(|s| s.handshaking) {
            self.fail_with(
                token,
                Error::Timeout(Deadline::Handshake),
                CloseReason::Timeout(Deadline::Handshake),
            );
        }
    }

    /// The flush of a TLS stream: queued plaintext into rustls, rustls's records onto the
    /// socket, until the queue is empty or the socket full. Plaintext waits while the
    /// handshake is under way.
    pub(crate) fn write_tls(&mut self, token: Token) -> Flushed {
        let Registry {
            entries,
            buffers,
            id,
            clock,
            tls,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return Flushed::Idle;
        };
        let (Some(fd), State::Stream(stream)) = (entry.fd.as_ref(), &mut entry.state) else {
            return Flushed::Idle;
        };
        let Some(session) = tls.get_mut(token) else {
            return Flushed::Idle;
        };
        // Only a drain of the handler's own bytes is an `on_sent`; records of rustls's own
        // (a handshake message) are not, except the close_notify a closing handle waits on.
        let plaintext =
            !stream.output.is_empty() || stream.extras.tls_plaintext() || entry.life != Life::Open;
        loop {
            let mut took = 0;
            if !session.handshaking && !session.close_notify_sent && !stream.output.is_empty() {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = stream.output.io_slices(&mut slices);
                took = match session.conn.writer().write_vectored(&slices[..n]) {
                    Ok(took) => took,
                    Err(e) => return Flushed::Failed(e),
                };
                stream.output.consume(took, buffers, false);
            }
            let mut wrote = false;
            while session.conn.wants_write() {
                match session.conn.write_tls(&mut SocketWriter(fd.as_fd())) {
                    Ok(_) => wrote = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        entry.ready.remove(Ready::WRITABLE);
                        stream.extras.set_tls_pending(true);
                        return Flushed::Partial;
                    }
                    Err(e) => return Flushed::Failed(e),
                }
            }
            stream.extras.set_tls_pending(false);
            if wrote || took > 0 {
                (stream.active_at, stream.sent_at) = (clock.now(), clock.now());
                stream.wrote_any = true;
            }
            if stream.output.is_empty() {
                stream.extras.set_tls_plaintext(false);
                return if plaintext {
                    Flushed::Drained
                } else {
                    Flushed::Idle
                };
            }
            if session.handshaking || took == 0 {
                return Flushed::Partial;
            }
        }
    }

    /// `send` on a TLS stream with nothing queued and the handshake done: rustls encrypts
    /// `data` at once into its own (bounded) buffer, saving the copy through the queue.
    /// Returns how much it took (0 where the bytes must queue: a handle not open, bytes
    /// queued before, a handshake under way, rustls's buffer full); the flush writes the
    /// records.
    pub(crate) fn encrypt_now(&mut self, token: Token, data: &[u8]) -> usize {
        let Registry {
            entries,
            id,
            clock,
            tls,
            dirty,
            ..
        } = self;
        let Some(entry) = slot_mut(entries, *id, token) else {
            return 0;
        };
        let open = entry.is_live() && entry.writable_end && entry.connected();
        let State::Stream(stream) = &mut entry.state else {
            return 0;
        };
        if !open || !stream.output.is_empty() {
            return 0;
        }
        let Some(session) = tls.get_mut(token) else {
            return 0;
        };
        if session.handshaking || session.close_notify_sent {
            return 0;
        }
        let took = session.conn.writer().write(data).unwrap_or(0);
        if took > 0 {
            if !stream.extras.tls_plaintext() && !stream.extras.tls_pending() {
                stream.sent_at = clock.now();
            }
            stream.extras.set_tls_plaintext(true);
            stream.extras.set_tls_pending(true);
            if !entry.in_dirty {
                entry.in_dirty = true;
                dirty.push(token);
            }
        }
        took
    }

    /// A graceful close of a TLS stream has drained its queue: `close_notify` goes first.
    /// Returns whether it is written (if not, the flush that writes it calls again).
    pub(crate) fn tls_close_notify(&mut self, token: Token) -> bool {
        let Some(session) = self.tls.get_mut(token) else {
            return true;
        };
        if session.close_notify_sent {
            return !session.conn.wants_write();
        }
        session.close_notify_sent = true;
        session.conn.send_close_notify();
        if let Some(State::Stream(stream)) = self.entry_mut(token).map(|e| &mut e.state) {
            stream.extras.set_tls_pending(true);
        }
        match self.write_tls(token) {
            Flushed::Drained | Flushed::Idle => true,
            Flushed::Partial => false,
            Flushed::Failed(_) => true, // the peer is gone: nothing to wait for
        }
    }
}

impl Reactor {
    /// One visit of a readable TLS stream: plaintext left from before, then one read of
    /// ciphertext, fed to rustls and delivered as it decrypts.
    pub(crate) fn read_tls(&mut self, token: Token) {
        // Plaintext rustls held while reading was paused goes first, then the ciphertext
        // it had not taken yet.
        if !self.deliver_plaintext(token) {
            return;
        }
        let unfed = match self.registry.tls.get_mut(token) {
            Some(session) => std::mem::take(&mut session.unfed),
            None => return,
        };
        if !unfed.is_empty() && !self.feed_tls(token, &unfed) {
            return;
        }
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let size = entry.options.read_size;
        if self.tls_raw.len() < size {
            self.tls_raw.resize(size, 0);
        }
        let Some(fd) = entry.fd.as_ref() else {
            return;
        };
        let n = match sys::fd::read(fd.as_fd(), &mut self.tls_raw[..size]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.ready.remove(Ready::READABLE);
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.registry.schedule(token);
                return;
            }
            Err(e) => {
                self.registry.fail(token, Error::Io(e));
                return;
            }
        };
        let now = self.registry.clock.now();
        if let Some(State::Stream(stream)) = self.registry.entry_mut(token).map(|e| &mut e.state) {
            stream.active_at = now;
        }
        // Out of the reactor while rustls takes it (delivery borrows the reactor).
        let raw = std::mem::take(&mut self.tls_raw);
        let fed = self.feed_tls(token, &raw[..n]);
        self.tls_raw = raw;
        if !fed {
            return;
        }
        if n == 0 {
            // End of stream (with or without close_notify): as a plain stream's.
            self.end_tls_stream(token);
        } else if n == size {
            self.registry.schedule(token); // more may wait
        } else if let Some(entry) = self.registry.entry_mut(token) {
            entry.ready.remove(Ready::READABLE);
        }
    }

    /// Feeds one read of ciphertext to rustls, delivering what it decrypts; false if the
    /// stream is done for this visit. What rustls has not taken when the handler pauses is
    /// kept in the session for the resume.
    fn feed_tls(&mut self, token: Token, mut offered: &[u8]) -> bool {
        loop {
            let Some(session) = self.registry.tls.get_mut(token) else {
                return false;
            };
            if let Err(e) = session.conn.read_tls(&mut offered) {
                self.registry.fail(token, Error::Io(e));
                return false;
            }
            if let Err(e) = session.conn.process_new_packets() {
                // rustls queued an alert for the peer: send it, then close.
                self.registry.mark_dirty(token);
                if let Some(State::Stream(stream)) =
                    self.registry.entry_mut(token).map(|e| &mut e.state)
                {
                    stream.extras.set_tls_pending(true);
                }
                let _ = self.registry.write_tls(token);
                self.registry.fail(token, Error::Tls(e));
                return false;
            }
            let finished = session.handshaking && !session.conn.is_handshaking();
            if session.conn.wants_write() {
                if let Some(State::Stream(stream)) =
                    self.registry.entry_mut(token).map(|e| &mut e.state)
                {
                    stream.extras.set_tls_pending(true);
                }
                self.registry.mark_dirty(token);
            }
            if finished {
                self.handshake_done(token);
            }
            if !self.deliver_plaintext(token) {
                // Paused (by the handler or the high watermark) rather than closing or gone.
                let held = self
                    .registry
                    .entry(token)
                    .is_some_and(|e| e.life == Life::Open);
                if !offered.is_empty() && held {
                    if let Some(session) = self.registry.tls.get_mut(token) {
                        session.unfed.extend_from_slice(offered);
                    }
                }
                return false;
            }
            if offered.is_empty() {
                return true;
            }
        }
    }

    /// The handshake completed: `on_connect`, and what was queued meanwhile can go.
    fn handshake_done(&mut self, token: Token) {
        if let Some(session) = self.registry.tls.get_mut(token) {
            session.handshaking = false;
        }
        self.registry.cancel_purpose(token, TimerPurpose::Handshake);
        self.registry.mark_dirty(token);
        if self.registry.is_live(token) {
            dispatch(&mut self.registry, token, |h, ctx| h.on_connect(ctx));
        }
    }

    /// Reads the plaintext rustls has into the shared read buffer and delivers it. Returns
    /// false if the stream is done for this visit (paused, closing, gone, ended).
    fn deliver_plaintext(&mut self, token: Token) -> bool {
        loop {
            let Some(entry) = self.registry.entry(token) else {
                return false;
            };
            if !entry.wants_read() {
                return false;
            }
            let size = entry.options.read_size;
            if self.read_buf.len() < size {
                self.read_buf.resize(size, 0);
            }
            let Some(session) = self.registry.tls.get_mut(token) else {
                return false;
            };
            match session.conn.reader().read(&mut self.read_buf[..size]) {
                Ok(0) => {
                    // close_notify: the peer's end of stream.
                    self.end_tls_stream(token);
                    return false;
                }
                Ok(n) => self.deliver_read(token, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                // The TCP stream ended without close_notify: an end of stream all the same
                // (what arrived was authenticated; a truncation attack can only cut).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    log::debug!("{token}: TLS stream ended without close_notify");
                    self.end_tls_stream(token);
                    return false;
                }
                Err(e) => {
                    self.registry.fail(token, Error::Io(e));
                    return false;
                }
            }
        }
    }

    fn end_tls_stream(&mut self, token: Token) {
        if let Some(entry) = self.registry.entry_mut(token) {
            if entry.life != Life::Open {
                return;
            }
            entry.ready.remove(Ready::READABLE);
            entry.ready.remove(Ready::READ_CLOSED);
        }
        self.deliver_eof(token);
        self.registry.close_with(token, CloseReason::PeerClosed);
    }
}
