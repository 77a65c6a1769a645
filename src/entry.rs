//! One slot of the reactor's slab: a handle's descriptor, options, readiness, output queue
//! and lifecycle, plus its handler object (taken out of the slot while one of its callbacks
//! runs).

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::datagram_queue::DatagramQueue;
use crate::framing::Decoder;
use crate::input::InputBuffer;
use crate::output::OutputQueue;
use crate::selector::{Interest, Trigger};
use crate::{CloseReason, Handler, Options, TimerId};

/// What a handle is (EventMux's `type()`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A listening stream socket: its events are accepted connections.
    Listener,
    /// A byte stream: a TCP or Unix stream connection, a pipe, a terminal.
    Stream,
    /// Datagrams: UDP or Unix datagram sockets. Each datagram is one read.
    Datagram,
    /// A handle with no descriptor (from [`Reactor::add_handler`](crate::Reactor::add_handler)):
    /// it receives timers, and is closed like any other.
    Virtual,
}

impl Kind {
    /// Whether handles of this kind have an output queue (and so get `on_closing`).
    pub fn can_send(self) -> bool {
        matches!(self, Kind::Stream | Kind::Datagram)
    }
}

/// What carries a handle's bytes (EventMux's `class()`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// TCP (IPv4 or IPv6).
    Tcp,
    /// UDP (IPv4 or IPv6).
    Udp,
    /// A Unix domain socket, stream or datagram.
    Unix,
    /// A pipe, FIFO, terminal or other character device.
    Pipe,
    /// A socket of another family (e.g. a raw or netlink socket added by hand).
    OtherSocket,
    /// No descriptor (a virtual handle).
    None,
}

impl Transport {
    /// Whether the descriptor is a socket (written with `sendmsg`, not `writev`).
    pub(crate) fn is_socket(self) -> bool {
        matches!(
            self,
            Transport::Tcp | Transport::Udp | Transport::Unix | Transport::OtherSocket
        )
    }
}

/// How a descriptor was classified when it was opened or added.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    pub(crate) kind: Kind,
    pub(crate) transport: Transport,
    /// Opened for reading / for writing (a child's stdin is write-only).
    pub(crate) readable_end: bool,
    pub(crate) writable_end: bool,
    /// A read shorter than asked proves the descriptor empty: true for stream sockets and
    /// pipes, false for terminals (a line per read) and datagram sockets forced to `Stream`
    /// (a datagram per read).
    pub(crate) short_read_drains: bool,
}

impl Shape {
    pub(crate) fn socket(kind: Kind, transport: Transport) -> Shape {
        Shape {
            kind,
            transport,
            readable_end: true,
            writable_end: true,
            short_read_drains: kind != Kind::Datagram,
        }
    }
}

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

/// Readiness the reactor knows of. Under edge triggering a flag stays set until a read or
/// write shows otherwise; under level triggering it is cleared after each turn.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its sending side (RDHUP/HUP): read on to the end of stream.
    pub(crate) read_closed: bool,
    pub(crate) error: bool,
}

pub(crate) struct Entry {
    pub(crate) generation: u32,
    /// `None` while one of its callbacks runs.
    pub(crate) handler: Option<Box<dyn Handler>>,
    pub(crate) kind: Kind,
    pub(crate) transport: Transport,
    pub(crate) readable_end: bool,
    pub(crate) writable_end: bool,
    pub(crate) short_read_drains: bool,
    /// A Unix socket path this handle bound, removed when it closes.
    pub(crate) bound_path: Option<PathBuf>,
    /// The error queue (Errors option) is on.
    pub(crate) error_queue: bool,
    /// `None` for virtual handles and after `remove` handed the descriptor back.
    pub(crate) fd: Option<OwnedFd>,
    /// Whether `fd` is registered with the selector.
    pub(crate) registered: bool,
    pub(crate) options: Options,
    pub(crate) life: Life,
    pub(crate) ready: Ready,
    /// False while a non-blocking connect is under way (sends are queued meanwhile).
    pub(crate) connected: bool,
    /// The peer's end of stream has been read.
    pub(crate) eof: bool,
    pub(crate) trigger: Trigger,
    /// The interest last given to the selector (level-triggered entries only change it).
    pub(crate) interest: Interest,
    pub(crate) paused: bool,
    /// ManualWrite: `on_writable` was asked for (one is due after registration).
    pub(crate) watch_writable: bool,
    /// A listener waiting out EMFILE/ENFILE before accepting again.
    pub(crate) accept_backoff: bool,
    /// Already in the reactor's ready list / dirty list.
    pub(crate) in_ready: bool,
    pub(crate) in_dirty: bool,
    pub(crate) output: OutputQueue,
    /// A datagram handle's output queue.
    pub(crate) datagrams: DatagramQueue,
    /// Datagrams received in a batch after the handler paused reading, delivered first on
    /// resume.
    pub(crate) held: DatagramQueue,
    /// The live framing state of a stream (a listener keeps only the template, in `options`).
    pub(crate) decoder: Option<Box<dyn Decoder>>,
    /// Received bytes not yet handed over (a record's incomplete start).
    pub(crate) input: InputBuffer,
    /// The receive threads of a pump handle.
    pub(crate) pump: Option<crate::pump::Pump>,
    /// Timers owned by this handle, cancelled when it is finalized.
    pub(crate) timers: Vec<TimerId>,
}

