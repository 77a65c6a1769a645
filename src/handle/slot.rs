//! One slot of the reactor's slab: what every handle has ([`Entry`]: descriptor, handler,
//! options, readiness, lifecycle, timers) and, in [`State`], what only its kind uses, so a
//! TCP connection carries no datagram queues, pump or bound path. An idle connection costs
//! its `Entry` and nothing else: its queues hold no buffer while empty (drained buffers go
//! back to the reactor's [`BufferPool`](super::buffer_pool::BufferPool)) and its options are
//! shared with the listener that accepted it.
//!
//! Nothing here does I/O or calls a handler; the kind files drive, the registry manages
//! slots and lifecycles.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::datagram_queue::DatagramQueue;
use super::input::InputBuffer;
use super::output::OutputQueue;
use super::process::ProcessSlot;
use super::{Kind, Shape, Transport};
use crate::deadline::{expired, millis};
use crate::framing::Decoder;
use crate::pump::Pump;
use crate::selector::{Interest, Ready, Trigger};
use crate::{CloseReason, Deadline, Handler, Options, TimerId};

/// Where a handle is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    Open,
    /// Graceful close, first half: input is discarded and the queue is flushing.
    Closing {
        reason: CloseReason,
    },
    /// Graceful close, second half: everything is written and our side is shut down
    /// (`SHUT_WR`); input is read and discarded until the peer's end of stream, so that
    /// closing does not reset the connection and destroy data the peer has not read yet.
    Lingering {
        reason: CloseReason,
    },
    /// Finalization is queued; the handle takes no more operations or events.
    Dying,
}

/// What only one kind of handle uses.
pub(crate) enum State {
    Stream(Stream),
    /// Boxed: a datagram handle's two queues would double every stream's slot.
    Datagram(Box<Datagram>),
    Listener(Listener),
    Pump(Box<PumpSlot>),
    /// Readiness only: nothing to hold.
    Pollable,
    /// A signalfd the reactor reads itself, delivering each signal to `on_signal`.
    Signals,
    /// A child process (its pidfd is the descriptor); boxed, as it is rare.
    Process(Box<ProcessSlot>),
    Virtual,
}

/// A byte stream: a connection, a pipe end, a terminal.
pub(crate) struct Stream {
    pub(crate) output: OutputQueue,
    /// Received bytes not yet handed over (a record's incomplete start).
    pub(crate) input: InputBuffer,
    /// The live framing state (`None`: reads go to `on_read` as they come).
    pub(crate) decoder: Option<Box<dyn Decoder>>,
    /// False while a non-blocking connect is under way (sends are queued meanwhile).
    pub(crate) connected: bool,
    /// The peer's end of stream has been read.
    pub(crate) eof: bool,
    /// ManualWrite: `on_writable` was asked for (one is due after registration).
    pub(crate) watch_writable: bool,
    /// See [`Shape::short_read_drains`].
    pub(crate) short_read_drains: bool,
    /// When a byte was last read or written (or the connect started), on the reactor's
    /// [`Clock`](crate::deadline::Clock): the idle and connect deadlines count from here.
    pub(crate) active_at: u32,
    /// When queued output last made progress (or was queued into an empty queue).
    pub(crate) sent_at: u32,
    /// When the input buffer last became non-empty: the start of a record.
    pub(crate) record_at: u32,
    /// Bytes a graceful close has read and thrown away (bounded by `discard_limit`).
    pub(crate) discarded: u32,
    /// Whether any output was ever written: a close that wrote nothing need not linger.
    pub(crate) wrote_any: bool,
    /// Queued output passed the high watermark: reading waits for the low one.
    pub(crate) above_high: bool,
    /// Its place in the count of the listener that accepted it (held, never read: its
    /// drop gives the place back).
    pub(crate) _seat: Option<Seat>,
    /// Descriptor attachments, TLS (see [`Extras`]).
    pub(crate) extras: Extras,
    /// Counts `set_framing` calls (wrapping): the delivery loop tells by it whether a
    /// record that consumed nothing was followed by a new rule.
    pub(crate) framings: u8,
}

/// Rare things a stream may have, one bit each (a slot has no room for more fields).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extras(u8);

impl Extras {
    /// Descriptors queued by `send_fds` wait in the registry's attachments.
    const ATTACHED: u8 = 1;
    /// The stream runs TLS; its session is in the registry.
    #[cfg(feature = "tls")]
    const TLS: u8 = 2;
    /// TLS records (a handshake message, an alert, `close_notify`) wait to be written,
    /// which counts as output.
    const TLS_PENDING: u8 = 4;
    /// The handler's bytes went straight into rustls (the queue was empty): their drain is
    /// an `on_sent`, as if they had waited in the queue, and the send deadline covers them.
    const TLS_PLAINTEXT: u8 = 8;

