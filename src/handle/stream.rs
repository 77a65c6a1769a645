//! Stream handles (TCP and Unix stream connections, pipes, terminals), read path and write
//! path in one place.
//!
//! **Read**: the turn calls [`Reactor::drive_stream`] for a ready stream. It completes a
//! pending connect (`on_connect`), reads once into the reactor's shared buffer
//! ([`Reactor::read_stream`]) and hands the bytes over ([`Reactor::deliver_read`]): as they
//! came, or cut into records by the handle's decoder. Records that lie wholly inside one
//! read go to `on_read` as slices of the shared buffer (no copy); only an incomplete tail
//! is copied into the handle's input buffer, and the next read is appended to it. The
//! decoder is looked up again after every record, so a handler that changes its framing
//! inside `on_read` has the rest of the same read cut by the new rule. Records left over
//! when the handler pauses reading or closes wait in the input buffer (and reach
//! `on_read_last` at a close). During a graceful close the same visit reads and discards
//! instead ([`Reactor::discard_input`]) until the peer's end of stream.
//!
//! **Write**: `send` queues into the stream's output queue (admitted by the registry, which
//! enforces the output bound); at the end of the turn, or mid-burst past [`EARLY_FLUSH`],
//! the reactor's flush calls [`Registry::write_stream`]: one vectored write per 64 buffers.
//!
//! The manual modes' operations (ManualRead's `read`, ManualWrite's `write` and
//! `watch_writable`) and `set_framing` are here too, as registry operations a callback may
//! call.

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::rc::Rc;

use socket2::SockRef;

use super::fd_passing::PassedFds;
use super::output::MAX_IOVECS;
use super::{Flushed, Life, State};
use crate::framing::{Frame, FrameError, Framing};
use crate::reactor::dispatch::{dispatch, dispatch_taken};
use crate::reactor::registry::{slot_mut, Deferred, Registry};
use crate::selector::{Ready, Trigger};
use crate::sys;
use crate::{CloseReason, Context, Error, Handler, Reactor, Token};

/// Reads that throw input away per visit during a graceful close.
const DISCARDS_PER_VISIT: usize = 8;
/// Output a read burst may build up before it is written mid-burst rather than at the end of
/// the turn: large enough that small replies still coalesce into one write, small enough
/// that bulk data is written while it is still in the CPU cache.
pub(crate) const EARLY_FLUSH: usize = 64 * 1024;
/// Read size used to throw away input during a graceful close.
const DISCARD_SIZE: usize = 16 * 1024;

/// What the next step of delivery is.
enum Next {
    /// Hand over `data[range]` as a record, consuming `consumed` bytes.
    Record(Frame),
    /// Hand over everything as it is (no framing).
    Raw,
    /// Keep the rest for later.
    Wait,
    Failed(FrameError),
}

/// Whether `framing` can ever make a record within its limit (its own, or the handle's).
pub(crate) fn fits(framing: &Framing, options: &crate::Options) -> Result<(), FrameError> {
    let decoder = &framing.decoder;
    let limit = match decoder.max_size().unwrap_or(options.max_size) {
        0 => usize::MAX,
        n => n,
    };
    let smallest = decoder.smallest_record();
    if smallest > limit {
        return Err(FrameError::TooLarge {
            size: smallest as u64,
            limit,
        });
    }
    Ok(())
}

/// Whether the stream runs TLS.
fn tls_of(entry: &super::Entry) -> bool {
    #[cfg(feature = "tls")]
    if let State::Stream(stream) = &entry.state {
        return stream.extras.tls();
    }
    let _ = entry;
    false
}

/// How many times the handle's framing was set (see `Stream::framings`).
fn framings(registry: &Registry, token: Token) -> u8 {
    match registry.entry(token).map(|e| &e.state) {
        Some(State::Stream(stream)) => stream.framings,
        _ => 0,
    }
}

