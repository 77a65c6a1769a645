//! Size: length-prefixed records. The header is 1, 2, 4 or 8 bytes, big or little endian;
//! an adjustment is added to the value read (e.g. `-4` when the length counts its own 4-byte
//! header). `on_read` gets the payload only; a zero-length payload is a valid record.

use super::{Decoder, Frame, FrameError};

/// Byte order of a length prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Endian {
    /// Most significant byte first (network order).
    Big,
    /// Least significant byte first.
    Little,
}

/// The length-prefix rule; build it, then pass it to [`Framing::size`](super::Framing::size).
///
/// ```
/// use eventmux::framing::{Endian, Framing, Size};
/// // A 2-byte little-endian length that counts the header itself.
/// let framing = Framing::size(Size::new(2, Endian::Little).adjust(-2));
/// # let _ = framing;
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Size {
    width: usize,
    endian: Endian,
    adjust: i64,
}

impl Size {
    /// A `width`-byte length prefix (1, 2, 4 or 8; anything else panics).
    pub fn new(width: usize, endian: Endian) -> Size {
        assert!(
            matches!(width, 1 | 2 | 4 | 8),
            "a length prefix is 1, 2, 4 or 8 bytes, not {width}"
        );
        Size {
            width,
            endian,
            adjust: 0,
        }
    }

    /// Adds `n` to every length read (the payload is `value + n` bytes).
    pub fn adjust(mut self, n: i64) -> Size {
        self.adjust = n;
        self
    }

    /// The header width in bytes.
    pub fn width(&self) -> usize {
        self.width
    }

    fn read_length(&self, header: &[u8]) -> u64 {
        let mut bytes = [0u8; 8];
        match self.endian {
            Endian::Big => {
                bytes[8 - self.width..].copy_from_slice(header);
                u64::from_be_bytes(bytes)
            }
            Endian::Little => {
                bytes[..self.width].copy_from_slice(header);
                u64::from_le_bytes(bytes)
            }
        }
    }
}

impl Decoder for Size {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        let Some(header) = buf.get(..self.width) else {
            return Ok(None);
        };
        let length = i128::from(self.read_length(header)) + i128::from(self.adjust);
        if length < 0 {
            return Err(FrameError::BadLength(length));
        }
        let total = length + self.width as i128;
        // Refuse at the header, before buffering a byte of an oversized record.
        if total > limit as i128 {
            return Err(FrameError::TooLarge {
                size: total as u64,
                limit,
            });
        }
        let total = total as usize;
        if buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::new(self.width..total, total)))
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    fn encode(size: &Size, payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            let value = (p.len() as i64 - size.adjust) as u64;
            let bytes = match size.endian {
                Endian::Big => value.to_be_bytes()[8 - size.width..].to_vec(),
                Endian::Little => value.to_le_bytes()[..size.width].to_vec(),
            };
            out.extend_from_slice(&bytes);
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn zero_length_payload_is_a_record() {
        let framing = Framing::size(Size::new(4, Endian::Big));
        let (got, rest) = frame_chunks(&framing, &[&[0, 0, 0, 0, 0, 0, 0, 1, b'x']]).unwrap();
        assert_eq!(got, vec![b"".to_vec(), b"x".to_vec()]);
        assert!(rest.is_empty());
    }

    #[test]
    fn adjustment_counts_the_header() {
        let framing = Framing::size(Size::new(2, Endian::Little).adjust(-2));
        let (got, _) = frame_chunks(&framing, &[&[5, 0, b'a', b'b', b'c']]).unwrap();
        assert_eq!(got, vec![b"abc".to_vec()]);
    }

    #[test]
    fn negative_adjusted_length_is_an_error() {
        let framing = Framing::size(Size::new(1, Endian::Big).adjust(-2));
        assert_eq!(
            frame_chunks(&framing, &[&[1]]),
            Err(FrameError::BadLength(-1))
        );
    }

    #[test]
    fn oversized_record_is_refused_at_the_header() {
        let mut size = Size::new(8, Endian::Big);
        let header = u64::MAX.to_be_bytes();
        assert!(matches!(
            size.decode(&header, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn size_is_the_same_however_the_stream_is_cut(
            payloads in proptest::collection::vec(proptest::collection::vec(0u8..255, 0..40), 0..8),
            width in proptest::sample::select(vec![1usize, 2, 4, 8]),
            little in proptest::bool::ANY,
            header_counted in proptest::bool::ANY,
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let endian = if little { Endian::Little } else { Endian::Big };
            let adjust = if header_counted { -(width as i64) } else { 0 };
            let size = Size::new(width, endian).adjust(adjust);
            let input = encode(&size, &payloads);
            let (got, rest) = frame_chunks(&Framing::size(size), &[&input]).unwrap();
            proptest::prop_assert_eq!(&got, &payloads);
            proptest::prop_assert!(rest.is_empty());
            same_records_however_cut(&Framing::size(size), &input, &cuts);
        }
    }
}