impl Entry {
    pub(crate) fn new(
        shape: Shape,
        fd: Option<OwnedFd>,
        options: Options,
        connected: bool,
    ) -> Entry {
        let kind = shape.kind;
        let manual = options.get_manual_read()
            || options.get_manual_write()
            || (kind == Kind::Listener && options.get_manual_accept());
        let watch_writable = kind == Kind::Stream && options.get_manual_write();
        let decoder = match kind {
            Kind::Stream => options.get_framing().map(|f| f.decoder.fresh()),
            _ => None,
        };
        Entry {
            generation: 0,
            transport: shape.transport,
            readable_end: shape.readable_end,
            writable_end: shape.writable_end,
            short_read_drains: shape.short_read_drains,
            bound_path: None,
            error_queue: false,
            pump: None,
            datagrams: DatagramQueue::default(),
            held: DatagramQueue::default(),
            decoder,
            input: InputBuffer::default(),
            handler: None,
            kind,
            fd,
            registered: false,
            options,
            life: Life::Open,
            ready: Ready {
                // A connected stream is writable until a write says otherwise.
                writable: connected,
                ..Ready::default()
            },
            connected,
            eof: false,
            trigger: if manual {
                Trigger::Level
            } else {
                Trigger::Edge
            },
            interest: Interest::default(),
            paused: false,
            watch_writable,
            accept_backoff: false,
            in_ready: false,
            in_dirty: false,
            output: OutputQueue::default(),
            timers: Vec::new(),
        }
    }

    /// Whether the handle still takes operations (it is not closing or dying).
    pub(crate) fn is_live(&self) -> bool {
        self.life == Life::Open
    }

    /// Whether the reactor should read (or report readability) now.
    pub(crate) fn wants_read(&self) -> bool {
        self.life == Life::Open
            && self.connected
            && self.readable_end
            && !self.paused
            && !self.accept_backoff
    }

    /// Whether input is read and thrown away (a graceful close in progress).
    pub(crate) fn discards_input(&self) -> bool {
        matches!(self.life, Life::Closing { .. } | Life::Lingering { .. })
            && self.connected
            && self.readable_end
            && !self.eof
    }

    /// What `buflen` reports: bytes for a stream, datagrams for a datagram handle.
    pub(crate) fn buflen(&self) -> usize {
        match self.kind {
            Kind::Datagram => self.datagrams.len(),
            _ => self.output.len(),
        }
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty() || !self.datagrams.is_empty()
    }

    /// Drops all queued output; returns what `on_closing` reports as missing.
    pub(crate) fn drop_output(&mut self) -> usize {
        self.output.clear() + self.datagrams.clear()
    }

    /// The interest this entry should be registered with.
    pub(crate) fn desired_interest(&self) -> Interest {
        match self.trigger {
            Trigger::Edge => Interest::BOTH,
            Trigger::Level => Interest {
                read: self.wants_read() || self.discards_input(),
                write: self.kind.can_send()
                    && (self.watch_writable || self.has_output() || !self.connected),
            },
        }
    }
}
