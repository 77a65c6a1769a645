//! Calling into handlers.
//!
//! A handler is taken out of its slot for the length of a callback, so the callback can be
//! given a [`Context`] with mutable access to every *other* slot (and to its own slot's
//! I/O state) without aliasing. A panic is caught at this boundary and handled according to
//! the reactor's [`PanicPolicy`]; in both policies the panicking handle is closed (what it
//! had queued is still written, nothing more is delivered to it but the close) and the
//! loop is left consistent (the policy itself is public vocabulary, in `panic_policy.rs`).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::registry::Registry;
use crate::handle::Life;
use crate::{CloseReason, Context, Handler, PanicPolicy, Token};

/// Runs `f` on the handler of `token`, if the handle exists and its handler is not already
/// running. Returns `None` if it did not run or panicked.
#[inline(always)]
pub(crate) fn dispatch<R>(
    registry: &mut Registry,
    token: Token,
    f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
) -> Option<R> {
    let handler = registry.entry_mut(token)?.handler.take()?;
    // Slots are only freed by finalization, which never runs during a callback, so the
    // slot is still this handle's when the handler goes back.
    dispatch_taken(registry, token, handler, f)
}

/// [`dispatch`] with the handler already taken out of its slot by the caller (who had the
/// slot in hand): it runs, then goes back.
#[inline(always)]
pub(crate) fn dispatch_taken<R>(
    registry: &mut Registry,
    token: Token,
    mut handler: Box<dyn Handler>,
    f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
) -> Option<R> {
    let result = call(registry, token, &mut *handler, f);
    put_back(registry, token, handler);
    result
}

/// A handler back into the slot it was taken from; the slot, if the handle is still there
/// (slots are freed only by finalization, which never runs during a callback).
#[inline(always)]
fn put_back(
    registry: &mut Registry,
    token: Token,
    handler: Box<dyn Handler>,
) -> Option<&mut crate::handle::Entry> {
    let entry = registry.entry_mut(token)?;
    // The slot's handler is out (taken by the caller): the `None` replaced needs no drop.
    std::mem::forget(entry.handler.replace(handler));
    Some(entry)
}

/// `on_sent` after a drain: [`dispatch`], returning the handle's life after the callback
/// (read while the handler goes back into its slot), which the flush needs next.
#[inline(always)]
pub(crate) fn dispatch_sent(registry: &mut Registry, token: Token) -> Option<Life> {
    let mut handler = registry.entry_mut(token)?.handler.take()?;
    call(registry, token, &mut *handler, |h, ctx| h.on_sent(ctx));
    put_back(registry, token, handler).map(|entry| entry.life)
}

/// Runs `f` on a handler already out of its slot (finalization, where the slot is gone).
#[inline(always)]
pub(crate) fn call<R>(
    registry: &mut Registry,
    token: Token,
    handler: &mut dyn Handler,
    f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
) -> Option<R> {
    let outcome = {
        let mut ctx = Context::new(registry, token);
        catch_unwind(AssertUnwindSafe(|| f(handler, &mut ctx)))
    };
    match outcome {
        Ok(result) => Some(result),
        Err(payload) => {
            panicked(registry, token, payload);
            None
        }
    }
}

/// Runs `f` with a context that belongs to no handle (a [`Remote::run`](crate::Remote::run)
/// closure): its token names nothing, so it acts only through `ctx.handle(..)`.
pub(crate) fn call_detached(registry: &mut Registry, f: impl FnOnce(&mut Context<'_>)) {
    let nobody = Token::new(u32::MAX as usize - 1, 0, registry.id);
    let outcome = {
        let mut ctx = Context::new(registry, nobody);
        catch_unwind(AssertUnwindSafe(|| f(&mut ctx)))
    };
    if let Err(payload) = outcome {
        panicked(registry, nobody, payload);
    }
}

fn panicked(registry: &mut Registry, token: Token, payload: Box<dyn Any + Send>) {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string payload)");
    log::error!("{token}: handler panicked: {message}; the handle is closed");
    // What the handler queued before it panicked is still written (its state may be broken,
    // its replies are not); nothing more is read or delivered to it but the close.
    // A handle already closing goes on closing.
    registry.close_with(token, CloseReason::Panicked);
    if registry.panic_policy == PanicPolicy::Propagate && registry.panic.is_none() {
        registry.panic = Some(payload);
    }
}
