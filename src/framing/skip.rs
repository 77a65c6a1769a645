//! Skip: discard the next `n` bytes as they arrive (consumed at once, never buffered, so the
//! memory they take is one read's), then frame by the next rule.
//! [`Framing::skip`](super::Framing::skip) and [`Context::skip`](crate::Context::skip).

use super::{Decoder, Frame, FrameError};

pub(crate) struct Skip {
    /// Bytes still to throw away.
    pub(crate) remaining: u64,
    pub(crate) then: Box<dyn Decoder>,
}

impl Decoder for Skip {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        if self.remaining == 0 {
            return self.then.decode(buf, limit);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.remaining -= n as u64;
        Ok(Some(Frame::skip(n)))
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        (self.remaining == 0)
            .then(|| self.then.decode_eof(buf))
            .flatten()
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Skip {
            remaining: self.remaining,
            then: self.then.fresh(),
        })
    }

    fn max_size(&self) -> Option<usize> {
        self.then.max_size()
    }

    fn smallest_record(&self) -> usize {
        self.then.smallest_record()
    }

    fn inner(&mut self) -> Option<&mut dyn Decoder> {
        Some(&mut *self.then)
    }
}

/// No rule: everything as it comes, one record per call (what follows a
/// [`Context::skip`](crate::Context::skip) on an unframed stream).
#[derive(Clone, Copy)]
pub(crate) struct Raw;

impl Decoder for Raw {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        Ok(Some(Frame::new(0..buf.len(), buf.len())))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Raw)
    }

    fn max_size(&self) -> Option<usize> {
        Some(usize::MAX) // nothing is buffered for a record: no bound applies
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    #[test]
    fn skipped_bytes_never_reach_a_record_and_the_next_rule_takes_over() {
        let framing = Framing::skip(5, Framing::lines());
        let (got, rest) =
            frame_chunks(&framing, &[b"abc", b"de", b"line\n", b"next\npart"]).unwrap();
        assert_eq!(got, vec![b"line".to_vec(), b"next".to_vec()]);
        assert_eq!(rest, b"part");
    }

    proptest::proptest! {
        #[test]
        fn skip_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..300),
            n in 0u64..40,
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::skip(n, Framing::lines()), &input, &cuts);
        }

        #[test]
        fn a_rule_limit_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..300),
            limit in 1usize..20,
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::lines().max_size(limit), &input, &cuts);
        }
    }
}
