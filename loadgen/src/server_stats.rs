//! [`ServerStats`]: what an in-process server saw of its connections (accepted, closed,
//! closed abnormally, errors and the first of them, reading paused), shared with the
//! benchmark that reports it once the runs are over. A healthy server has closed every
//! connection it accepted, normally, without an error.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters a server's threads update and the benchmark reads.
#[derive(Debug, Default)]
pub struct ServerStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    /// Closes for another reason than the peer's end of stream.
    abnormal_closes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// How often backpressure paused reading (servers that pause).
    read_pauses: AtomicU64,
    /// Whether every error also goes to standard error, for a server that runs on its own
    /// and whose counters nobody reads.
    print_errors: bool,
}

impl ServerStats {
    /// Counters that also print every error to standard error.
    pub fn printing_errors() -> ServerStats {
        ServerStats {
            print_errors: true,
            ..ServerStats::default()
        }
    }

    /// A connection was accepted.
    pub fn record_accept(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed; `normal` if because the peer ended its stream.
    pub fn record_close(&self, normal: bool) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        if !normal {
            self.abnormal_closes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Something failed; the first error is kept.
    ///
    /// ```
    /// let stats = loadgen::ServerStats::default();
    /// stats.record_error("first");
    /// stats.record_error("second");
    /// assert_eq!(stats.errors(), 2);
    /// assert_eq!(stats.first_error().as_deref(), Some("first"));
    /// ```
    pub fn record_error(&self, error: impl Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.print_errors {
            eprintln!("{error}");
        }
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }

    /// Backpressure paused reading on a connection.
    pub fn record_read_pause(&self) {
        self.read_pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections closed so far.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Connections closed for another reason than the peer's end of stream.
    pub fn abnormal_closes(&self) -> u64 {
        self.abnormal_closes.load(Ordering::Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The first error, if there was one.
    pub fn first_error(&self) -> Option<String> {
        let first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.clone()
    }

    /// Times reading was paused.
    pub fn read_pauses(&self) -> u64 {
        self.read_pauses.load(Ordering::Relaxed)
    }

    /// Whether every accepted connection has closed.
    pub fn all_closed(&self) -> bool {
        self.closed() == self.accepted()
    }

    /// Whether every accepted connection closed normally and nothing failed.
    pub fn healthy(&self) -> bool {
        self.all_closed() && self.abnormal_closes() == 0 && self.errors() == 0
    }
}