/// Asks the handle's decoder about `data`: the shared read buffer (`BUFFERED` false) or the
/// handle's input buffer. The handle's `max_size` bounds what is buffered, so a record
/// lying whole in the read buffer is not refused for its size by it; a rule's own limit
/// bounds every record of the rule.
fn next<const BUFFERED: bool>(registry: &mut Registry, token: Token, data: &[u8]) -> Next {
    let Some(entry) = registry.entry_mut(token).filter(|e| e.wants_read()) else {
        return Next::Wait;
    };
    let limit = match entry.options.max_size {
        0 => usize::MAX,
        n => n,
    };
    let State::Stream(stream) = &mut entry.state else {
        return Next::Wait;
    };
    let Some(decoder) = stream.decoder.as_mut() else {
        return Next::Raw;
    };
    // Told the handle's limit only where a record would have to be buffered: a rule that
    // refuses an announced size at its header does so once the record is being buffered.
    // A rule with its own limit (`Framing::max_size`) enforces that itself, and the
    // handle's bound gives way to it: it is asked only where that bound would refuse.
    let told = if BUFFERED { limit } else { usize::MAX };
    match decoder.decode(data, told) {
        Ok(Some(frame)) => match frame.check(data.len()) {
            Err(e) => Next::Failed(e),
            Ok(())
                if BUFFERED
                    && frame.consumed > limit
                    && !frame.is_skip()
                    && !own_limit_allows(&**decoder, frame.consumed) =>
            {
                Next::Failed(FrameError::TooLarge {
                    size: frame.consumed as u64,
                    limit,
                })
            }
            Ok(()) => Next::Record(frame),
        },
        Ok(None) if data.len() > limit && !own_limit_allows(&**decoder, data.len()) => {
            Next::Failed(FrameError::TooLarge {
                size: data.len() as u64 + 1,
                limit,
            })
        }
        Ok(None) => Next::Wait,
        Err(e) => Next::Failed(e),
    }
}

/// Whether the rule has its own limit, and `size` is within it (cold: asked only where the
/// handle's bound would refuse).
#[cold]
fn own_limit_allows(decoder: &dyn crate::framing::Decoder, size: usize) -> bool {
    decoder.max_size().is_some_and(|own| size <= own)
}

impl Reactor {
    /// One visit of a ready stream: connect completion, errors, writing, then reading (or
    /// discarding, or ManualRead's `on_readable`). The turn goes straight to
    /// [`Reactor::read_stream`] for a visit that only reads (`Entry::only_reads`).
    pub(crate) fn drive_stream(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let ready = entry.ready;
        if entry.life == Life::Dying {
            return;
        }
        if !entry.connected() {
            if !(ready.writable() || ready.error() || ready.read_closed())
                || !self.finish_connect(token)
            {
                return;
            }
        } else if ready.error() && entry.transport.is_socket() {
            entry.ready.remove(Ready::ERROR);
            let error = entry.fd.as_ref().map(|fd| SockRef::from(fd).take_error());
            if let Some(Ok(Some(e)) | Err(e)) = error {
                self.registry.fail(token, Error::Io(e));
                return;
            }
        } else if (ready.error() || ready.read_closed())
            && !entry.readable_end
            && !entry.has_output()
        {
            // A write-only pipe whose reader has gone (with output queued, the write that
            // follows fails with EPIPE instead, and that is reported).
            self.registry.close_with(token, CloseReason::PeerClosed);
            return;
        }
        // Writable edges come with most reads (ACKs free send-buffer space): only a queue
        // that waits needs the flush.
        if ready.writable() && self.registry.entry(token).is_some_and(|e| e.has_output()) {
            self.flush(token);
        }
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let live = entry.is_live();
        if let State::Stream(stream) = &mut entry.state {
            if stream.watch_writable && ready.writable() && live {
                stream.watch_writable = false;
                self.registry.update_interest(token);
                dispatch(&mut self.registry, token, |h, ctx| h.on_writable(ctx));
            }
        }
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        let readable = ready.readable() || ready.read_closed();
        if entry.discards_input() && readable {
            self.discard_input(token);
        } else if entry.wants_read() && entry.options.manual_read {
            if readable {
                dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
            }
        } else if entry.wants_read() {
            // Records held back by a pause or a framing change go first.
            if !entry.pending_input().is_empty() {
                self.deliver_pending(token);
            }
            if readable {
                self.read_stream(token);
            }
        }
    }

