//! What can go wrong, and why a handle went away.
//!
//! [`Error`] carries either what the OS said (`Io`) or a decision the library made (an
//! output bound hit, a stale token). It converts into `io::Error` for `?` in code that
//! speaks only `io::Result`. [`CloseReason`] is what [`Handler::on_close`](crate::Handler::on_close)
//! receives: every close path has exactly one.

use std::fmt;
use std::io;

use crate::framing::FrameError;
use crate::{Address, Deadline, Kind, Token};

/// One datagram that could not be delivered: what its failed send or the error queue said.
#[derive(Clone, Debug)]
pub struct Undeliverable {
    pub(crate) errno: i32,
    pub(crate) from: Option<Address>,
    pub(crate) to: Option<Address>,
    pub(crate) payload: Vec<u8>,
}

impl Undeliverable {
    /// The error number (e.g. 111, `ECONNREFUSED`, for a closed port).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The error's text, as `strerror` gives it (`"Connection refused"`), without the
    /// `" (os error 111)"` that `io::Error`'s display adds.
    ///
    /// ```
    /// # fn show(report: &eventmux::Undeliverable) {
    /// println!("{} to {:?}", report.message(), report.to());
    /// # }
    /// ```
    pub fn message(&self) -> String {
        let text = io::Error::from_raw_os_error(self.errno).to_string();
        let suffix = format!(" (os error {})", self.errno);
        match text.strip_suffix(&suffix) {
            Some(strerror) => strerror.to_string(),
            None => text,
        }
    }

    /// Who reported the error (the host or router that sent the ICMP message), if known;
    /// `None` for a send that failed here.
    pub fn from(&self) -> Option<&Address> {
        self.from.as_ref()
    }

    /// Where the datagram was going (address and port).
    pub fn to(&self) -> Option<&Address> {
        self.to.as_ref()
    }

