//! # eventmux
//!
//! A callback-driven I/O reactor for protocol servers: it multiplexes sockets, does the
//! buffering, and calls your [`Handler`] with whole reads, drained queues and closes, one
//! handler object per handle. Its model is Perl's IO::EventMux: every EventMux event is a
//! callback, every option an [`Options`] setting, every method a [`Context`] or
//! [`Reactor`] method.
//!
//! ```no_run
//! use eventmux::{Context, Handler, Incoming, Reactor};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
//!         let _ = ctx.send(data); // queued; written at the end of the turn
//!     }
//! }
//!
//! struct Server;
//! impl Handler for Server {
//!     fn on_accept(&mut self, _: &mut Context<'_>, _: &Incoming) -> Option<Box<dyn Handler>> {
//!         Some(Box::new(Echo))
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new()?;
//!     reactor.listen("127.0.0.1:7007", Server)?;
//!     reactor.run()
//! }
//! ```
//!
//! Platform: Linux is complete (epoll directly, `accept4`, `MSG_NOSIGNAL`). Other unix
//! systems are not supported yet; [`Backend::Polling`] is the seam they will use.
//! ARCHITECTURE.md in the repository is the map of the code.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!("eventmux supports Linux only so far");

mod activation;
mod address;
mod child;
mod context;
mod credentials;
mod deadline;
mod error;
pub mod framing;
mod group;
mod handle;
mod handler;
mod handover;
mod options;
mod panic_policy;
mod pump;
mod reactor;
mod remote;
mod selector;
mod signal;
mod sys;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod token;
mod url;
mod waker;
mod watermark;

pub use activation::{listen_fds, LISTEN_FDS_START};
pub use address::Address;
pub use child::{ChildHandles, ChildStdio};
pub use context::{Context, Handle};
pub use credentials::Credentials;
pub use deadline::Deadline;
pub use error::{CloseReason, Error, Undeliverable};
pub use group::{GroupBuilder, ReactorGroup, Spread};
pub use handle::listener::ACCEPT_BACKOFF;
pub use handle::{Kind, Transport};
pub use handler::{Handler, Incoming, IntoHandler};
pub use handover::{take_over, TakeOver};
pub use options::{
    Options, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISCARD_LIMIT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_LINGER, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_SIZE, DEFAULT_READ_SIZE,
    DEFAULT_RECORD_TIMEOUT, DEFAULT_SEND_TIMEOUT, DESCRIPTOR_RESERVE,
};
pub use panic_policy::PanicPolicy;
pub use pump::{Packet, PumpOptions, PumpStats, WhenFull};
pub use reactor::Reactor;
pub use remote::Remote;
pub use selector::Backend;
pub use signal::Signal;
pub use timer::TimerId;
pub use token::Token;
pub use url::{Endpoint, IntoEndpoint, UrlError};
pub use watermark::Watermark;

/// The README's examples are compiled as doc tests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
