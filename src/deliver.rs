//! Handing what a stream read to its handler: as it came, or cut into records by the
//! handle's framing.
//!
//! Records that lie wholly inside one read go to `on_read` as slices of the shared read
//! buffer (no copy); only an incomplete tail is copied into the handle's [`InputBuffer`]
//! (`crate::input`), and the next read is appended to it. The decoder is looked up again
//! after every record, so a handler that changes its framing inside `on_read` has the rest
//! of the same read cut by the new rule. Records left over when the handler pauses reading
//! or closes wait in the input buffer (and reach `on_read_last` at a close).

use crate::dispatch::dispatch;
use crate::framing::{Frame, FrameError};
use crate::registry::{Deferred, Registry};
use crate::{CloseReason, Error, Reactor, Token};

/// What the next step of delivery is.
enum Next {
    /// Hand over `data[range]` as a record, consuming `consumed` bytes.
    Record(Frame),
    /// Hand over everything as it is (no framing).
    Raw,
    /// Keep the rest for later.
    Wait,
    Failed(FrameError),
}

/// Asks the handle's decoder about `data`.
fn next(registry: &mut Registry, token: Token, data: &[u8]) -> Next {
    let Some(entry) = registry.entry_mut(token).filter(|e| e.wants_read()) else {
        return Next::Wait;
    };
    let limit = match entry.options.get_max_size() {
        0 => usize::MAX,
        n => n,
    };
    let Some(decoder) = entry.decoder.as_mut() else {
        return Next::Raw;
    };
    match decoder.decode(data, limit) {
        Ok(Some(frame)) => match frame.check(data.len()) {
            Err(e) => Next::Failed(e),
            Ok(()) if frame.consumed > limit => Next::Failed(FrameError::TooLarge {
                size: frame.consumed as u64,
                limit,
            }),
            Ok(()) => Next::Record(frame),
        },
        Ok(None) if data.len() > limit => Next::Failed(FrameError::TooLarge {
            size: data.len() as u64 + 1,
            limit,
        }),
        Ok(None) => Next::Wait,
        Err(e) => Next::Failed(e),
    }
}

impl Registry {
    /// A handle's input broke its framing or its bound: no more input is delivered; the
    /// handler hears of it in `on_error` while it can still send (a server answers `400 Bad
    /// Request` or `-ERR Protocol error` there), then the handle closes gracefully, so that
    /// answer is flushed. Its buffered input goes to `on_read_last`.
    pub(crate) fn fail_frame(&mut self, token: Token, error: FrameError) {
        let Some(entry) = self.entry_mut(token).filter(|e| e.is_live()) else {
            return;
        };
        // Read nothing more while the error and the close are on their way.
        entry.paused = true;
        let (error, reason) = match error {
            FrameError::TooLarge { size, limit } => (
                Error::InputLimit {
                    limit,
                    needed: size,
                },
                CloseReason::InputLimit,
            ),
            other => (Error::Frame(other), CloseReason::BadFrame),
        };
        log::debug!("{token}: {error}");
        self.deferred.push_back(Deferred::Error(token, error));
        self.deferred.push_back(Deferred::Close(token, reason));
    }
}

impl Reactor {
    /// Delivers `self.read_buf[..n]`, just read for `token`.
    pub(crate) fn deliver_read(&mut self, token: Token, n: usize) {
        let Some(entry) = self.registry.entry_mut(token) else {
            return;
        };
        if entry.decoder.is_none() && entry.input.is_empty() {
            let data = &self.read_buf[..n];
            dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, data));
            return;
        }
        if !entry.input.is_empty() {
            // A record's start is waiting: the new bytes belong after it.
            entry.input.extend(&self.read_buf[..n]);
            self.deliver_pending(token);
            return;
        }
        let mut offset = 0;
        while offset < n {
            match next(&mut self.registry, token, &self.read_buf[offset..n]) {
                Next::Record(frame) => {
                    let payload =
                        &self.read_buf[offset + frame.payload.start..offset + frame.payload.end];
                    offset += frame.consumed;
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, payload));
                }
                Next::Raw => {
                    let data = &self.read_buf[offset..n];
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, data));
                    return;
                }
                Next::Wait => break,
                Next::Failed(e) => {
                    if let Some(entry) = self.registry.entry_mut(token) {
                        // For on_read_last, as EventMux does after an overrun.
                        entry.input.extend(&self.read_buf[offset..n]);
                    }
                    self.registry.fail_frame(token, e);
                    return;
                }
            }
        }
        if let Some(entry) = self.registry.entry_mut(token) {
            entry.input.extend(&self.read_buf[offset..n]);
        }
        // Whatever stopped the loop (a partial record, a pause, an error) is settled there.
        self.deliver_pending(token);
    }

    /// Delivers the records waiting in the handle's input buffer.
    pub(crate) fn deliver_pending(&mut self, token: Token) {
        loop {
            let Some(entry) = self.registry.entry_mut(token) else {
                return;
            };
            if entry.input.is_empty() {
                return;
            }
            // Out of the entry while its handler runs; a handler cannot add input.
            let mut input = std::mem::take(&mut entry.input);
            let step = next(&mut self.registry, token, input.as_slice());
            let keep_going = match step {
                Next::Record(frame) => {
                    let payload = &input.as_slice()[frame.payload];
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, payload));
                    input.consume(frame.consumed);
                    true
                }
                Next::Raw => {
                    let data = input.as_slice();
                    dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, data));
                    input.clear();
                    false
                }
                Next::Wait => false,
                Next::Failed(e) => {
                    self.registry.fail_frame(token, e);
                    false
                }
            };
            if let Some(entry) = self.registry.entry_mut(token) {
                entry.input = input;
            }
            if !keep_going {
                return;
            }
        }
    }

    /// The stream ended: the rule may make a last record of what is left (Last, an HTTP
    /// response without length). Anything still left goes to `on_read_last` at the close.
    pub(crate) fn deliver_eof(&mut self, token: Token) {
        self.deliver_pending(token);
        let Some(entry) = self.registry.entry_mut(token).filter(|e| e.wants_read()) else {
            return;
        };
        let mut input = std::mem::take(&mut entry.input);
        let last = entry
            .decoder
            .as_mut()
            .and_then(|d| d.decode_eof(input.as_slice()))
            .filter(|frame| frame.check(input.len()).is_ok());
        if let Some(frame) = last {
            let payload = &input.as_slice()[frame.payload];
            dispatch(&mut self.registry, token, |h, ctx| h.on_read(ctx, payload));
            input.consume(frame.consumed);
        }
        if let Some(entry) = self.registry.entry_mut(token) {
            entry.input = input;
        }
    }
}
