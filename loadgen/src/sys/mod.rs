//! Every `unsafe` system call the load generator makes, each behind a safe function:
//! CPU affinity ([`affinity`]), CPU-time clocks ([`clock`]) and batched datagram I/O
//! ([`mmsg`]). The rest of the crate never writes `unsafe`.

pub mod affinity;
pub mod clock;
pub mod mmsg;
