//! The reactor's side of the work other threads hand it: [`Remote`] commands and pump
//! batches. Both arrive through bounded channels and one shared [`Waker`]. Every turn,
//! before its wait, the reactor arms the waker and looks at the channels
//! ([`Registry::look_for_handoffs`]); when the eventfd fires, or that look found work, it
//! drains, a bounded amount per turn so that a flood from other threads cannot starve the
//! sockets (what is left is taken next turn, which then does not wait).

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::dispatch::{call_detached, dispatch};
use crate::pump::{bind_sockets, reply_fd, Pump};
use crate::registry::Registry;
use crate::remote::{Command, REMOTE_CAPACITY};
use crate::selector::{Interest, Trigger};
use crate::waker::{Waker, WAKER_KEY};
use crate::{
    Endpoint, Handler, Kind, Options, PumpOptions, PumpStats, Reactor, Remote, Token, Transport,
};

/// Commands carried out per turn.
const COMMANDS_PER_TURN: usize = 4096;
/// Batches taken from each pump per turn.
const BATCHES_PER_TURN: usize = 64;

/// The reactor end of the `Remote` channel.
pub(crate) struct RemoteInbox {
    commands: Receiver<Command>,
    sender: Sender<Command>,
    undelivered: Arc<AtomicU64>,
}

impl Registry {
    /// The waker, created and registered on first use.
    fn waker(&mut self) -> io::Result<Arc<Waker>> {
        if let Some(waker) = &self.waker {
            return Ok(waker.clone());
        }
        let waker = Waker::new()?;
        let read = Interest {
            read: true,
            write: false,
        };
        self.selector
            .register(waker.fd().as_fd(), WAKER_KEY, read, Trigger::Level)?;
        self.waker = Some(waker.clone());
        Ok(waker)
    }

    pub(crate) fn remote(&mut self) -> io::Result<Remote> {
        let waker = self.waker()?;
        let inbox = self.remote.get_or_insert_with(|| {
            let (sender, commands) = crossbeam_channel::bounded(REMOTE_CAPACITY);
            RemoteInbox {
                commands,
                sender,
                undelivered: Arc::default(),
            }
        });
        Ok(Remote::new(
            inbox.sender.clone(),
            waker,
            inbox.undelivered.clone(),
        ))
    }

    /// Opens a pump on a datagram endpoint.
    pub(crate) fn pump(
        &mut self,
        endpoint: Endpoint,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let (addr, transport) = match &endpoint {
            Endpoint::Udp(addr) => (socket2::SockAddr::from(*addr), Transport::Udp),
            Endpoint::UnixDatagram(path) => (socket2::SockAddr::unix(path)?, Transport::Unix),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a pump needs a datagram endpoint (udp:// or unix_dgram://)",
                ))
            }
        };
        let sockets = bind_sockets(&addr, &options)?;
        let token = self.start_pump(sockets, transport, options, handler)?;
        if let (Endpoint::UnixDatagram(path), Some(entry)) = (endpoint, self.entry_mut(token)) {
            entry.bound_path = Some(path);
        }
        Ok(token)
    }

    /// Opens a pump on a datagram socket the caller bound (or connected).
    pub(crate) fn pump_socket(
        &mut self,
        socket: socket2::Socket,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        if options.get_reuse_port() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "reuse_port needs the pump to create its sockets: use Reactor::pump with an endpoint",
            ));
        }
        let shape = crate::open::classify(socket.as_fd())?;
        if shape.kind != Kind::Datagram {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pump needs a datagram socket",
            ));
        }
        // The threads block in recvmmsg; the reactor's sends use MSG_DONTWAIT.
        socket.set_nonblocking(false)?;
        self.start_pump(vec![socket], shape.transport, options, handler)
    }

    fn start_pump(
        &mut self,
        sockets: Vec<socket2::Socket>,
        transport: Transport,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let waker = self.waker()?;
        let fd = reply_fd(&sockets)?;
        let pump = Pump::start(sockets, &options, waker)?;
        let shape = crate::entry::Shape {
            kind: Kind::Datagram,
            transport,
            // The threads read; the reactor only writes replies.
            readable_end: false,
            writable_end: true,
            short_read_drains: false,
        };
        let mut entry = crate::entry::Entry::new(shape, Some(fd), Options::default(), true);
        // Level-triggered with no read interest: arriving packets must not wake the reactor
        // through the socket (they come through the channel), only writability when replies
        // are queued.
        entry.trigger = Trigger::Level;
        entry.pump = Some(pump);
        let token = self.insert(entry, handler)?;
        self.pumps.push(token);
        Ok(token)
    }

    /// Arms the waker, so that producers signal from now on, then looks at the channels:
    /// work already waiting is taken this turn (`handoffs_left`, so the wait does not
    /// block) and the waker is disarmed again. Done every turn, busy or not: a flag left up
    /// would keep producers from signalling, and their work would wait for a quiet turn.
    pub(crate) fn look_for_handoffs(&mut self) {
        let Some(waker) = &self.waker else {
            return;
        };
        waker.arm();
        let commands = self.remote.as_ref().is_some_and(|r| !r.commands.is_empty());
        let batches = self.pumps.iter().any(|&token| {
            self.entry(token)
                .and_then(|e| e.pump.as_ref())
                .is_some_and(Pump::has_more)
        });
        if commands || batches {
            waker.disarm();
            self.handoffs_left = true;
        }
    }

    /// A live pump's counters, or the final ones of the pump being finalized.
    pub(crate) fn pump_stats(&self, token: Token) -> Option<PumpStats> {
        match self.entry(token) {
            Some(entry) => entry.pump.as_ref().map(Pump::stats),
            None => self
                .closed_pump
                .filter(|&(closed, _)| closed == token)
                .map(|(_, stats)| stats),
        }
    }
}

