//! Datagram handles (UDP, Unix datagram), read path and write path in one place.
//!
//! **Read**: a visit takes up to 16 datagrams with one `recvmmsg` and hands them to
//! `on_datagram` one by one with their senders. A full batch means more may wait (the handle
//! is visited again next round); a short one means the socket is drained. Datagrams left in a
//! batch when the handler pauses are held and delivered first on resume.
//!
//! **Write**: `send`/`send_to` queue whole datagrams (admitted by the registry); the flush
//! ([`Registry::write_datagrams`]) sends them in `sendmmsg` batches, runs to one destination
//! segmented on UDP. Errors that belong to single datagrams are reported without closing the
//! handle: `ECONNREFUSED` on a connected socket (an ICMP port unreachable for an earlier
//! datagram) and, with the Errors option, each report read back from the socket error queue
//! ([`Reactor::take_datagram_errors`], also used by pumps). A datagram whose send failed for
//! good (`EMSGSIZE`, say) is reported as [`Error::Undeliverable`] with its destination and
//! payload, as the error queue's reports are.

use std::io;
use std::os::fd::AsFd;

use socket2::SockRef;

use super::datagram_queue::{Message, SEND_MESSAGES};
use super::{Entry, Flushed, Life, State, Transport};
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::Registry;
use crate::selector::Ready;
use crate::sys;
use crate::sys::fd::SendFailure;
use crate::{Address, Error, Reactor, Token, Undeliverable};

/// Error reports read from the error queue per visit: enough to drain it in practice, and a
/// bound against a flood of ICMP holding the loop.
const ERRORS_PER_VISIT: usize = 64;
/// Datagrams taken per visit (one `recvmmsg`): the fairness unit of a datagram handle, as
/// one read is a stream's.
const DATAGRAMS_PER_VISIT: usize = 16;
/// How much of a failed datagram's payload an error report carries.
const ERROR_PAYLOAD: usize = 64 * 1024;

impl Reactor {
    /// One visit of a ready datagram handle: errors, writing, then reading.
    pub(crate) fn drive_datagram(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        if entry.life == Life::Dying {
            return;
        }
        let ready = entry.ready;
        if ready.error() {
            entry.ready.remove(Ready::ERROR);
            for error in self.take_datagram_errors(token) {
                self.registry.report(token, error);
            }
        }
        if ready.writable() {
            self.flush(token);
        }
        let Some(entry) = self.registry.entry(token) else {
            return;
        };
        let State::Datagram(datagram) = &entry.state else {
            return;
        };
        if entry.wants_read() && ready.readable() {
            if entry.options.manual_read {
                dispatch(&mut self.registry, token, |h, ctx| h.on_readable(ctx));
            } else if !datagram.held.is_empty() {
                self.deliver_held_datagrams(token);
                // Then read what has arrived meanwhile, if anything is recorded.
                let drained_held = self.registry.entry(token).is_some_and(|e| {
                    e.ready.readable()
                        && matches!(&e.state, State::Datagram(d) if d.held.is_empty())
                });
                if drained_held {
                    self.registry.schedule(token);
                }
            } else {
                self.receive_datagrams(token);
            }
        }
    }

    /// Receives up to [`DATAGRAMS_PER_VISIT`] datagrams in one `recvmmsg` and hands them to
    /// `on_datagram` one by one. If the handler pauses reading part-way, the rest of the
    /// batch is held and delivered first on resume; if it closes the handle, the rest is
    /// dropped with it, as the socket's queue would be.
    fn receive_datagrams(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let slot = entry.options.read_size;
        let area = slot * DATAGRAMS_PER_VISIT;
        if self.read_buf.len() < area {
            // Zeroed by the allocator: pages a datagram never reaches are never touched.
            self.read_buf = vec![0; area];
        }
        let Some(fd) = entry.fd.as_ref() else {
            return;
        };
        let mut received = std::mem::take(&mut self.received);
        match sys::fd::recv_datagrams(fd.as_fd(), &mut self.read_buf[..area], slot, &mut received) {
            Ok(()) => {
                if received.len() < DATAGRAMS_PER_VISIT {
                    entry.ready.remove(Ready::READABLE);
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
                            if let State::Datagram(d) = &mut entry.state {
                                d.held.push(data, Some(from));
                            }
                            continue;
                        }
                        _ => break,
                    }
                    if datagram.truncated {
                        let truncated = Error::Truncated {
                            size: datagram.len,
                            delivered,
                        };
                        self.registry.report(token, truncated);
                    }
                    dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_datagram(ctx, data, &from)
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.ready.remove(Ready::READABLE),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.registry.schedule(token),
            Err(e) => {
                // ECONNREFUSED and the like concern an earlier datagram: report, go on.
                self.registry.report(token, Error::Io(e));
                self.registry.schedule(token);
            }
        }
        self.received = received;
    }

