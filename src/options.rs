//! Per-handle options: EventMux's `ManualAccept`, `ManualRead`, `ManualWrite`, `ReadSize`,
//! `Buffered` (framing) and `MaxSize`, plus the bounds a server needs against peers that
//! push or stall.

use std::time::Duration;

use crate::framing::Framing;
use crate::Kind;

/// Default [`Options::read_size`]: 64 KiB, as in IO::EventMux.
pub const DEFAULT_READ_SIZE: usize = 64 * 1024;
/// Default [`Options::max_output`]: 16 MiB of queued, unsent bytes per handle (comparable to
/// redis's hard limit for pub/sub clients). A peer that stops reading cannot make a handle
/// hold more than this.
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Default [`Options::linger`]: how long a graceful close waits for its queue to drain.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(10);
/// Default [`Options::max_size`]: 1 MiB of input buffered while waiting for a record.
pub const DEFAULT_MAX_SIZE: usize = 1024 * 1024;

/// Options for one handle, given when it is opened. A listener's options are inherited by
/// every connection it accepts.
///
/// Read them as a sentence at the call site:
///
/// ```
/// use std::time::Duration;
/// use eventmux::Options;
///
/// let options = Options::new()
///     .read_size(4096)
///     .max_output(1 << 20)
///     .linger(Duration::from_secs(2));
/// println!("{options:?}"); // the values, as the handle will use them
/// ```
///
/// Options are a builder: they are set, not read back (their `Debug` output shows them).
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) manual_accept: bool,
    pub(crate) manual_read: bool,
    pub(crate) manual_write: bool,
    pub(crate) read_size: usize,
    pub(crate) max_output: usize,
    pub(crate) linger: Duration,
    pub(crate) nodelay: bool,
    pub(crate) framing: Option<Framing>,
    pub(crate) max_size: usize,
    pub(crate) kind: Option<Kind>,
    pub(crate) errors: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            manual_accept: false,
            manual_read: false,
            manual_write: false,
            read_size: DEFAULT_READ_SIZE,
            max_output: DEFAULT_MAX_OUTPUT,
            linger: DEFAULT_LINGER,
            nodelay: true,
            framing: None,
            max_size: DEFAULT_MAX_SIZE,
            kind: None,
            errors: false,
        }
    }
}

impl Options {
    /// The defaults: automatic accept, read and write; 64 KiB reads; 16 MiB output bound;
    /// 10 s linger; `TCP_NODELAY` on.
    pub fn new() -> Options {
        Options::default()
    }

    /// ManualAccept: instead of accepting and calling
    /// [`Handler::on_accept`](crate::Handler::on_accept), the reactor calls
    /// [`Handler::on_accepting`](crate::Handler::on_accepting) and the handler accepts with
    /// [`Context::accept`](crate::Context::accept). The callback repeats every turn while
    /// connections are pending.
    pub fn manual_accept(mut self, on: bool) -> Options {
        self.manual_accept = on;
        self
    }

    /// ManualRead: the reactor never reads; it calls
    /// [`Handler::on_readable`](crate::Handler::on_readable) every turn while the handle is
    /// readable, and the handler reads (e.g. with [`Context::read`](crate::Context::read)) or
    /// pauses reading.
    pub fn manual_read(mut self, on: bool) -> Options {
        self.manual_read = on;
        self
    }

    /// ManualWrite: the handler writes itself, asking for
    /// [`Handler::on_writable`](crate::Handler::on_writable) with
    /// [`Context::watch_writable`](crate::Context::watch_writable). `send` still works.
    /// With both manual modes the descriptor's blocking mode is left as it was.
    pub fn manual_write(mut self, on: bool) -> Options {
        self.manual_write = on;
        self
    }

    /// ReadSize: the most bytes one read asks for (default 64 KiB). All handles share one
    /// read buffer, sized for the largest `read_size` in use. Values below 1 are taken as 1.
    pub fn read_size(mut self, bytes: usize) -> Options {
        self.read_size = bytes.max(1);
        self
    }

    /// The bound on queued output. A send that would take the queue past it is refused: the
    /// handle gets [`Error::OutputLimit`](crate::Error::OutputLimit) in `on_error` and is
    /// killed. `usize::MAX` means no bound, which only a trusted peer deserves.
    pub fn max_output(mut self, bytes: usize) -> Options {
        self.max_output = bytes;
        self
    }

    /// How long a graceful close may take: for queued output to drain (if it has not by then,
    /// the handle is killed, [`CloseReason::LingerExpired`](crate::CloseReason::LingerExpired),
    /// and `on_closing` reports the bytes never written), then for the peer to close its side.
    pub fn linger(mut self, time: Duration) -> Options {
        self.linger = time;
        self
    }

    /// Sets `TCP_NODELAY` on TCP connections (default on: replies go out at once).
    pub fn nodelay(mut self, on: bool) -> Options {
        self.nodelay = on;
        self
    }

    /// Buffered: hand `on_read` whole records cut by `framing` instead of whatever each read
    /// returned. On a listener it is the template: every accepted connection gets a fresh
    /// copy (its own state and buffer). Not for datagram handles (each datagram is a record)
    /// and ignored with ManualRead. Change it on a live handle with
    /// [`Context::set_framing`](crate::Context::set_framing).
    pub fn framing(mut self, framing: Framing) -> Options {
        self.framing = Some(framing);
        self
    }

    /// No framing: `on_read` gets whatever each read returned (the default).
    pub fn without_framing(mut self) -> Options {
        self.framing = None;
        self
    }

    /// MaxSize: the most input a handle buffers while waiting for a record (default 1 MiB).
    /// A record that would need more gives `on_error(`[`Error::InputLimit`](crate::Error::InputLimit)`)`,
    /// (the handle can still send there, e.g. an error reply), then a graceful close:
    /// `on_read_last` with what was buffered, then the close callbacks. `0` means no
    /// bound, which only a trusted peer deserves.
    pub fn max_size(mut self, bytes: usize) -> Options {
        self.max_size = bytes;
        self
    }

    /// Type: treat a descriptor given to `add` as this kind instead of what detection says
    /// (EventMux's `Type` and `Listen` options).
    pub fn kind(mut self, kind: Kind) -> Options {
        self.kind = Some(kind);
        self
    }

    /// Errors (Linux): on a UDP handle, turn on the socket error queue (`IP_RECVERR` /
    /// `IPV6_RECVERR`), so ICMP errors for datagrams sent with `send_to` come back as
    /// `on_error(`[`Error::Undeliverable`](crate::Error::Undeliverable)`)` carrying the errno,
    /// who reported it, the destination and the payload. Off by default, as in EventMux.
    pub fn errors(mut self, on: bool) -> Options {
        self.errors = on;
        self
    }
}