impl Reactor {
    /// Carries out what other threads handed over: called when the waker fired, or when
    /// work was found waiting (left by the previous turn, or seen before the wait).
    pub(crate) fn drain_handoffs(&mut self) {
        self.registry.handoffs_left = false;
        self.run_commands();
        for i in 0..self.registry.pumps.len() {
            let Some(&token) = self.registry.pumps.get(i) else {
                break;
            };
            self.deliver_batches(token);
        }
    }

    fn run_commands(&mut self) {
        for _ in 0..COMMANDS_PER_TURN {
            let Some(inbox) = &self.registry.remote else {
                return;
            };
            let Ok(command) = inbox.commands.try_recv() else {
                return;
            };
            let undelivered = inbox.undelivered.clone();
            let delivered = match command {
                Command::Run(f) => {
                    call_detached(&mut self.registry, |ctx| f(ctx));
                    true
                }
                Command::Event(token, event) => {
                    let live = self.registry.is_live(token);
                    live && dispatch(&mut self.registry, token, |h, ctx| {
                        h.on_user_event(ctx, event)
                    })
                    .is_some()
                }
                Command::Send(token, data) => self.registry.send_bytes(token, data).is_ok(),
                Command::Stop => {
                    self.registry.stopped = true;
                    true
                }
            };
            if !delivered {
                undelivered.fetch_add(1, Ordering::Relaxed);
                log::debug!("a remote command named a handle that is gone");
            }
            self.process_deferred();
        }
        self.registry.handoffs_left = true;
    }

    fn deliver_batches(&mut self, token: Token) {
        for _ in 0..BATCHES_PER_TURN {
            let Some(batch) = self
                .registry
                .entry(token)
                .and_then(|e| e.pump.as_ref()?.take(1).next())
            else {
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
            if let Some(pump) = self.registry.entry(token).and_then(|e| e.pump.as_ref()) {
                pump.count_delivered(delivered);
                pump.count_dropped(total - delivered);
            }
            self.process_deferred();
        }
        if self
            .registry
            .entry(token)
            .and_then(|e| e.pump.as_ref())
            .is_some_and(Pump::has_more)
        {
            self.registry.handoffs_left = true;
        }
    }
}

/// Public entry points.
impl Reactor {
    /// A handle for other threads: run closures here, push events to handles, send bytes,
    /// stop the reactor. Cheap to clone; all clones share one bounded channel.
    pub fn remote(&mut self) -> io::Result<Remote> {
        self.registry.remote()
    }

    /// Starts a UDP pump (Event::Lib::UDPPump) on a datagram endpoint (`udp://HOST:PORT`,
    /// IPv4 or IPv6, or `unix_dgram:///path`): threads block receiving (with `recvmmsg`)
    /// and hand batches of packets to this thread, where `handler.on_packet` runs. Replies
    /// go through the same socket with `send_to`, batched into `sendmmsg` per turn.
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use eventmux::{Context, Handler, Packet, PumpOptions, Reactor};
    ///
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
    /// reactor.pump("udp://127.0.0.1:7008", PumpOptions::new().threads(2), Box::new(Echo))?;
    /// reactor.run()
    /// # }
    /// ```
    pub fn pump(
        &mut self,
        endpoint: impl crate::IntoEndpoint,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry
            .pump(endpoint.into_endpoint()?, options, handler)
    }

    /// Starts a pump on a datagram socket you bound (or connected) yourself, e.g. a
    /// `std::net::UdpSocket` (`.into()` converts it). `reuse_port` is not available here.
    pub fn pump_socket(
        &mut self,
        socket: impl Into<socket2::Socket>,
        options: PumpOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        self.registry.pump_socket(socket.into(), options, handler)
    }

    /// A pump's counters (`None` if `token` is not a live pump).
    pub fn pump_stats(&self, token: Token) -> Option<PumpStats> {
        self.registry.pump_stats(token)
    }
}
