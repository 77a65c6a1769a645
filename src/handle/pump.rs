//! Pump handles: the reactor's side of a UDP pump (the receive threads and the public
//! option and packet types are in `crate::pump`).
//!
//! **Read**: the threads receive; their batches reach this thread through the pump's
//! channel, and [`Reactor::deliver_batches`] hands them to `on_packet`, a bounded number
//! per turn. The pump's own descriptor (a duplicate of its socket) is registered
//! level-triggered with no read interest, so arriving packets never wake the reactor
//! through the socket, only through the channel. Errors the socket reports (EPOLLERR)
//! reach the handler the way the threads' do: as packets with an errno.
//!
//! **Write**: replies are queued like any datagram handle's and flushed by
//! [`Registry::write_datagrams`] through the duplicate, with `MSG_DONTWAIT`.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;

use socket2::{SockAddr, Socket};

use super::datagram_queue::DatagramQueue;
use super::slot::PumpSlot;
use super::{Entry, Kind, Life, Shape, State, Transport};
use crate::pump::{bind_sockets, reply_fd, Pump};
use crate::reactor::dispatch::dispatch;
use crate::reactor::registry::Registry;
use crate::selector::{Ready, Trigger};
use crate::{Endpoint, Error, Handler, Options, Packet, PumpOptions, PumpStats, Reactor, Token};

/// Batches taken from each pump per turn.
const BATCHES_PER_TURN: usize = 64;

impl Reactor {
    /// Opens a pump on a datagram endpoint.
    pub(crate) fn open_pump(
        &mut self,
        endpoint: Endpoint,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let (addr, transport, path) = match endpoint {
            Endpoint::Udp(addr) => (SockAddr::from(addr), Transport::Udp, None),
            Endpoint::UnixDatagram(path) => (SockAddr::unix(&path)?, Transport::Unix, Some(path)),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a pump needs a datagram endpoint (udp:// or unix_dgram://)",
                ))
            }
        };
        let sockets = bind_sockets(&addr, &options)?;
        self.start_pump(sockets, transport, options, handler, path)
    }

    /// Opens a pump on a datagram socket the caller bound (or connected).
    pub(crate) fn open_pump_socket(
        &mut self,
        socket: Socket,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        if options.reuse_port {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "reuse_port needs the pump to create its sockets: use Reactor::pump with an endpoint",
            ));
        }
        let shape = Shape::of(socket.as_fd())?;
        if shape.kind != Kind::Datagram {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pump needs a datagram socket",
            ));
        }
        // The threads block in recvmmsg; the reactor's sends use MSG_DONTWAIT.
        socket.set_nonblocking(false)?;
        self.start_pump(vec![socket], shape.transport, options, handler, None)
    }

    fn start_pump(
        &mut self,
        sockets: Vec<Socket>,
        transport: Transport,
        options: PumpOptions,
        handler: Box<dyn Handler>,
        bound_path: Option<PathBuf>,
    ) -> io::Result<Token> {
        let waker = self.handoffs.waker(&*self.registry.selector)?;
        let fd = reply_fd(&sockets)?;
        let pump = Pump::start(sockets, &options, waker)?;
        let shape = Shape {
            kind: Kind::Datagram,
            transport,
            // The threads read; the reactor only writes replies.
            readable_end: false,
            writable_end: true,
            short_read_drains: false,
        };
        let mut entry = Entry::new(shape, Some(fd), Rc::new(Options::default()), true);
        entry.state = State::Pump(Box::new(PumpSlot {
            pump: Some(pump),
            output: DatagramQueue::default(),
            bound_path,
        }));
        // Level-triggered with no read interest: arriving packets must not wake the reactor
        // through the socket (they come through the channel), only writability when replies
        // are queued.
        entry.trigger = Trigger::Level;
        let token = self.registry.insert(entry, handler)?;
        self.handoffs.pumps.push(token);
        Ok(token)
    }

    /// One visit of a pump's descriptor: socket errors, then queued replies.
    pub(crate) fn drive_pump(&mut self, token: Token) {
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
                let Error::Io(e) = error else { continue };
                let packet = Packet::failed(e.raw_os_error().unwrap_or(0));
                if let Some(pump) = pump_of(&self.registry, token) {
                    pump.count_error();
                }
                dispatch(&mut self.registry, token, |h, ctx| {
                    h.on_packet(ctx, &packet)
                });
            }
        }
        if ready.writable() {
            self.flush(token);
        }
    }

    /// Hands up to [`BATCHES_PER_TURN`] of the pump's batches to `on_packet`.
    pub(crate) fn deliver_batches(&mut self, token: Token) {
        for _ in 0..BATCHES_PER_TURN {
            let Some(batch) = pump_of(&self.registry, token).and_then(|p| p.take(1).next()) else {
                return;
            };
            let total = batch.packets.len() as u64;
            let mut delivered = 0;
            for packet in &batch.packets {
                if !self.registry.is_live(token) {
                    break;
                }
                dispatch(&mut self.registry, token, |h, ctx| h.on_packet(ctx, packet));
                delivered += 1;
            }
            if let Some(pump) = pump_of(&self.registry, token) {
                pump.count_delivered(delivered);
                pump.count_dropped(total - delivered);
            }
            self.process_deferred();
        }
        if pump_of(&self.registry, token).is_some_and(Pump::has_more) {
            self.handoffs.left = true;
        }
    }
}

impl Registry {
    /// A live pump's counters, or the final ones of the pump being finalized.
    pub(crate) fn pump_stats(&self, token: Token) -> Option<PumpStats> {
        match self.entry(token) {
            Some(_) => pump_of(self, token).map(Pump::stats),
            None => self
                .closed_pump
                .filter(|&(closed, _)| closed == token)
                .map(|(_, stats)| stats),
        }
    }
}

/// The threads of the pump `token`, while it runs.
fn pump_of(registry: &Registry, token: Token) -> Option<&Pump> {
    match &registry.entry(token)?.state {
        State::Pump(slot) => slot.pump.as_ref(),
        _ => None,
    }
}
