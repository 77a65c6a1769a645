//! Split: records end at a delimiter (not included). Lines are the `\n` case with a trailing
//! `\r` stripped.

use super::{Decoder, Frame, FrameError};

#[derive(Clone)]
pub(crate) struct Split {
    delimiter: Vec<u8>,
    strip_cr: bool,
    /// How far the current buffer has been searched without finding the delimiter.
    scanned: usize,
}

impl Split {
    pub(crate) fn new(delimiter: Vec<u8>, strip_cr: bool) -> Split {
        assert!(!delimiter.is_empty(), "a split delimiter cannot be empty");
        Split {
            delimiter,
            strip_cr,
            scanned: 0,
        }
    }

    fn find(&self, buf: &[u8]) -> Option<usize> {
        // Resume a little before where the last search stopped: the delimiter may straddle.
        let from = self.scanned.saturating_sub(self.delimiter.len() - 1);
        let haystack = buf.get(from..)?;
        // Scan for the first byte (a tight loop the compiler vectorises), then compare the rest.
        let first = self.delimiter[0];
        let mut at = 0;
        while let Some(i) = haystack[at..].iter().position(|&b| b == first) {
            let candidate = at + i;
            match haystack.get(candidate..candidate + self.delimiter.len()) {
                Some(window) if window == self.delimiter => return Some(from + candidate),
                Some(_) => at = candidate + 1,
                None => return None,
            }
        }
        None
    }
}

impl Decoder for Split {
    fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
        match self.find(buf) {
            Some(at) => {
                self.scanned = 0;
                let end = if self.strip_cr && at > 0 && buf[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                Ok(Some(Frame::new(0..end, at + self.delimiter.len())))
            }
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Split::new(self.delimiter.clone(), self.strip_cr))
    }
}

#[cfg(test)]
mod tests {
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    fn records(framing: &Framing, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        frame_chunks(framing, chunks).unwrap()
    }

    #[test]
    fn lines_strip_cr_and_keep_empty_lines() {
        let (got, rest) = records(&Framing::lines(), &[b"a\r\n\nbc\nd"]);
        assert_eq!(got, vec![b"a".to_vec(), b"".to_vec(), b"bc".to_vec()]);
        assert_eq!(rest, b"d");
    }

    #[test]
    fn multibyte_delimiter_split_across_chunks() {
        let (got, rest) = records(
            &Framing::split("\r\n\r\n"),
            &[b"head\r\n", b"\r", b"\nnext"],
        );
        assert_eq!(got, vec![b"head".to_vec()]);
        assert_eq!(rest, b"next");
    }

    #[test]
    fn split_does_not_strip_cr() {
        let (got, _) = records(&Framing::split("\n"), &[b"a\r\n"]);
        assert_eq!(got, vec![b"a\r".to_vec()]);
    }

    #[test]
    #[should_panic(expected = "cannot be empty")]
    fn empty_delimiter_is_refused() {
        let _ = Framing::split("");
    }

    proptest::proptest! {
        #[test]
        fn lines_are_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(proptest::sample::select(b"ab\r\n".to_vec()), 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::lines(), &input, &cuts);
        }

        #[test]
        fn split_is_the_same_however_the_stream_is_cut(
            input in proptest::collection::vec(proptest::sample::select(b"xy-+".to_vec()), 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            same_records_however_cut(&Framing::split("-+-"), &input, &cuts);
        }
    }
}