    /// Completes a non-blocking connect; returns whether the handle is now open.
    fn finish_connect(&mut self, token: Token) -> bool {
        let now = self.registry.clock.now();
        let Some(entry) = self.registry.entry_mut(token) else {
            return false;
        };
        let outcome = match entry.fd.as_ref() {
            Some(fd) => SockRef::from(fd).take_error(),
            None => Ok(None),
        };
        match outcome {
            Ok(None) => {
                if let State::Stream(stream) = &mut entry.state {
                    stream.connected = true;
                    stream.active_at = now;
                }
                entry.ready.remove(Ready::ERROR);
                // Closed before the connect completed: flush and close, but no on_connect.
                let open = entry.life == Life::Open;
                // Over TLS, on_connect waits for the handshake, whose first message can go now.
                let tls = tls_of(entry);
                self.registry.update_interest(token);
                log::trace!("{token}: connected");
                if tls {
                    #[cfg(feature = "tls")]
                    self.registry.mark_dirty(token);
                } else if open {
                    dispatch(&mut self.registry, token, |h, ctx| h.on_connect(ctx));
                }
                true
            }
            Ok(Some(e)) | Err(e) => {
                self.registry.fail(token, Error::Io(e));
                false
            }
        }
    }

    /// Reads once and delivers it. A handle with more to read goes to the back of the ready
    /// list, so ready handles take turns read by read (the reactor runs a bounded number of
    /// rounds per turn).
    pub(crate) fn read_stream(&mut self, token: Token) {
        let now = self.registry.clock.now();
        let Some(entry) = slot_mut(&mut self.registry.entries, self.registry.id, token) else {
            return;
        };
        let read = read_entry(entry, &mut self.read_buf, &mut self.passed, now);
        self.finish_read(token, read);
    }

    /// An unframed read with nothing buffered: the `n` bytes go to the handler as they
    /// came, and its reply is written in the same dispatch (`write_reply`). The turn's
    /// event loop calls it straight for a [`Read::Direct`], its parts in registers rather
    /// than as a [`Read`] in memory; [`Reactor::finish_read`] takes every other read.
    #[inline(never)]
    pub(crate) fn read_direct(
        &mut self,
        token: Token,
        n: usize,
        drained: bool,
        handler: Box<dyn Handler>,
    ) {
        let data = &self.read_buf[..n];
        dispatch_taken(&mut self.registry, token, handler, |h, ctx| {
            h.on_read(ctx, data);
            write_reply(h, ctx);
        });
        self.after_read(token, drained);
    }

    /// The rest of a visit after [`read_entry`] (which had the slot in hand): the bytes go
    /// to the handler, the end of stream closes, an error fails the handle.
    #[inline(never)]
    pub(crate) fn finish_read(&mut self, token: Token, read: Read) {
        match read {
            Read::Direct {
                n,
                drained,
                handler,
            } => self.read_direct(token, n, drained, handler),
            Read::Deliver { n, drained, fds } => {
                if fds {
                    self.deliver_fds(token);
                }
                self.deliver_read(token, n);
                self.after_read(token, drained);
            }
            Read::End => {
                self.deliver_eof(token);
                if let Some(State::Stream(stream)) =
                    self.registry.entry_mut(token).map(|e| &mut e.state)
                {
                    stream.eof = true;
                }
                self.registry.close_with(token, CloseReason::PeerClosed);
            }
            #[cfg(feature = "tls")]
            Read::Tls => self.read_tls(token),
            Read::Nothing => {}
            Read::Interrupted => self.registry.schedule(token),
            Read::Failed(e) => self.registry.fail(token, Error::Io(e)),
        }
    }

    /// After a read's bytes were delivered: a big queue is written now, and a handle with
    /// more to read goes to the back of the ready list.
    fn after_read(&mut self, token: Token, drained: bool) {
        // A queue that has grown past EARLY_FLUSH (the registry noticed it as it took the
        // bytes) is written now, while the data is still in the cache.
        if std::mem::take(&mut self.registry.early_flush)
            && self
                .registry
                .entry(token)
                .is_some_and(|e| e.buflen() >= EARLY_FLUSH)
        {
            self.flush(token);
        }
        if !drained {
            self.registry.schedule(token);
        }
    }

