//! Last: nothing until the stream ends, then everything as one record (bounded, like any
//! waiting input, by `max_size`).

use super::{Decoder, Frame, FrameError};

#[derive(Copy, Clone)]
pub(crate) struct Last;

impl Decoder for Last {
    fn decode(&mut self, _buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        (!buf.is_empty()).then(|| Frame::new(0..buf.len(), buf.len()))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Last)
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    #[test]
    fn everything_arrives_at_the_end() {
        let (got, rest) = frame_chunks(&Framing::last(), &[b"ab", b"cd"]).unwrap();
        assert_eq!(got, vec![b"abcd".to_vec()]);
        assert!(rest.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn last_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(0u8..255, 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::last(), &input, &cuts);
        }
    }
}
