//! One slot of the reactor's slab: a handle's descriptor, options, readiness, output queue
//! and lifecycle, plus its handler object (taken out of the slot while one of its callbacks
//! runs).

use std::os::fd::OwnedFd;

use crate::framing::Decoder;
use crate::input::InputBuffer;
use crate::output::OutputQueue;
use crate::selector::{Interest, Trigger};
use crate::{CloseReason, Handler, Options, TimerId};

/// What a handle is (EventMux's `type()`/`class()`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A listening stream socket: its events are accepted connections.
    Listener,
    /// A connected byte stream (TCP or Unix stream socket).
    Stream,
    /// A handle with no descriptor (from [`Reactor::add_handler`](crate::Reactor::add_handler)):
    /// it receives timers, and is closed like any other.
    Virtual,
}

impl Kind {
    /// Whether handles of this kind have an output queue (and so get `on_closing`).
    pub fn can_send(self) -> bool {
        self == Kind::Stream
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
    /// The live framing state of a stream (a listener keeps only the template, in `options`).
    pub(crate) decoder: Option<Box<dyn Decoder>>,
    /// Received bytes not yet handed over (a record's incomplete start).
    pub(crate) input: InputBuffer,
    /// Timers owned by this handle, cancelled when it is finalized.
    pub(crate) timers: Vec<TimerId>,
}

impl Entry {
    pub(crate) fn new(kind: Kind, fd: Option<OwnedFd>, options: Options, connected: bool) -> Entry {
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
        self.life == Life::Open && self.connected && !self.paused && !self.accept_backoff
    }

    /// Whether input is read and thrown away (a graceful close in progress).
    pub(crate) fn discards_input(&self) -> bool {
        matches!(self.life, Life::Closing { .. } | Life::Lingering { .. })
            && self.connected
            && !self.eof
    }

    /// The interest this entry should be registered with.
    pub(crate) fn desired_interest(&self) -> Interest {
        match self.trigger {
            Trigger::Edge => Interest::BOTH,
            Trigger::Level => Interest {
                read: self.wants_read() || self.discards_input(),
                write: self.kind == Kind::Stream
                    && (self.watch_writable || !self.output.is_empty() || !self.connected),
            },
        }
    }
}