    /// During a graceful close: reads and throws away what the peer still sends, until its
    /// end of stream, which completes a lingering close.
    fn discard_input(&mut self, token: Token) {
        for _ in 0..DISCARDS_PER_VISIT {
            let Some(entry) = self
                .registry
                .entry_mut(token)
                .filter(|e| e.discards_input())
            else {
                return;
            };
            let (Some(fd), State::Stream(stream)) = (entry.fd.as_ref(), &mut entry.state) else {
                return;
            };
            let read_size = self.read_buf.len().max(DISCARD_SIZE);
            if self.read_buf.len() < read_size {
                self.read_buf.resize(read_size, 0);
            }
            match sys::fd::read(fd.as_fd(), &mut self.read_buf[..read_size]) {
                Ok(0) => {
                    stream.eof = true;
                    entry.ready.remove(Ready::READABLE);
                    if let Life::Lingering { reason } = entry.life {
                        self.registry.kill(token, reason);
                    }
                    return;
                }
                Ok(n) => {
                    stream.discarded = stream.discarded.saturating_add(n as u32);
                    if stream.discarded as usize > entry.options.discard_limit {
                        log::debug!(
                            "{token}: discarded {} bytes while closing",
                            stream.discarded
                        );
                        let reason = match entry.life {
                            // Everything was written; the peer just keeps sending.
                            Life::Lingering { reason } => reason,
                            _ => CloseReason::DiscardLimit,
                        };
                        self.registry.kill(token, reason);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    entry.ready.remove(Ready::READABLE);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    match entry.life {
                        // Everything was written before the peer went away.
                        Life::Lingering { reason } => self.registry.kill(token, reason),
                        _ => self.registry.fail(token, Error::Io(e)),
                    }
                    return;
                }
            }
        }
        self.registry.schedule(token);
    }

    /// Delivers `self.read_buf[..n]`, just read for `token`.
    pub(crate) fn deliver_read(&mut self, token: Token, n: usize) {
        let Some(State::Stream(stream)) = self.registry.entry_mut(token).map(|e| &mut e.state)
        else {
            return;
        };
        if stream.decoder.is_none() && stream.input.is_empty() {
            let data = &self.read_buf[..n];
            dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, data));
            return;
        }
        if !stream.input.is_empty() {
            // A record's start is waiting: the new bytes belong after it.
            self.keep_input(token, n, 0);
            self.deliver_pending(token);
            return;
        }
        // Every record of this read goes to the handler in one dispatch (it stays out of
        // its slot for all of them), then its reply is written (`write_reply`).
        let Some(handler) = self
            .registry
            .entry_mut(token)
            .and_then(|e| e.handler.take())
        else {
            return;
        };
        let data = &self.read_buf[..n];
        let (mut offset, mut failed) = (0, None);
        dispatch_taken(&mut self.registry, token, handler, |h, ctx| {
            failed = deliver_records(h, ctx, data, &mut offset);
            write_reply(h, ctx);
        });
        if offset < n {
            self.keep_input(token, n, offset);
        }
        if let Some(e) = failed {
            // For on_read_last, as EventMux does after an overrun.
            self.registry.fail_frame(token, e);
            return;
        }
        if offset < n {
            // Whatever stopped the loop (a partial record, a pause, an error) is settled
            // there.
            self.deliver_pending(token);
        }
    }

    /// Appends `self.read_buf[from..n]` to the handle's input buffer.
    fn keep_input(&mut self, token: Token, n: usize, from: usize) {
        let Registry {
            entries,
            buffers,
            id,
            clock,
            ..
        } = &mut self.registry;
        if let Some(State::Stream(stream)) = slot_mut(entries, *id, token).map(|e| &mut e.state) {
            if stream.input.is_empty() && from < n {
                stream.record_at = clock.now();
            }
            stream.input.extend(&self.read_buf[from..n], buffers);
        }
    }

    /// Delivers the records waiting in the handle's input buffer.
    fn deliver_pending(&mut self, token: Token) {
        loop {
            let Some(State::Stream(stream)) = self.registry.entry_mut(token).map(|e| &mut e.state)
            else {
                return;
            };
            if stream.input.is_empty() {
                return;
            }
            // Out of the entry while its handler runs; a handler cannot add input.
            let mut input = std::mem::take(&mut stream.input);
            let step = next::<true>(&mut self.registry, token, input.as_slice());
            let keep_going = match step {
                Next::Record(frame) if frame.is_skip() => {
                    input.consume(frame.consumed, &mut self.registry.buffers);
                    true
                }
                Next::Record(frame) if frame.consumed == 0 => {
                    // An empty record that consumed nothing goes on only under a new rule.
                    let before = framings(&self.registry, token);
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, &[]));
                    framings(&self.registry, token) != before
                }
                Next::Record(frame) => {
                    let payload = &input.as_slice()[frame.payload];
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, payload));
                    input.consume(frame.consumed, &mut self.registry.buffers);
                    true
                }
                Next::Raw => {
                    let data = input.as_slice();
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, data));
                    input.clear(&mut self.registry.buffers);
                    false
                }
                Next::Wait => false,
                Next::Failed(e) => {
                    self.registry.fail_frame(token, e);
                    false
                }
            };
            let now = self.registry.clock.now();
            if let Some(State::Stream(stream)) =
                self.registry.entry_mut(token).map(|e| &mut e.state)
            {
                if keep_going {
                    // The next record starts now, as far as its deadline is concerned.
                    stream.record_at = now;
                }
                stream.input = input;
            }
            if !keep_going {
                return;
            }
        }
    }

    /// The stream ended: the rule may make a last record of what is left (Last, an HTTP
    /// response without length). Anything still left goes to `on_read_last` at the close.
    pub(crate) fn deliver_eof(&mut self, token: Token) {
        self.deliver_pending(token);
        let Some(entry) = self.registry.entry_mut(token).filter(|e| e.wants_read()) else {
            return;
        };
        let State::Stream(stream) = &mut entry.state else {
            return;
        };
        let mut input = std::mem::take(&mut stream.input);
        let last = stream
            .decoder
            .as_mut()
            .and_then(|d| d.decode_eof(input.as_slice()))
            .filter(|frame| frame.check(input.len()).is_ok());
        if let Some(frame) = last {
            let payload = &input.as_slice()[frame.payload];
            dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, payload));
            input.consume(frame.consumed, &mut self.registry.buffers);
        }
        if let Some(State::Stream(stream)) = self.registry.entry_mut(token).map(|e| &mut e.state) {
            stream.input = input;
        }
    }
}