    fn get(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    /// A plain stream: no descriptor waits, no TLS.
    pub(crate) fn none(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn attached(self) -> bool {
        self.get(Extras::ATTACHED)
    }

    pub(crate) fn set_attached(&mut self, on: bool) {
        self.set(Extras::ATTACHED, on);
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(self) -> bool {
        self.get(Extras::TLS)
    }

    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, on: bool) {
        self.set(Extras::TLS, on);
    }

    pub(crate) fn tls_pending(self) -> bool {
        self.get(Extras::TLS_PENDING)
    }

    #[cfg(feature = "tls")]
    pub(crate) fn set_tls_pending(&mut self, on: bool) {
        self.set(Extras::TLS_PENDING, on);
    }

    pub(crate) fn tls_plaintext(self) -> bool {
        self.get(Extras::TLS_PLAINTEXT)
    }

    #[cfg(feature = "tls")]
    pub(crate) fn set_tls_plaintext(&mut self, on: bool) {
        self.set(Extras::TLS_PLAINTEXT, on);
    }
}

/// A UDP or Unix datagram socket.
pub(crate) struct Datagram {
    pub(crate) output: DatagramQueue,
    /// Datagrams received in a batch after the handler paused reading, delivered first on
    /// resume.
    pub(crate) held: DatagramQueue,
    /// The error queue (Errors option) is on.
    pub(crate) error_queue: bool,
    /// A Unix socket path this handle bound, removed when it closes.
    pub(crate) bound_path: Option<PathBuf>,
}

/// A listening socket.
#[derive(Default)]
pub(crate) struct Listener {
    /// Waiting out EMFILE/ENFILE before accepting again.
    pub(crate) backoff: bool,
    /// A Unix socket path this listener bound, removed when it closes.
    pub(crate) bound_path: Option<PathBuf>,
    /// Its connections still open: each holds a [`Seat`] of this count.
    pub(crate) seats: Seats,
    /// Connections refused past the limit.
    pub(crate) refused: u64,
    /// The connection limit, resolved when the listener opened (`Options::connection_limit`
    /// asks the kernel for `RLIMIT_NOFILE`; not once per accept).
    pub(crate) limit: usize,
}

/// A count of open connections (a listener's, a reactor group worker's), each holding a
/// [`Seat`] in it. Atomic, so that another thread can read it (a group's acceptor picks
/// the worker with the fewest); it changes once per connection, never per message.
#[derive(Clone, Default, Debug)]
pub(crate) struct Seats(Arc<AtomicUsize>);

impl Seats {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Takes a place, given back when the seat is dropped.
    pub(crate) fn take(&self) -> Seat {
        self.0.fetch_add(1, Ordering::Relaxed);
        Seat(self.0.clone())
    }
}

/// One open connection's place in a count; given back when the slot is dropped, on every
/// close path.
pub(crate) struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A UDP pump: its receive threads, and the replies the reactor sends for it.
pub(crate) struct PumpSlot {
    /// `None` once finalization has stopped the threads.
    pub(crate) pump: Option<Pump>,
    pub(crate) output: DatagramQueue,
    pub(crate) bound_path: Option<PathBuf>,
}

/// One handle's slot.
pub(crate) struct Entry {
    pub(crate) generation: u32,
    /// `None` for virtual handles and after `remove` handed the descriptor back.
    pub(crate) fd: Option<OwnedFd>,
    /// `None` while one of its callbacks runs.
    pub(crate) handler: Option<Box<dyn Handler>>,
    /// Shared with the listener that accepted the handle (and its other connections).
    pub(crate) options: Rc<Options>,
    /// Timers owned by this handle, cancelled when it is finalized.
    pub(crate) timers: Vec<TimerId>,
    pub(crate) state: State,
    pub(crate) life: Life,
    pub(crate) ready: Ready,
    pub(crate) trigger: Trigger,
    /// The interest last given to the selector (level-triggered entries only change it).
    pub(crate) interest: Interest,
    pub(crate) transport: Transport,
    /// Opened for reading / for writing (a child's stdin is write-only).
    pub(crate) readable_end: bool,
    pub(crate) writable_end: bool,
    pub(crate) paused: bool,
    /// Whether `fd` is registered with the selector.
    pub(crate) registered: bool,
    /// Whether the reactor made this descriptor (socket, accept) and so knows that closing
    /// it ends its registration: no other descriptor shares its open file.
    pub(crate) sole_owner: bool,
    /// Already in the reactor's ready list / dirty list.
    pub(crate) in_ready: bool,
    pub(crate) in_dirty: bool,
}

impl Entry {
    /// A new slot for a handle of `shape`; `connected` is false while a connect is pending.
    pub(crate) fn new(
        shape: Shape,
        fd: Option<OwnedFd>,
        options: Rc<Options>,
        connected: bool,
    ) -> Entry {
        // The user does the I/O on a pollable descriptor: only level triggering can tell
        // the reactor that readiness still holds.
        let manual = options.manual_read
            || options.manual_write
            || shape.kind == Kind::Pollable
            || (shape.kind == Kind::Listener && options.manual_accept);
        let state = match shape.kind {
            Kind::Stream => State::Stream(Stream {
                output: OutputQueue::default(),
                input: InputBuffer::default(),
                decoder: options.framing.as_ref().map(|f| f.decoder.fresh()),
                connected,
                eof: false,
                watch_writable: options.manual_write,
                // A read that brought descriptors is short yet may leave more (fd_passing.rs).
                short_read_drains: shape.short_read_drains && !options.receive_fds,
                active_at: 0,
                sent_at: 0,
                record_at: 0,
                discarded: 0,
                wrote_any: false,
                above_high: false,
                _seat: None,
                extras: Extras::default(),
                framings: 0,
            }),
            Kind::Datagram => State::Datagram(Box::new(Datagram {
                output: DatagramQueue::default(),
                held: DatagramQueue::default(),
                error_queue: false,
                bound_path: None,
            })),
            Kind::Listener => State::Listener(Listener {
                limit: options.connection_limit(),
                ..Listener::default()
            }),
            Kind::Pollable => State::Pollable,
            // A process's state is put in by `spawn`, which alone makes one.
            Kind::Virtual | Kind::Process => State::Virtual,
        };
        Entry {
            generation: 0,
            fd,
            handler: None,
            options,
            timers: Vec::new(),
            state,
            life: Life::Open,
            // A connected stream is writable until a write says otherwise.
            ready: if connected {
                Ready::WRITABLE
            } else {
                Ready::default()
            },
            trigger: if manual {
                Trigger::Level
            } else {
                Trigger::Edge
            },
            interest: Interest::default(),
            transport: shape.transport,
            readable_end: shape.readable_end,
            writable_end: shape.writable_end,
            paused: false,
            registered: false,
            sole_owner: false,
            in_ready: false,
            in_dirty: false,
        }
    }

    /// The public kind (a pump is a datagram handle to its user).
    pub(crate) fn kind(&self) -> Kind {
        match self.state {
            State::Stream(_) => Kind::Stream,
            State::Datagram(_) | State::Pump(_) => Kind::Datagram,
            State::Listener(_) => Kind::Listener,
            State::Pollable | State::Signals => Kind::Pollable,
            State::Process(_) => Kind::Process,
            State::Virtual => Kind::Virtual,
        }
    }

    /// False only for a stream whose connect is still under way.
    pub(crate) fn connected(&self) -> bool {
        match &self.state {
            State::Stream(stream) => stream.connected,
            _ => true,
        }
    }

    /// Whether the peer's end of stream has been read (streams only have one).
    fn eof(&self) -> bool {
        matches!(&self.state, State::Stream(stream) if stream.eof)
    }

    /// Whether the handle still takes operations (it is not closing or dying).
    pub(crate) fn is_live(&self) -> bool {
        self.life == Life::Open
    }

    /// The common visit of a stream, decided in one look at its slot: open and connected,
    /// bytes to read, nothing to flush, no error, no callback owed but the read's
    /// (`drive_stream` does the rest; this lets the turn go straight to the read).
    #[inline]
    pub(crate) fn only_reads(&self) -> bool {
        let ready = self.ready;
        let State::Stream(stream) = &self.state else {
            return false;
        };
        // `wants_read` for a connected stream.
        let wants_read =
            self.life == Life::Open && self.readable_end && !self.paused && !stream.above_high;
        ready.readable()
            && !ready.error()
            && stream.connected
            && wants_read
            && stream.input.is_empty()
            && !stream.watch_writable
            && !(ready.writable() && (!stream.output.is_empty() || stream.extras.tls_pending()))
            && !self.options.manual_read
    }

    /// Whether the reactor should read (or report readability) now.
    pub(crate) fn wants_read(&self) -> bool {
        let held = match &self.state {
            State::Listener(listener) => listener.backoff,
            State::Stream(stream) => stream.above_high,
            _ => false,
        };
        self.life == Life::Open && self.connected() && self.readable_end && !self.paused && !held
    }

    /// Whether input is read and thrown away (a graceful close in progress).
    pub(crate) fn discards_input(&self) -> bool {
        matches!(self.life, Life::Closing { .. } | Life::Lingering { .. })
            && self.connected()
            && self.readable_end
            && !self.eof()
    }

    /// A datagram handle's (or pump's) output queue.
    pub(crate) fn datagrams(&mut self) -> Option<&mut DatagramQueue> {
        match &mut self.state {
            State::Datagram(datagram) => Some(&mut datagram.output),
            State::Pump(pump) => Some(&mut pump.output),
            _ => None,
        }
    }

    /// What `buflen` reports: bytes for a stream, datagrams for a datagram handle.
    pub(crate) fn buflen(&self) -> usize {
        match &self.state {
            State::Stream(stream) => stream.output.len(),
            State::Datagram(datagram) => datagram.output.len(),
            State::Pump(pump) => pump.output.len(),
            State::Listener(_)
            | State::Pollable
            | State::Signals
            | State::Process(_)
            | State::Virtual => 0,
        }
    }

    /// Bytes queued for sending, for the output bound.
    pub(crate) fn queued_bytes(&self) -> usize {
        match &self.state {
            State::Stream(stream) => stream.output.len(),
            State::Datagram(datagram) => datagram.output.bytes(),
            State::Pump(pump) => pump.output.bytes(),
            State::Listener(_)
            | State::Pollable
            | State::Signals
            | State::Process(_)
            | State::Virtual => 0,
        }
    }

    pub(crate) fn has_output(&self) -> bool {
        self.buflen() > 0 || matches!(&self.state, State::Stream(s) if s.extras.tls_pending())
    }

    /// Drops all queued output; returns what `on_closing` reports as missing (bytes for a
    /// stream, datagrams for a datagram handle).
    pub(crate) fn drop_output(&mut self) -> usize {
        match &mut self.state {
            State::Stream(stream) => stream.output.clear(),
            State::Datagram(datagram) => datagram.output.clear(),
            State::Pump(pump) => pump.output.clear(),
            State::Listener(_)
            | State::Pollable
            | State::Signals
            | State::Process(_)
            | State::Virtual => 0,
        }
    }

    /// Received bytes that made no record yet (what `on_read_last` gets).
    pub(crate) fn pending_input(&self) -> &[u8] {
        match &self.state {
            State::Stream(stream) => stream.input.as_slice(),
            _ => &[],
        }
    }

    /// The Unix socket path this handle bound, if any.
    pub(crate) fn bound_path(&self) -> Option<&Path> {
        match &self.state {
            State::Listener(listener) => listener.bound_path.as_deref(),
            State::Datagram(datagram) => datagram.bound_path.as_deref(),
            State::Pump(pump) => pump.bound_path.as_deref(),
            State::Stream(_)
            | State::Pollable
            | State::Signals
            | State::Process(_)
            | State::Virtual => None,
        }
    }

    /// The deadline that has expired at `now`, if any (see `crate::deadline`).
    pub(crate) fn expired_deadline(&self, now: u32) -> Option<Deadline> {
        let State::Stream(stream) = &self.state else {
            return None;
        };
        if self.life != Life::Open {
            return None;
        }
        let options = &*self.options;
        let past = |since: u32, limit: Option<Duration>| {
            limit.is_some_and(|limit| expired(now, since, millis(limit)))
        };
        if !stream.connected {
            return past(stream.active_at, options.connect_timeout).then_some(Deadline::Connect);
        }
        let unsent = !stream.output.is_empty() || stream.extras.tls_plaintext();
        if unsent && past(stream.sent_at, options.send_timeout) {
            return Some(Deadline::Send);
        }
        if self.paused {
            // The handler holds input back on purpose.
            return None;
        }
        let record_started = stream.decoder.is_some() && !stream.input.is_empty();
        if record_started && past(stream.record_at, options.record_timeout) {
            return Some(Deadline::Record);
        }
        past(stream.active_at, options.idle_timeout).then_some(Deadline::Idle)
    }

    /// The interest this entry should be registered with.
    pub(crate) fn desired_interest(&self) -> Interest {
        match self.trigger {
            Trigger::Edge => Interest::BOTH,
            Trigger::Level => {
                let watch_writable = matches!(&self.state, State::Stream(s) if s.watch_writable);
                Interest {
                    read: self.wants_read() || self.discards_input(),
                    write: self.kind().can_send()
                        && (watch_writable || self.has_output() || !self.connected()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users hold 100k idle connections: a stream's slot must stay small (issue 12 set
    /// 256 bytes per idle connection as the goal, slab bookkeeping included).
    #[test]
    fn a_stream_slot_stays_small() {
        let size = std::mem::size_of::<Entry>();
        assert!(size <= 232, "Entry is {size} bytes");
    }
}