    /// The datagram's payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// An error delivered to [`Handler::on_error`](crate::Handler::on_error) or returned by a
/// handle operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an error on this handle (connection refused, reset, ...).
    Io(io::Error),
    /// A send would have taken the queued output past [`Options::max_output`](crate::Options::max_output).
    /// The handle is killed right after this error is delivered.
    OutputLimit {
        /// The bound in force.
        limit: usize,
        /// Bytes that were queued when the send was refused.
        queued: usize,
        /// Bytes the refused send carried.
        attempted: usize,
    },
    /// Input waiting for a record passed [`Options::max_size`](crate::Options::max_size). The
    /// handle is closed after this error, with what was buffered given to `on_read_last`.
    InputLimit {
        /// The bound in force.
        limit: usize,
        /// Bytes the record needed, as far as known (at least `limit + 1`).
        needed: u64,
    },
    /// The stream broke its framing rule (a malformed HTTP head, a negative length, ...).
    /// The handle is closed after this error.
    Frame(FrameError),
    /// A datagram could not be delivered: its send failed for good (`EMSGSIZE`, ...), or,
    /// with the Errors option, the socket's error queue reported it (ICMP). The report names
    /// the destination and carries the payload. The handle stays open.
    Undeliverable(Box<Undeliverable>),
    /// A datagram was larger than [`Options::read_size`](crate::Options::read_size): the
    /// first `read_size` bytes were delivered, the rest was lost. The handle stays open.
    Truncated {
        /// The datagram's real size.
        size: usize,
        /// How much of it was delivered.
        delivered: usize,
    },
    /// A deadline of the handle expired (see [`Deadline`]). The handle is closed after
    /// this error: gracefully for the record and idle deadlines (so an answer sent in
    /// `on_error`, such as HTTP's 408, is still written), at once for the send and connect
    /// deadlines.
    Timeout(Deadline),
    /// The reactor a [`Remote`](crate::Remote) belongs to is gone.
    Disconnected,
    /// The token names a handle that is gone (its slot may hold another handle by now), or
    /// one of another reactor.
    StaleToken(Token),
    /// The handle is closing or being killed and takes no more operations.
    Closing(Token),
    /// TLS refused the peer (a malformed or hostile handshake, an alert, a bad record);
    /// the alert rustls chose was sent before the close.
    #[cfg(feature = "tls")]
    Tls(rustls::Error),
    /// The operation does not apply to this kind of handle.
    WrongKind {
        /// What was asked.
        operation: &'static str,
        /// The handle's kind.
        kind: Kind,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::OutputLimit {
                limit,
                queued,
                attempted,
            } => write!(
                f,
                "output limit of {limit} bytes exceeded ({queued} queued, {attempted} more sent)"
            ),
            Error::InputLimit { limit, needed } => write!(
                f,
                "input limit of {limit} bytes exceeded waiting for a record ({needed} needed)"
            ),
            Error::Frame(e) => write!(f, "{e}"),
            Error::Undeliverable(u) => write!(
                f,
                "datagram to {} undeliverable: {} (reported by {})",
                u.to.as_ref().map_or("?".into(), |a| a.to_string()),
                u.message(),
                u.from.as_ref().map_or("?".into(), |a| a.to_string())
            ),
            Error::Truncated { size, delivered } => {
                write!(f, "datagram of {size} bytes truncated to {delivered}")
            }
            Error::Timeout(deadline) => write!(f, "{deadline}"),
            Error::Disconnected => write!(f, "the reactor is gone"),
            Error::StaleToken(token) => write!(f, "{token} names a handle that is gone"),
            Error::Closing(token) => write!(f, "{token} is closing"),
            #[cfg(feature = "tls")]
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::WrongKind { operation, kind } => {
                write!(f, "{operation} does not apply to a {kind:?} handle")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Frame(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let e = match e {
            // The OS's own error, so `raw_os_error()` still tells the errno.
            Error::Io(inner) => return inner,
            other => other,
        };
        let kind = match &e {
            Error::Io(_) => io::ErrorKind::Other,
            Error::OutputLimit { .. } | Error::InputLimit { .. } => io::ErrorKind::OutOfMemory,
            Error::Frame(_) | Error::Truncated { .. } => io::ErrorKind::InvalidData,
            #[cfg(feature = "tls")]
            Error::Tls(_) => io::ErrorKind::InvalidData,
            Error::Undeliverable(u) => return io::Error::from_raw_os_error(u.errno),
            Error::StaleToken(_) => io::ErrorKind::NotFound,
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::Disconnected => io::ErrorKind::BrokenPipe,
            Error::Closing(_) => io::ErrorKind::NotConnected,
            Error::WrongKind { .. } => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, e)
    }
}

/// Why a handle was closed; given to [`Handler::on_close`](crate::Handler::on_close).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`close`](crate::Context::close) was called, the queue drained and the peer closed
    /// its side (or the linger time ran out after everything was written).
    Closed,
    /// [`kill`](crate::Context::kill) was called: the queue was dropped.
    Killed,
    /// [`remove`](crate::Context::remove) was called: the descriptor was handed back open.
    Removed,
    /// The peer closed its end (end of stream); queued output was flushed first.
    PeerClosed,
    /// An I/O error, already delivered to `on_error`.
    Error,
    /// A send passed the output bound; [`Error::OutputLimit`] was delivered to `on_error`.
    OutputLimit,
    /// Input waiting for a record passed the handle's `max_size`; [`Error::InputLimit`] was
    /// delivered to `on_error`.
    InputLimit,
    /// The stream broke its framing rule; [`Error::Frame`] was delivered to `on_error`.
    BadFrame,
    /// A graceful close could not drain its queue within the linger time.
    LingerExpired,
    /// A callback of this handle's handler panicked (see [`PanicPolicy`](crate::PanicPolicy)).
    Panicked,
    /// A deadline expired; [`Error::Timeout`] with the same [`Deadline`] was delivered to
    /// `on_error`.
    Timeout(Deadline),
    /// The reactor shut down ([`Reactor::shutdown`](crate::Reactor::shutdown)): a listener,
    /// closed at its start, or a handle still open when the grace time ran out.
    Shutdown,
    /// A graceful close was still flushing when the peer had sent more than
    /// [`Options::discard_limit`](crate::Options::discard_limit) to throw away; the rest of
    /// the queue was dropped (`on_closing` reports it).
    DiscardLimit,
    /// A child process exited and was reaped; `on_exit` had its status.
    Exited,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undeliverable_message_is_the_strerror_text() {
        let report = Undeliverable {
            errno: libc::ECONNREFUSED,
            from: None,
            to: None,
            payload: Vec::new(),
        };
        assert_eq!(report.message(), "Connection refused");
    }

    #[test]
    fn an_os_error_keeps_its_errno_through_io_error() {
        let reset = Error::Io(io::Error::from_raw_os_error(libc::ECONNRESET));
        assert_eq!(
            io::Error::from(reset).raw_os_error(),
            Some(libc::ECONNRESET)
        );
        let limit = io::Error::from(Error::OutputLimit {
            limit: 1,
            queued: 1,
            attempted: 1,
        });
        assert_eq!(limit.kind(), io::ErrorKind::OutOfMemory);
    }
}
