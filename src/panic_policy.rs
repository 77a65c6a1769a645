//! [`PanicPolicy`]: what the reactor does when a handler's callback panics. The catching
//! itself happens where handlers are called (`reactor/dispatch.rs`).

/// What the reactor does when a handler's callback panics.
///
/// In both cases the handle whose callback panicked is killed: its queue is dropped, and it
/// receives `on_closing` and `on_close(`[`CloseReason::Panicked`](crate::CloseReason::Panicked)`)`
/// (a panic in those two is caught and logged). Every other handle is unaffected.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{PanicPolicy, Reactor};
/// let mut reactor = Reactor::new()?;
/// reactor.set_panic_policy(PanicPolicy::Propagate);
/// # Ok(()) }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PanicPolicy {
    /// Log the panic at `error` level, kill the handle, and go on serving the others.
    #[default]
    CloseHandle,
    /// Kill the handle, finish the turn, then resume the panic out of
    /// [`Reactor::run`](crate::Reactor::run) / [`Reactor::run_once`](crate::Reactor::run_once).
    /// The reactor stays usable if the caller catches it.
    Propagate,
}