    /// Delivers datagrams held back by a pause, oldest first, until none is left or the
    /// handler pauses (or closes) again.
    fn deliver_held_datagrams(&mut self, token: Token) {
        let Some(State::Datagram(datagram)) = self.registry.entry_mut(token).map(|e| &mut e.state)
        else {
            return;
        };
        let mut held = std::mem::take(&mut datagram.held);
        let mut delivered = 0;
        for (data, from) in held.iter() {
            if !self.registry.entry(token).is_some_and(|e| e.wants_read()) {
                break;
            }
            delivered += 1;
            // Held datagrams are queued with their senders (`receive_datagrams`).
            let Some(from) = from.cloned().map(Address::from_sockaddr) else {
                continue;
            };
            dispatch(&mut self.registry, token, |h, ctx| {
                h.on_datagram(ctx, data, &from)
            });
        }
        held.pop(delivered);
        if let Some(State::Datagram(datagram)) =
            self.registry.entry_mut(token).map(|e| &mut e.state)
        {
            datagram.held = held;
        }
    }

    /// EPOLLERR on a datagram socket: drains the error queue (an unread report keeps the
    /// flag raised, so the loop would spin) and the pending socket error; returns them.
    pub(crate) fn take_datagram_errors(&mut self, token: Token) -> Vec<Error> {
        if self.read_buf.len() < ERROR_PAYLOAD {
            self.read_buf.resize(ERROR_PAYLOAD, 0);
        }
        let mut errors = Vec::new();
        let Some(entry) = self.registry.entry(token) else {
            return errors;
        };
        let Some(fd) = entry.fd.as_ref() else {
            return errors;
        };
        if matches!(&entry.state, State::Datagram(d) if d.error_queue) {
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
        errors
    }
}

impl Registry {
    /// Sends queued datagrams. Errors belong to single datagrams and do not close the
    /// handle: each is reported to `on_error` and that datagram dropped. `ECONNREFUSED` on a
    /// connected socket reports an earlier datagram's ICMP error, so the current one is
    /// retried. If the kernel or the route refuses a segmented message, segmentation is
    /// turned off for the handle and the same datagrams are sent again one per message, so
    /// nothing is lost to it.
    pub(crate) fn write_datagrams(&mut self, token: Token) -> Flushed {
        let mut refusals = 0;
        let mut messages = [Message::default(); SEND_MESSAGES];
        loop {
            let Some(entry) = self.entry_mut(token) else {
                return Flushed::Idle;
            };
            let udp = entry.transport == Transport::Udp;
            let Entry {
                fd, state, ready, ..
            } = entry;
            let queue = match state {
                State::Datagram(datagram) => &mut datagram.output,
                State::Pump(pump) => &mut pump.output,
                _ => return Flushed::Idle,
            };
            let Some(fd) = fd.as_ref().map(|fd| fd.as_fd()) else {
                return Flushed::Idle;
            };
            let planned = queue.plan(udp, &mut messages);
            let sent = sys::fd::send_datagrams(fd, queue.iter(), &messages[..planned]);
            match sent {
                Ok(n) => {
                    queue.pop(n);
                    if queue.is_empty() {
                        return Flushed::Drained;
                    }
                }
                Err(failure) if failure.error.kind() == io::ErrorKind::WouldBlock => {
                    ready.remove(Ready::WRITABLE);
                    return Flushed::Partial;
                }
                Err(failure) if failure.error.kind() == io::ErrorKind::Interrupted => {}
                Err(failure)
                    if failure.segmented
                        && matches!(
                            failure.error.raw_os_error(),
                            Some(libc::EIO | libc::EINVAL | libc::EMSGSIZE | libc::ENOPROTOOPT)
                        ) =>
                {
                    log::debug!(
                        "{token}: segmented datagram send refused ({}); sending one per message",
                        failure.error
                    );
                    queue.refuse_segmentation();
                }
                Err(SendFailure { error: e, .. }) => {
                    log::debug!("{token}: datagram send: {e}");
                    let error = if e.raw_os_error() == Some(libc::ECONNREFUSED) && refusals == 0 {
                        // An earlier datagram's ICMP error: this one is tried again.
                        refusals += 1;
                        Error::Io(e)
                    } else {
                        // This datagram failed for good: name it and where it was going.
                        let failed = queue.iter().next().map(|(data, to)| Undeliverable {
                            errno: e.raw_os_error().unwrap_or(0),
                            from: None,
                            to: to
                                .cloned()
                                .or_else(|| SockRef::from(&fd).peer_addr().ok())
                                .map(Address::from_sockaddr),
                            payload: data.to_vec(),
                        });
                        queue.pop(1);
                        failed.map_or(Error::Io(e), |u| Error::Undeliverable(Box::new(u)))
                    };
                    let drained = queue.is_empty();
                    self.report(token, error);
                    if drained {
                        return Flushed::Drained;
                    }
                }
            }
        }
    }
}
