//! Driving a datagram handle (UDP, Unix datagram): one datagram per visit to `on_datagram`
//! with its sender, queued datagrams flushed in `sendmmsg` batches, and errors that belong
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
            } else {
                self.receive_datagram(token);
            }
        }
    }

    /// Receives one datagram; more wait for the next round (edge triggering: until EAGAIN).
    fn receive_datagram(&mut self, token: Token) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        let read_size = entry.options.get_read_size();
        if self.read_buf.len() < read_size {
            self.read_buf.resize(read_size, 0);
        }
        let fd = entry
            .fd
            .as_ref()
            .expect("a datagram handle has a descriptor");
        match sys::fd::recv_from(fd.as_fd(), &mut self.read_buf[..read_size]) {
            Ok((size, from)) => {
                let from = Address::from_sockaddr(from);
                let delivered = size.min(read_size);
                if size > read_size {
                    self.registry
                        .deferred
                        .push_back(Deferred::Error(token, Error::Truncated { size, delivered }));
                }
                let data = &self.read_buf[..delivered];
                dispatch(&mut self.registry, token, |h, ctx| {
                    h.on_datagram(ctx, data, &from)
                });
                self.registry.schedule(token);
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
