//! [`PanicPolicy`]: what the reactor does when a handler's callback panics. The catching
//! itself happens where handlers are called (`reactor/dispatch.rs`).

/// What the reactor does when a handler's callback panics.
///
/// In both cases the handle whose callback panicked is closed gracefully: nothing more is
/// read or delivered to it, but what it had queued before the panic is still written (the
/// handler's state may be broken, the replies it sent are not), within the linger time;
/// then it receives `on_closing` and
/// `on_close(`[`CloseReason::Panicked`](crate::CloseReason::Panicked)`)` (a panic in those
/// is caught and logged). A handle that was closing already goes on closing. Every other
/// handle is unaffected.
///
/// Under `Propagate` the panic leaves `run()` at the end of the turn; the closing handle
/// finishes if the reactor runs again.
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
    /// Log the panic at `error` level, close the handle, and go on serving the others.
    #[default]
    CloseHandle,
    /// Close the handle, finish the turn, then resume the panic out of
    /// [`Reactor::run`](crate::Reactor::run) / [`Reactor::run_once`](crate::Reactor::run_once).
    /// The reactor stays usable if the caller catches it.
    Propagate,
}