impl Registry {
    /// Writes a stream's queue: one vectored write (`sendmsg(MSG_NOSIGNAL)` on sockets,
    /// `writev` on pipes) per [`MAX_IOVECS`] buffers. A write that takes everything it was
    /// offered proves nothing about the socket's room, so while more is queued the next
    /// write follows at once; only a short write (or `EAGAIN`) clears writability, and an
    /// EPOLLOUT edge then resumes. A drained queue gives its buffers back to the pool.
    pub(crate) fn write_stream(&mut self, token: Token) -> Flushed {
        let keep = self.keeps_drained_buffers();
        let Registry {
            entries,
            buffers,
            id,
            clock,
            ..
        } = self;
        match slot_mut(entries, *id, token) {
            Some(entry) => write_stream_of(entry, buffers, clock.now(), keep),
            None => Flushed::Idle,
        }
    }

    /// A handle's input broke its framing or its bound: no more input is delivered; the
    /// handler hears of it in `on_error` while it can still send (a server answers `400 Bad
    /// Request` or `-ERR Protocol error` there), then the handle closes gracefully, so that
    /// answer is flushed. Its buffered input goes to `on_read_last`.
    fn fail_frame(&mut self, token: Token, error: FrameError) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        // Read nothing more while the error and the close are on their way.
        entry.paused = true;
        let (error, reason) = match error {
            FrameError::TooLarge { size, limit } => (
                Error::InputLimit {
                    limit,
                    needed: size,
                },
                CloseReason::InputLimit,
            ),
            other => (Error::Frame(other), CloseReason::BadFrame),
        };
        log::debug!("{token}: {error}");
        self.report(token, error);
        self.deferred.push_back(Deferred::Close(token, reason));
    }

    /// Replaces a handle's framing (`None`: none). Bytes already buffered are cut by the new
    /// rule; on a listener it changes the template for connections accepted from now on.
    pub(crate) fn set_framing(
        &mut self,
        token: Token,
        framing: Option<Framing>,
    ) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        let kind = entry.kind();
        if let Some(framing) = &framing {
            fits(framing, &entry.options).map_err(Error::Frame)?;
        }
        match &mut entry.state {
            State::Stream(stream) => {
                stream.decoder = framing.map(|f| f.decoder);
                stream.framings = stream.framings.wrapping_add(1);
                if !stream.input.is_empty() {
                    self.schedule(token);
                }
            }
            State::Listener(_) => {
                // Connections accepted so far keep sharing the old options.
                let options = Rc::make_mut(&mut entry.options);
                *options = match framing {
                    Some(f) => std::mem::take(options).framing(f),
                    None => std::mem::take(options).without_framing(),
                };
            }
            _ => {
                return Err(Error::WrongKind {
                    operation: "set_framing",
                    kind,
                })
            }
        }
        Ok(())
    }

    /// Throws the next `bytes` bytes of the stream away as they arrive, then goes on with
    /// the current rule; see [`Context::skip`](crate::Context::skip).
    pub(crate) fn skip(&mut self, token: Token, bytes: u64) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        let kind = entry.kind();
        let State::Stream(stream) = &mut entry.state else {
            return Err(Error::WrongKind {
                operation: "skip",
                kind,
            });
        };
        let then = match stream.decoder.take() {
            Some(decoder) => Framing { decoder },
            // Unframed: skip, then hand everything over as it comes.
            None => Framing::custom(crate::framing::Raw),
        };
        stream.decoder = Some(Framing::skip(bytes, then).decoder);
        stream.framings = stream.framings.wrapping_add(1);
        if !stream.input.is_empty() {
            self.schedule(token);
        }
        Ok(())
    }

    /// ManualWrite: asks for one `on_writable`.
    pub(crate) fn watch_writable(&mut self, token: Token) -> Result<(), Error> {
        let entry = self.live_mut(token)?;
        let kind = entry.kind();
        match &mut entry.state {
            State::Stream(stream) if entry.options.manual_write => {
                stream.watch_writable = true;
            }
            _ => {
                return Err(Error::WrongKind {
                    operation: "watch_writable (needs ManualWrite on a stream)",
                    kind,
                })
            }
        }
        self.update_interest(token);
        Ok(())
    }

    /// ManualRead: reads once from the descriptor.
    pub(crate) fn read(&mut self, token: Token, buf: &mut [u8]) -> Result<usize, Error> {
        Ok(sys::fd::read(self.fd_of(token)?, buf)?)
    }

    /// ManualWrite: writes once to the descriptor, bypassing the queue.
    pub(crate) fn write(&mut self, token: Token, data: &[u8]) -> Result<usize, Error> {
        let socket = self.entry(token).is_some_and(|e| e.transport.is_socket());
        Ok(write_once(
            self.fd_of(token)?,
            &[IoSlice::new(data)],
            socket,
        )?)
    }
}

