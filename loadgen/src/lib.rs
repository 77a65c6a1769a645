//! eventmux's load generator: the client side of its side-by-side comparisons, and the
//! peers it compares with. It is not built on eventmux, so it measures eventmux and its
//! peers alike.
//!
//! - Load: [`EchoLoad`] drives TCP connections to an echo server from one thread
//!   (messages in flight per connection, or streams), checking every echoed byte against
//!   what was sent ([`Mismatch`]); [`UdpLoad`] runs client threads that keep windows of numbered
//!   datagrams in flight.
//! - Measuring: [`CpuClock`] (a thread's, the process's, the machine's CPU time),
//!   [`CpuMeter`] and [`CpuUsage`] (shares of a CPU over one run), pinning ([`CpuPair`],
//!   [`pin_to`]), [`rotated_rounds`], and the figures of a table ([`median`],
//!   [`ratio_line`], [`thousands`], [`percent`]).
//! - Servers under test in this process: [`ServerThread`] (a pinned thread that announces
//!   its address), [`ServerStats`] (its bookkeeping), [`TokioEcho`], the tokio peer, and
//!   [`MioEcho`], the hand-written mio peer.
//! - Settings: [`Knobs`] (a benchmark's environment variables) and [`Args`] (the `loadgen`
//!   binary's command line).
//!
//! The binaries: `loadgen` (TCP echo load on a server given by address; the last line of
//! its output is the echoed messages per second, which `scripts/compare.sh` reads), and
//! the peers `tokio_echo` and `mio_echo`. The benchmarks `benches/echo.rs`,
//! `benches/udp.rs` and `benches/instructions.rs` use the library.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod args;
mod cpu_clock;
mod cpu_meter;
mod echo_load;
mod knobs;
mod load_error;
mod mio_echo;
mod pattern;
mod pin;
mod report;
mod rounds;
mod server_stats;
mod server_thread;
mod sys;
mod tokio_echo;
mod udp;

pub use args::Args;
pub use cpu_clock::CpuClock;
pub use cpu_meter::{CpuMeter, CpuUsage};
pub use echo_load::{EchoLoad, Traffic};
pub use knobs::Knobs;
pub use load_error::LoadError;
pub use mio_echo::MioEcho;
pub use pattern::Mismatch;
pub use pin::{pin_to, CpuPair};
pub use report::{median, percent, ratio_line, thousands};
pub use rounds::rotated_rounds;
pub use server_stats::ServerStats;
pub use server_thread::{Listening, ServerThread};
pub use tokio_echo::TokioEcho;
pub use udp::{UdpLoad, UdpRun};
