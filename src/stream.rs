//! Driving a stream handle: completing a connect, reading into the shared buffer, writing
//! when the socket becomes writable, and the manual modes.

use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

use crate::dispatch::dispatch;
use crate::entry::Life;
use crate::selector::Trigger;
use crate::sys;
use crate::{CloseReason, Error, Reactor, Token};

/// Reads that throw input away per visit during a graceful close.
const DISCARDS_PER_VISIT: usize = 8;
/// Output a read burst may build up before it is written mid-burst rather than at the end of
/// the turn: large enough that small replies still coalesce into one write, small enough
/// that bulk data is written while it is still in the CPU cache.
const EARLY_FLUSH: usize = 64 * 1024;
/// Read size used to throw away input during a graceful close.
const DISCARD_SIZE: usize = 16 * 1024;

impl Reactor {
    pub(crate) fn drive_stream(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let ready = entry.ready;
        if entry.life == Life::Dying {
            return;
        }
        if !entry.connected {
            if !(ready.writable || ready.error || ready.read_closed) || !self.finish_connect(token)
            {
                return;
            }
        } else if ready.error && entry.transport.is_socket() {
            entry.ready.error = false;
            let error = entry.fd.as_ref().map(|fd| SockRef::from(fd).take_error());
            if let Some(Ok(Some(e)) | Err(e)) = error {
                self.registry.fail(token, Error::Io(e));
                return;
            }
        } else if (ready.error || ready.read_closed) && !entry.readable_end && !entry.has_output() {
            // A write-only pipe whose reader has gone (with output queued, the write that
            // follows fails with EPIPE instead, and that is reported).
            self.registry.close_with(token, CloseReason::PeerClosed);
            return;
        }
        if ready.writable {
            self.flush(token);
        }
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        if entry.options.get_manual_write()
            && entry.watch_writable
            && ready.writable
            && entry.is_live()
        {
            entry.watch_writable = false;
            self.registry.update_interest(token);
            dispatch(&mut self.registry, token, |h, ctx| h.on_writable(ctx));
        }
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        let readable = ready.readable || ready.read_closed;
        if entry.discards_input() && readable {
            self.discard_input(token);
        } else if entry.wants_read() && entry.options.get_manual_read() {
            if readable {
                dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
            }
        } else if entry.wants_read() {
            // Records held back by a pause or a framing change go first.
            if !entry.input.is_empty() {
                self.deliver_pending(token);
            }
            if readable {
                self.read_stream(token);
            }
        }
    }

    /// Completes a non-blocking connect; returns whether the handle is now open.
    fn finish_connect(&mut self, token: Token) -> bool {
        let Some(entry) = self.registry.entry_mut(token) else {
            return false;
        };
        let outcome = match entry.fd.as_ref() {
            Some(fd) => SockRef::from(fd).take_error(),
            None => Ok(None),
        };
        match outcome {
            Ok(None) => {
                entry.connected = true;
                entry.ready.error = false;
                // Closed before the connect completed: flush and close, but no on_connect.
                let open = entry.life == Life::Open;
                self.registry.update_interest(token);
                log::trace!("{token}: connected");
                if open {
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
    fn read_stream(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let read_size = entry.options.get_read_size();
        if self.read_buf.len() < read_size {
            self.read_buf.resize(read_size, 0);
        }
        let Some(fd) = entry.fd.as_ref() else {
            return;
        };
        match sys::fd::read(fd.as_fd(), &mut self.read_buf[..read_size]) {
            Ok(0) => {
                entry.ready.readable = false;
                entry.ready.read_closed = false;
                self.deliver_eof(token);
                if let Some(entry) = self.registry.entry_mut(token) {
                    entry.eof = true;
                }
                self.registry.close_with(token, CloseReason::PeerClosed);
            }
            Ok(n) => {
                // With edge triggering a short read means the socket is empty now; if a FIN
                // came with the data, read on to see the end of stream.
                let drained = n < read_size
                    && (entry.trigger == Trigger::Level
                        || (entry.short_read_drains && !entry.ready.read_closed));
                if drained {
                    entry.ready.readable = false;
                }
                self.deliver_read(token, n);
                if self.registry.buflen(token) >= EARLY_FLUSH {
                    self.flush(token);
                }
                if !drained {
                    self.registry.schedule(token);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.ready.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.registry.schedule(token),
            Err(e) => self.registry.fail(token, Error::Io(e)),
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
            let Some(fd) = entry.fd.as_ref() else {
                return;
            };
            let read_size = self.read_buf.len().max(DISCARD_SIZE);
            if self.read_buf.len() < read_size {
                self.read_buf.resize(read_size, 0);
            }
            match sys::fd::read(fd.as_fd(), &mut self.read_buf[..read_size]) {
                Ok(0) => {
                    entry.eof = true;
                    entry.ready.readable = false;
                    if let Life::Lingering { reason } = entry.life {
                        self.registry.kill(token, reason);
                    }
                    return;
                }
                Ok(n) => log::trace!("{token}: discarded {n} bytes while closing"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    entry.ready.readable = false;
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
}