/// Cuts `data[*offset..]` into records by the handle's decoder and hands each to `handler`
/// (out of its slot, for the whole read), advancing `*offset` past each before its
/// callback (a panic in one leaves the rest for `on_read_last`). The decoder is looked up
/// again for every record, so a rule changed in `on_read` cuts the rest; a pause or a
/// close stops the loop. Returns the error of a record the rule refused.
fn deliver_records(
    handler: &mut dyn Handler,
    ctx: &mut Context<'_>,
    data: &[u8],
    offset: &mut usize,
) -> Option<FrameError> {
    let token = ctx.token();
    while *offset < data.len() {
        let at = *offset;
        match next::<false>(ctx.registry_mut(), token, &data[at..]) {
            Next::Record(frame) if frame.is_skip() => *offset += frame.consumed,
            Next::Record(frame) if frame.consumed == 0 => {
                // An empty record that consumed nothing: if the rule is the same after it,
                // asking again would never end, so the rest waits for a new rule.
                let before = framings(ctx.registry_mut(), token);
                handler.on_read(ctx, &[]);
                if framings(ctx.registry_mut(), token) == before {
                    break;
                }
            }
            Next::Record(frame) => {
                *offset += frame.consumed;
                handler.on_read(ctx, &data[at + frame.payload.start..at + frame.payload.end]);
            }
            Next::Raw => {
                *offset = data.len();
                handler.on_read(ctx, &data[at..]);
            }
            Next::Wait => break,
            Next::Failed(e) => return Some(e),
        }
    }
    None
}

