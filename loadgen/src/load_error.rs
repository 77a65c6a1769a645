//! [`LoadError`]: why a TCP echo load gave up. Each one means the server, or the path to
//! it, failed the run: a byte echoed wrong, a connection closed early, no echo for too long.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::Mismatch;

/// What ended a TCP echo load early.
#[derive(Debug)]
pub enum LoadError {
    /// A connection could not be opened.
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// What the OS said.
        error: io::Error,
    },
    /// A call on the sockets or on epoll failed.
    Io {
        /// The connection, if the call was on one.
        connection: Option<usize>,
        /// The call (`read`, `write`, `epoll_wait`, ...).
        call: &'static str,
        /// What the OS said.
        error: io::Error,
    },
    /// The server closed a connection that still had echo owed to it.
    ClosedEarly {
        /// The connection.
        connection: usize,
        /// Bytes sent but not echoed.
        owed: u64,
    },
    /// More came back on a connection than was sent on it.
    EchoedUnsent {
        /// The connection.
        connection: usize,
        /// Bytes echoed so far, counting the excess.
        echoed: u64,
        /// Bytes sent so far.
        sent: u64,
    },
    /// An echoed byte differs from the byte sent at its position.
    Corrupt {
        /// The connection.
        connection: usize,
        /// Which byte, and how.
        mismatch: Mismatch,
    },
    /// No echo arrived on any connection for this long, though echo was owed.
    Stalled(Duration),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Connect { addr, error } => write!(f, "connecting to {addr}: {error}"),
            LoadError::Io {
                connection: Some(connection),
                call,
                error,
            } => write!(f, "connection {connection}: {call}: {error}"),
            LoadError::Io {
                connection: None,
                call,
                error,
            } => write!(f, "{call}: {error}"),
            LoadError::ClosedEarly { connection, owed } => write!(
                f,
                "connection {connection}: the server closed it with {owed} bytes owed"
            ),
            LoadError::EchoedUnsent {
                connection,
                echoed,
                sent,
            } => write!(
                f,
                "connection {connection}: {echoed} bytes echoed, only {sent} sent"
            ),
            LoadError::Corrupt {
                connection,
                mismatch,
            } => write!(f, "connection {connection}: {mismatch}"),
            LoadError::Stalled(quiet) => {
                write!(f, "no echo for {quiet:?}: the server stalled")
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Connect { error, .. } | LoadError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
