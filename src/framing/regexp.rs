//! Regexp (feature `regex`): records are the first capture group of a regular expression
//! over the stream (the whole match if it has no group). Bytes before a match are skipped
//! (and so never seen by the handler); bytes after the last match wait for more input,
//! bounded by `max_size`. A match is taken as soon as it is found, so patterns should end
//! with a terminator. The search restarts from the record's start on every read, which
//! `max_size` keeps bounded.

use regex::bytes::Regex;

use super::{Decoder, Frame, FrameError};

#[derive(Clone)]
pub(crate) struct Regexp {
    pattern: Regex,
}

impl Regexp {
    pub(crate) fn new(pattern: &str) -> Result<Regexp, regex::Error> {
        Ok(Regexp {
            pattern: Regex::new(pattern)?,
        })
    }
}

impl Decoder for Regexp {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        let Some(captures) = self.pattern.captures(buf) else {
            return Ok(None);
        };
        let whole = captures.get(0).expect("group 0 is the match");
        if whole.end() == 0 {
            return Err(FrameError::NoProgress);
        }
        let payload = captures.get(1).unwrap_or(whole);
        Ok(Some(Frame::new(payload.range(), whole.end())))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::{frame_chunks, same_records_however_cut, FrameError, Framing};

    #[test]
    fn first_group_is_the_record_and_leading_bytes_are_skipped() {
        let framing = Framing::regex(r"<(\w*)>").unwrap();
        let (got, rest) = frame_chunks(&framing, &[b"junk<ab>x<>", b"<c"]).unwrap();
        assert_eq!(got, vec![b"ab".to_vec(), b"".to_vec()]);
        assert_eq!(rest, b"<c");
    }

    #[test]
    fn an_empty_match_at_the_start_is_refused() {
        let framing = Framing::regex(r"x*").unwrap();
        assert_eq!(
            frame_chunks(&framing, &[b"abc"]),
            Err(FrameError::NoProgress)
        );
    }

    proptest::proptest! {
        #[test]
        fn regex_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(proptest::sample::select(b"ab\n;".to_vec()), 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::regex(r"([^\n;]*);\n").unwrap(), &input, &cuts);
        }
    }
}
