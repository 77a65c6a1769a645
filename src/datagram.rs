//! Driving a datagram handle (UDP, Unix datagram): up to 16 datagrams per visit, taken by
//! one `recvmmsg` and handed to `on_datagram` one by one with their senders, queued datagrams flushed in `sendmmsg` batches, and errors that belong
//! to single datagrams reported without closing the handle: `ECONNREFUSED` on a connected
//! socket (an ICMP port unreachable for an earlier datagram) and, with the Errors option,
//! each report read back from the socket error queue.

use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

use crate::dispatch::dispatch;
use crate::entry::Life;
use crate::registry::Deferred;
use crate::sys;
use crate::{Address, Error, Packet, Reactor, Token, Undeliverable};

/// Error reports read from the error queue per visit: enough to drain it in practice, and a
/// bound against a flood of ICMP holding the loop.
const ERRORS_PER_VISIT: usize = 64;
/// Datagrams taken per visit (one `recvmmsg`): the fairness unit of a datagram handle, as
/// one read is a stream's.
const DATAGRAMS_PER_VISIT: usize = 16;
/// How much of a failed datagram's payload an error report carries.
const ERROR_PAYLOAD: usize = 64 * 1024;

impl Reactor {
    pub(crate) fn drive_datagram(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        let ready = entry.ready;
        if ready.error {
            entry.ready.error = false;
            self.take_datagram_errors(token);
        }
        if ready.writable {
            self.flush(token);
        }
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        if entry.wants_read() && ready.readable {
            if entry.options.get_manual_read() {
                dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
            } else if !entry.held.is_empty() {
                self.deliver_held_datagrams(token);
                // Then read what has arrived meanwhile, if anything is recorded.
                if self
                    .registry
                    .entry(token)
                    .is_some_and(|e| e.held.is_empty() && e.ready.readable)
                {
                    self.registry.schedule(token);
                }
            } else {
                self.receive_datagrams(token);
            }
        }
    }

    /// Receives up to [`DATAGRAMS_PER_VISIT`] datagrams in one `recvmmsg` and hands them to
    /// `on_datagram` one by one. A full batch means more may wait (the handle is visited
    /// again next round); a short one means the socket is drained. If the handler pauses
    /// reading part-way, the rest of the batch is held and delivered first on resume; if it
    /// closes the handle, the rest is dropped with it, as the socket's queue would be.
    fn receive_datagrams(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let slot = entry.options.get_read_size();
        let area = slot * DATAGRAMS_PER_VISIT;
        if self.read_buf.len() < area {
            // Zeroed by the allocator: pages a datagram never reaches are never touched.
            self.read_buf = vec![0; area];
        }
        let fd = entry
            .fd
            .as_ref()
            .expect("a datagram handle has a descriptor");
        let mut received = std::mem::take(&mut self.received);
        match sys::fd::recv_datagrams(fd.as_fd(), &mut self.read_buf[..area], slot, &mut received) {
            Ok(()) => {
                if received.len() < DATAGRAMS_PER_VISIT {
                    entry.ready.readable = false;
                } else {
                    self.registry.schedule(token);
                }
                for (i, datagram) in received.iter().enumerate() {
                    let delivered = datagram.len.min(slot);
                    let data = &self.read_buf[i * slot..][..delivered];
                    let from = Address::from_sockaddr(datagram.from.clone());
                    match self.registry.entry_mut(token) {
                        Some(entry) if entry.wants_read() => {}
                        Some(entry) if entry.is_live() => {
                            // Paused mid-batch: keep the rest for the resume.
                            entry.held.push(data, Some(from));
                            continue;
                        }
                        _ => break,
                    }
                    if datagram.truncated {
                        self.registry.deferred.push_back(Deferred::Error(
                            token,
                            Error::Truncated {
                                size: datagram.len,
                                delivered,
                            },
                        ));
                    }
                    dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_datagram(ctx, data, &from)
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.ready.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.registry.schedule(token),
            Err(e) => {
                // ECONNREFUSED and the like concern an earlier datagram: report, go on.
                self.registry
                    .deferred
                    .push_back(Deferred::Error(token, Error::Io(e)));
                self.registry.schedule(token);
            }
        }
        self.received = received;
    }

    /// Delivers datagrams held back by a pause, oldest first, until none is left or the
    /// handler pauses (or closes) again.
    fn deliver_held_datagrams(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let mut held = std::mem::take(&mut entry.held);
        let mut delivered = 0;
        for (data, from) in held.iter() {
            if !self.registry.entry(token).is_some_and(|e| e.wants_read()) {
                break;
            }
            let from =
                Address::from_sockaddr(from.expect("held datagrams keep their sender").clone());
            dispatch(&mut self.registry, token, |h, ctx| {
                h.on_datagram(ctx, data, &from)
            });
            delivered += 1;
        }
        held.pop(delivered);
        if let Some(entry) = self.registry.entry_mut(token) {
            entry.held = held;
        }
    }

    /// EPOLLERR on a datagram socket: drain the error queue (an unread report keeps the flag
    /// raised, so the loop would spin) and the pending socket error.
    fn take_datagram_errors(&mut self, token: Token) {
        if self.read_buf.len() < ERROR_PAYLOAD {
            self.read_buf.resize(ERROR_PAYLOAD, 0);
        }
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        let fd = entry
            .fd
            .as_ref()
            .expect("a datagram handle has a descriptor");
        let mut errors = Vec::new();
        if entry.error_queue {
            for _ in 0..ERRORS_PER_VISIT {
                match sys::errqueue::read(fd.as_fd(), &mut self.read_buf[..ERROR_PAYLOAD]) {
                    Ok(Some(report)) => {
                        errors.push(Error::Undeliverable(Box::new(Undeliverable {
                            errno: report.errno,
                            from: report.offender.map(Address::from_sockaddr),
                            to: report.destination.map(Address::from_sockaddr),
                            payload: report.payload,
                        })))
                    }
                    Ok(None) => break,
                    Err(e) => {
                        log::debug!("{token}: reading the error queue: {e}");
                        break;
                    }
                }
            }
        }
        if let Ok(Some(e)) = SockRef::from(fd).take_error() {
            errors.push(Error::Io(e));
        }
        if self.registry.entry(token).is_some_and(|e| e.pump.is_some()) {
            // A pump's threads would have received this error; it reaches the handler the
            // way theirs do, as a packet with its errno (and in the pump's error count).
            self.deliver_pump_errors(token, errors);
            return;
        }
        for error in errors {
            self.registry
                .deferred
                .push_back(Deferred::Error(token, error));
        }
    }

    fn deliver_pump_errors(&mut self, token: Token, errors: Vec<Error>) {
        for error in errors {
            let Error::Io(e) = error else { continue };
            let packet = Packet::failed(e.raw_os_error().unwrap_or(0));
            if let Some(pump) = self.registry.entry(token).and_then(|e| e.pump.as_ref()) {
                pump.count_error();
            }
            dispatch(&mut self.registry, token, |h, ctx| {
                h.on_packet(ctx, &packet)
            });
        }
    }
}
