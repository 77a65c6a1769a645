//! FixedSize: records of exactly `n` bytes; `fixed(0)` is one empty record.

use super::{Decoder, Frame, FrameError};

#[derive(Copy, Clone)]
pub(crate) struct Fixed {
    n: usize,
    /// `fixed(0)` has handed over its one empty record.
    spent: bool,
}

impl Fixed {
    pub(crate) fn new(n: usize) -> Fixed {
        Fixed { n, spent: false }
    }
}

impl Decoder for Fixed {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        if self.n > limit {
            return Err(FrameError::TooLarge {
                size: self.n as u64,
                limit,
            });
        }
        if self.n == 0 {
            let first = !std::mem::replace(&mut self.spent, true);
            return Ok(first.then(|| Frame::new(0..0, 0)));
        }
        Ok((buf.len() >= self.n).then(|| Frame::new(0..self.n, self.n)))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Fixed::new(self.n))
    }

    fn smallest_record(&self) -> usize {
        self.n
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    #[test]
    fn records_of_n_bytes_and_a_short_rest() {
        let (got, rest) = frame_chunks(&Framing::fixed(3), &[b"abcdefgh"]).unwrap();
        assert_eq!(got, vec![b"abc".to_vec(), b"def".to_vec()]);
        assert_eq!(rest, b"gh");
    }

    proptest::proptest! {
        #[test]
        fn fixed_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(0u8..255, 0..300),
            n in 1usize..17,
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::fixed(n), &input, &cuts);
        }
    }
}
