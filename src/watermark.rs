//! [`Watermark`]: which mark a handle's queued output crossed (see
//! [`Options::watermarks`](crate::Options::watermarks)). Past the high mark the reactor
//! stops reading from the handle, so a proxy or a fan-out cannot buffer without bound for
//! a slow reader; under the low mark it reads again. Either way the handler hears of it in
//! [`Handler::on_watermark`](crate::Handler::on_watermark), and needs no `buflen` polling.

/// A crossing of a handle's output watermarks.
///
/// ```
/// use eventmux::{Context, Handler, Watermark};
///
/// struct Publisher;
/// impl Handler for Publisher {
///     fn on_watermark(&mut self, ctx: &mut Context<'_>, mark: Watermark) {
///         match mark {
///             Watermark::High => eprintln!("{} is slow: reading paused", ctx.token()),
///             Watermark::Low => eprintln!("{} caught up", ctx.token()),
///         }
///     }
/// }
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Watermark {
    /// Queued output passed the high mark: the reactor stopped reading from the handle.
    High,
    /// Queued output drained to the low mark: the reactor reads from the handle again.
    Low,
}