/// What one read of a stream came to ([`read_entry`]), for [`Reactor::finish_read`].
pub(crate) enum Read {
    /// Unframed bytes in the reactor's read buffer, for the handler (taken out of the slot).
    Direct {
        n: usize,
        /// The socket is empty now (a short read).
        drained: bool,
        handler: Box<dyn Handler>,
    },
    /// Bytes for `deliver_read`: a decoder cuts them, or input is buffered, or descriptors
    /// came with them (`fds`), or the handler is away.
    Deliver {
        n: usize,
        drained: bool,
        fds: bool,
    },
    /// The peer's end of stream.
    End,
    /// A TLS stream: its session reads.
    #[cfg(feature = "tls")]
    Tls,
    /// Nothing to read (`EAGAIN`), or nothing that can be read.
    Nothing,
    /// `EINTR`: try again in the next round.
    Interrupted,
    Failed(io::Error),
}

/// Reads once from the stream in `entry` into `read_buf` (with descriptors into `passed`
/// under [`Options::receive_fds`](crate::Options::receive_fds)), on the slot in hand: the
/// turn calls it straight from a readiness event, without a second look at the slot.
#[inline(always)]
pub(crate) fn read_entry(
    entry: &mut super::Entry,
    read_buf: &mut Vec<u8>,
    passed: &mut PassedFds,
    now: u32,
) -> Read {
    #[cfg(feature = "tls")]
    if matches!(&entry.state, State::Stream(s) if s.extras.tls()) {
        return Read::Tls;
    }
    let read_size = entry.options.read_size;
    if read_buf.len() < read_size {
        read_buf.resize(read_size, 0);
    }
    let (Some(fd), State::Stream(stream)) = (entry.fd.as_ref(), &mut entry.state) else {
        return Read::Nothing;
    };
    let fds = entry.options.receive_fds;
    let read = if fds {
        // Descriptors that come wait in `passed` until the bytes are delivered.
        passed.recv(fd.as_fd(), &mut read_buf[..read_size])
    } else {
        sys::fd::read(fd.as_fd(), &mut read_buf[..read_size])
    };
    match read {
        Ok(0) => {
            entry.ready.remove(Ready::READABLE);
            entry.ready.remove(Ready::READ_CLOSED);
            Read::End
        }
        Ok(n) => {
            stream.active_at = now;
            // With edge triggering a short read means the socket is empty now; if a FIN came
            // with the data, read on to see the end of stream.
            let drained = n < read_size
                && (entry.trigger == Trigger::Level
                    || (stream.short_read_drains && !entry.ready.read_closed()));
            if drained {
                entry.ready.remove(Ready::READABLE);
            }
            if !fds && stream.decoder.is_none() && stream.input.is_empty() {
                if let Some(handler) = entry.handler.take() {
                    return Read::Direct {
                        n,
                        drained,
                        handler,
                    };
                }
            }
            Read::Deliver { n, drained, fds }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            entry.ready.remove(Ready::READABLE);
            Read::Nothing
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Read::Interrupted,
        Err(e) => Read::Failed(e),
    }
}

/// The reply path: right after `on_read`, in the same dispatch (the handler is still out
/// of its slot), the handle's own output is written and a drain calls `on_sent` there. It
/// is the one write the end-of-turn flush would make, without the flush's second look at
/// the slot and second dispatch. Taken only in the plain case: the handle's queue was the
/// last one the callback made dirty (the dirty list's last entry), and it is an open,
/// connected, edge-triggered, writable plain stream (no TLS, no descriptors waiting) under
/// its high watermark. Anything else waits for the flush, as do sends to other handles.
#[inline(always)]
pub(crate) fn write_reply(handler: &mut dyn Handler, ctx: &mut Context<'_>) {
    let token = ctx.token();
    let registry = ctx.registry_mut();
    // Every token on the dirty list is this reactor's, so index and generation (the key)
    // tell them apart: one comparison instead of three.
    if registry.dirty.last().map(|t| t.to_key()) != Some(token.to_key()) {
        return;
    }
    let keep = registry.keeps_drained_buffers();
    let Registry {
        entries,
        buffers,
        clock,
        id,
        dirty,
        ..
    } = registry;
    let Some(entry) = slot_mut(entries, *id, token) else {
        return;
    };
    let plain = matches!(&entry.state,
        State::Stream(s) if s.connected && !s.above_high && s.extras.none());
    let open = entry.life == Life::Open && entry.fd.is_some();
    if !(plain && open && entry.ready.writable() && entry.trigger == Trigger::Edge) {
        return;
    }
    dirty.pop();
    entry.in_dirty = false;
    match write_stream_of(entry, buffers, clock.now(), keep) {
        Flushed::Drained => handler.on_sent(ctx),
        Flushed::Idle | Flushed::Partial => {}
        Flushed::Failed(e) => ctx.registry_mut().fail(token, e.into()),
    }
}

/// [`Registry::write_stream`] on a slot already looked up (the flush has it); `now` is the
/// turn's clock reading and `keep` whether a drained queue keeps its buffer.
#[inline]
pub(crate) fn write_stream_of(
    entry: &mut super::Entry,
    buffers: &mut super::buffer_pool::BufferPool,
    now: u32,
    keep: bool,
) -> Flushed {
    let (Some(fd), State::Stream(stream)) = (entry.fd.as_ref(), &mut entry.state) else {
        return Flushed::Idle;
    };
    let socket = entry.transport.is_socket();
    loop {
        let result = match stream.output.contiguous() {
            // The common case (copied sends only) needs no iovec array to fill.
            Some(all) => write_one(fd.as_fd(), all, socket).map(|written| (written, all.len())),
            None => write_vectored(fd.as_fd(), &stream.output, socket),
        };
        match result {
            Ok((written, offered)) => {
                if written > 0 {
                    (stream.active_at, stream.sent_at) = (now, now);
                    stream.wrote_any = true;
                }
                stream.output.consume(written, buffers, keep);
                if stream.output.is_empty() {
                    return Flushed::Drained;
                }
                if written < offered {
                    entry.ready.remove(Ready::WRITABLE);
                    return Flushed::Partial;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.ready.remove(Ready::WRITABLE);
                return Flushed::Partial;
            }
            Err(e) => return Flushed::Failed(e),
        }
    }
}

/// [`write_once`] of the oldest [`MAX_IOVECS`] buffers of `output`; returns what was
/// written and what was offered. Out of line: its iovec array would make every caller's
/// stack frame a kilobyte bigger, the common one-buffer write's included.
#[inline(never)]
fn write_vectored(
    fd: std::os::fd::BorrowedFd<'_>,
    output: &super::output::OutputQueue,
    socket: bool,
) -> io::Result<(usize, usize)> {
    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
    let n = output.io_slices(&mut slices);
    let offered: usize = slices[..n].iter().map(|s| s.len()).sum();
    write_once(fd, &slices[..n], socket).map(|w| (w, offered))
}

/// [`write_once`] of one buffer: `send(2)` on a socket, no iovec.
#[inline]
fn write_one(fd: std::os::fd::BorrowedFd<'_>, buf: &[u8], socket: bool) -> io::Result<usize> {
    if !socket {
        return write_once(fd, &[IoSlice::new(buf)], false);
    }
    loop {
        match sys::fd::send(fd, buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One vectored write, retried on `EINTR`: `sendmsg(MSG_NOSIGNAL)` on a socket, `writev`
/// on anything else (which cannot take `MSG_NOSIGNAL`; see `crate::sys::signal`).
pub(crate) fn write_once(
    fd: std::os::fd::BorrowedFd<'_>,
    slices: &[IoSlice<'_>],
    socket: bool,
) -> io::Result<usize> {
    loop {
        let written = if socket {
            sys::fd::send_vectored(fd, slices)
        } else {
            sys::fd::write_vectored(fd, slices)
        };
        match written {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
