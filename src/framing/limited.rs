//! A rule's own size limit ([`Framing::max_size`](super::Framing::max_size)): while the rule
//! is in force it replaces the handle's `max_size`, for every record of the rule, whether it
//! is buffered or arrives whole in one read. The wrapper enforces it itself, so the
//! reactor's read path asks nothing of rules without one.

use super::{Decoder, Frame, FrameError};

pub(crate) struct Limited {
    pub(crate) inner: Box<dyn Decoder>,
    pub(crate) limit: usize,
}

impl Decoder for Limited {
    fn decode(&mut self, buf: &[u8], _handle_limit: usize) -> Result<Option<Frame>, FrameError> {
        let limit = self.limit;
        match self.inner.decode(buf, limit)? {
            Some(frame) if !frame.is_skip() && frame.consumed > limit => {
                Err(FrameError::TooLarge {
                    size: frame.consumed as u64,
                    limit,
                })
            }
            None if buf.len() > limit => Err(FrameError::TooLarge {
                size: buf.len() as u64 + 1,
                limit,
            }),
            found => Ok(found),
        }
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        self.inner.decode_eof(buf)
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Limited {
            inner: self.inner.fresh(),
            limit: self.limit,
        })
    }

    fn max_size(&self) -> Option<usize> {
        Some(self.limit)
    }

    fn smallest_record(&self) -> usize {
        self.inner.smallest_record()
    }

    fn inner(&mut self) -> Option<&mut dyn Decoder> {
        Some(&mut *self.inner)
    }
}
