//! Framing: turning a byte stream into records before the handler sees it (EventMux's
//! `Buffered` option, backed there by IO::Buffered).
//!
//! A [`Framing`] is set per stream handle (and on a listener, as the template every accepted
//! connection gets a fresh copy of). The reactor runs its [`Decoder`] over what it reads and
//! calls `on_read` once per record. Records that lie wholly inside one read are handed over as
//! slices of the reactor's read buffer; only the incomplete tail is copied into the handle's
//! own input buffer, bounded by [`Options::max_size`](crate::Options::max_size).
//!
//! The rules ([`Framing::split`], [`Framing::lines`], [`Framing::size`], [`Framing::fixed`],
//! [`Framing::http`], [`Framing::last`] and, with the `regex` feature, `Framing::regex`)
//! live one per file (`split.rs`, `size.rs`, `fixed.rs`, `http.rs`, `last.rs`,
//! `regexp.rs`). Your own rule implements [`Decoder`]. Two wrap another rule: a rule's own
//! size limit ([`Framing::max_size`], `limited.rs`) and skipping bytes unbuffered before it
//! ([`Framing::skip`], `skip.rs`).

mod fixed;
mod http;
mod last;
mod limited;
#[cfg(feature = "regex")]
mod regexp;
mod size;
mod skip;
mod split;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

pub use size::{Endian, Size};
pub(crate) use skip::Raw;

/// The payload start that marks a skip frame (no real payload can start there).
const SKIP: usize = usize::MAX;

/// One record found at the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub(crate) payload: Range<usize>,
    pub(crate) consumed: usize,
}

impl Frame {
    /// A record whose payload is `payload` and which used up `consumed` bytes.
    ///
    /// ```
    /// use eventmux::framing::Frame;
    /// // "hi\r\n": the payload is "hi", the record used up all four bytes.
    /// let frame = Frame::new(0..2, 4);
    /// assert_eq!((frame.payload(), frame.consumed()), (0..2, 4));
    /// ```
    #[inline]
    pub fn new(payload: Range<usize>, consumed: usize) -> Frame {
        Frame { payload, consumed }
    }

    /// Bytes to throw away: `consumed` bytes are used up and nothing reaches `on_read`
    /// (what [`Framing::skip`] returns while it skips).
    ///
    /// ```
    /// use eventmux::framing::Frame;
    /// let skipped = Frame::skip(100);
    /// assert!(skipped.is_skip());
    /// assert_eq!(skipped.consumed(), 100);
    /// ```
    #[inline]
    pub fn skip(consumed: usize) -> Frame {
        Frame {
            payload: SKIP..SKIP,
            consumed,
        }
    }

    /// Whether this frame only throws bytes away (see [`Frame::skip`]).
    ///
    /// ```
    /// use eventmux::framing::Frame;
    /// assert!(!Frame::new(0..2, 3).is_skip());
    /// ```
    #[inline]
    pub fn is_skip(&self) -> bool {
        self.payload.start == SKIP
    }

    /// Where the bytes handed to `on_read` lie in the buffer (empty for a skip).
    #[inline]
    pub fn payload(&self) -> Range<usize> {
        if self.is_skip() {
            return 0..0;
        }
        self.payload.clone()
    }

    /// How many bytes from the start of the buffer the record used up (headers, delimiter,
    /// skipped bytes included). At least 1, except for an empty record that consumes
    /// nothing (`Frame::new(0..0, 0)`, what [`Framing::fixed`]`(0)` returns once).
    #[inline]
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Checks a decoder's answer against the `len` bytes it was given.
    #[inline]
    pub(crate) fn check(&self, len: usize) -> Result<(), FrameError> {
        if self.consumed > len || self.payload.start > self.payload.end || self.payload.end > len {
            // A skip's marker payload lies past any buffer: it only has to consume.
            if self.is_skip() && self.consumed > 0 && self.consumed <= len {
                return Ok(());
            }
            Err(FrameError::OutOfBounds)
        } else if self.consumed == 0 && !self.payload.is_empty() {
            Err(FrameError::NoProgress)
        } else {
            Ok(())
        }
    }
}

/// Why a stream could not be framed. Delivered inside
/// [`Error::Frame`](crate::Error::Frame); the handle is then closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix announced a record larger than the handle's `max_size`.
    TooLarge {
        /// The record's announced size in bytes.
        size: u64,
        /// The bound in force.
        limit: usize,
    },
    /// A length prefix, adjusted, came out negative.
    BadLength(i128),
    /// An HTTP message head could not be parsed.
    BadHttp(String),
    /// A decoder returned a non-empty record that used up no bytes, or empty records that
    /// consume nothing one after another without the handler changing the rule in between
    /// (it would never make progress).
    NoProgress,
    /// A decoder returned a record reaching past the bytes it was given.
    OutOfBounds,
    /// A custom decoder refused the input for a reason of its own (made with
    /// [`FrameError::custom`]; read it back with [`FrameError::custom_ref`]).
    Custom(CustomReason),
}

/// A custom decoder's own reason for refusing input, inside [`FrameError::Custom`]. Two are
/// equal if they are the same reason (the same allocation).
#[derive(Clone, Debug)]
pub struct CustomReason(Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for CustomReason {
    fn eq(&self, other: &CustomReason) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CustomReason {}

impl FrameError {
    /// A decoder's own reason for refusing the input; the handler gets it in `on_error`
    /// (inside [`Error::Frame`](crate::Error::Frame)) and the stream closes as for any
    /// framing error, so bad input need not reach `on_read` as a record.
    ///
    /// ```
    /// use eventmux::framing::{Decoder, Frame, FrameError};
    ///
    /// #[derive(Debug)]
    /// struct NotAscii { at: usize }
    /// impl std::fmt::Display for NotAscii {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "a byte that is not ASCII at {}", self.at)
    ///     }
    /// }
    /// impl std::error::Error for NotAscii {}
    ///
    /// /// Lines of ASCII only.
    /// #[derive(Clone)]
    /// struct AsciiLines;
    /// impl Decoder for AsciiLines {
    ///     fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
    ///         if let Some(at) = buf.iter().position(|b| !b.is_ascii()) {
    ///             return Err(FrameError::custom(NotAscii { at }));
    ///         }
    ///         Ok(buf.iter().position(|&b| b == b'\n').map(|end| Frame::new(0..end, end + 1)))
    ///     }
    ///     fn fresh(&self) -> Box<dyn Decoder> {
    ///         Box::new(AsciiLines)
    ///     }
    /// }
    ///
    /// let error = AsciiLines.decode("é\n".as_bytes(), usize::MAX).unwrap_err();
    /// assert_eq!(error.custom_ref::<NotAscii>().map(|e| e.at), Some(0));
    /// ```
    pub fn custom(reason: impl std::error::Error + Send + Sync + 'static) -> FrameError {
        FrameError::Custom(CustomReason(Arc::new(reason)))
    }

    /// The custom reason, if this is one of type `E`.
    ///
    /// ```
    /// use eventmux::framing::FrameError;
    /// let error = FrameError::custom(std::fmt::Error);
    /// assert!(error.custom_ref::<std::fmt::Error>().is_some());
    /// assert!(FrameError::NoProgress.custom_ref::<std::fmt::Error>().is_none());
    /// ```
    pub fn custom_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            FrameError::Custom(CustomReason(reason)) => reason.downcast_ref::<E>(),
            _ => None,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { size, limit } => {
                write!(
                    f,
                    "record of {size} bytes is larger than the limit of {limit}"
                )
            }
            FrameError::BadLength(n) => write!(f, "length prefix gives a negative size ({n})"),
            FrameError::BadHttp(why) => write!(f, "malformed HTTP message: {why}"),
            FrameError::NoProgress => write!(f, "decoder returned an empty record"),
            FrameError::OutOfBounds => write!(f, "decoder returned a record past its input"),
            FrameError::Custom(CustomReason(reason)) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// A rule that finds records in a stream.
///
/// The reactor calls [`decode`](Decoder::decode) with the bytes received and not yet
/// consumed, never with an empty buffer. Until it returns a record, every call sees the same bytes from the start,
/// possibly followed by more; after a record, the next call starts right after the record's
/// `consumed` bytes. A decoder may therefore remember how far it has already looked (and
/// should, so that a long record arriving in small pieces is not rescanned each time).
///
/// ```
/// use eventmux::framing::{Decoder, Frame, FrameError};
///
/// /// Records are terminated by a NUL byte.
/// #[derive(Clone, Default)]
/// struct NulTerminated { scanned: usize }
///
/// impl Decoder for NulTerminated {
///     fn decode(&mut self, buf: &[u8], _limit: usize) -> Result<Option<Frame>, FrameError> {
///         match buf[self.scanned..].iter().position(|&b| b == 0) {
///             Some(i) => {
///                 let end = self.scanned + i;
///                 self.scanned = 0;
///                 Ok(Some(Frame::new(0..end, end + 1)))
///             }
///             None => {
///                 self.scanned = buf.len();
///                 Ok(None)
///             }
///         }
///     }
///     fn fresh(&self) -> Box<dyn Decoder> {
///         Box::new(NulTerminated::default())
///     }
/// }
/// ```
pub trait Decoder: std::any::Any {
    /// Finds the first record at the start of `buf`; `Ok(None)` if more bytes are needed.
    /// `limit` is the handle's `max_size` (`usize::MAX` if unbounded), for rules that can
    /// refuse an oversized record before it has arrived.
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError>;

    /// The stream ended with `buf` unconsumed: return a last record if the rule makes one of
    /// what is left (the default makes none, and the bytes go to `on_read_last`).
    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        let _ = buf;
        None
    }

    /// A new decoder of the same rule with fresh state, for a newly accepted connection.
    fn fresh(&self) -> Box<dyn Decoder>;

    /// The rule's own size limit, which replaces the handle's `max_size` while the rule is
    /// in force (see [`Framing::max_size`]). The default has none.
    fn max_size(&self) -> Option<usize> {
        None
    }

    /// The size of the smallest record the rule can make (`fixed(n)`: `n`), so that a rule
    /// that can never fit its limit is refused when it is set. The default is 0.
    fn smallest_record(&self) -> usize {
        0
    }

    /// The rule this one wraps (a limit, a skip), so that
    /// [`Context::decoder`](crate::Context::decoder) can reach a custom decoder inside.
    fn inner(&mut self) -> Option<&mut dyn Decoder> {
        None
    }
}

/// A framing rule for a stream handle; see the [module docs](self).
///
/// ```
/// use eventmux::framing::{Endian, Framing, Size};
/// use eventmux::Options;
///
/// let lines = Options::new().framing(Framing::lines());
/// let frames = Options::new().framing(Framing::size(Size::new(4, Endian::Big)));
/// # let _ = (lines, frames);
/// ```
pub struct Framing {
    pub(crate) decoder: Box<dyn Decoder>,
}

impl Clone for Framing {
    /// A copy with fresh state, as an accepted connection gets.
    fn clone(&self) -> Framing {
        Framing {
            decoder: self.decoder.fresh(),
        }
    }
}

impl fmt::Debug for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Framing")
    }
}

impl Framing {
    /// Records end at `delimiter`, which is not included. Panics if `delimiter` is empty.
    pub fn split(delimiter: impl Into<Vec<u8>>) -> Framing {
        Framing::custom(split::Split::new(delimiter.into(), false))
    }

    /// Lines: split on `\n`, and strip a `\r` before it.
    pub fn lines() -> Framing {
        Framing::custom(split::Split::new(b"\n".to_vec(), true))
    }

    /// Length-prefixed records; `on_read` gets the payload only.
    pub fn size(size: Size) -> Framing {
        Framing::custom(size)
    }

    /// Records of exactly `n` bytes. `fixed(0)` is one empty record, at once: `on_read`
    /// gets an empty slice, and what follows waits (kept as input, bounded by `max_size`)
    /// for the handler to set the next rule. That is what a length of 0 read off a header
    /// (an HTTP body with `Content-Length: 0`, a memcached value of 0 bytes) should give.
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// let mut empty = Framing::fixed(0).into_decoder();
    /// let frame = empty.decode(b"next", usize::MAX).unwrap().unwrap();
    /// assert_eq!((frame.payload(), frame.consumed()), (0..0, 0));
    /// assert!(empty.decode(b"next", usize::MAX).unwrap().is_none()); // one record only
    /// ```
    pub fn fixed(n: usize) -> Framing {
        Framing::custom(fixed::Fixed::new(n))
    }

    /// HTTP/1.x messages: the head up to the blank line, plus the body when
    /// `Content-Length` or `Transfer-Encoding: chunked` gives one. The record is the whole
    /// message as received (chunked bodies keep their chunk framing).
    pub fn http() -> Framing {
        Framing::custom(http::Http::default())
    }

    /// Nothing until the stream ends, then everything, as one record.
    pub fn last() -> Framing {
        Framing::custom(last::Last)
    }

    /// Records are the first capture group (or the whole match, if the pattern has no
    /// group) of `pattern`, searched over the stream. Bytes before a match are skipped;
    /// a match is taken as soon as it is found, so end the pattern with a terminator
    /// (`(.*?)\n`, not `(a+)`), or records will depend on how the bytes arrived.
    #[cfg(feature = "regex")]
    pub fn regex(pattern: &str) -> Result<Framing, regex::Error> {
        Ok(Framing::custom(regexp::Regexp::new(pattern)?))
    }

    /// Your own rule.
    pub fn custom(decoder: impl Decoder) -> Framing {
        Framing {
            decoder: Box::new(decoder),
        }
    }

    /// This rule with its own size limit: no record of it may be larger than `bytes`
    /// (an incomplete one is refused as soon as it is), whatever the handle's `max_size`,
    /// which it replaces while the rule is in force. So request lines can be held to a few
    /// KiB on a connection that takes 1 MiB bodies. A rule that cannot fit (`fixed(n)`
    /// with `n` above the limit) is refused when it is set.
    ///
    /// ```
    /// use eventmux::framing::{FrameError, Framing};
    /// let mut lines = Framing::lines().max_size(8).into_decoder();
    /// assert_eq!(lines.max_size(), Some(8));
    /// // A line that reaches 9 bytes without its end is refused as soon as it does:
    /// let refused = lines.decode(b"123456789", usize::MAX).unwrap_err();
    /// assert!(matches!(refused, FrameError::TooLarge { limit: 8, .. }));
    /// ```
    pub fn max_size(self, bytes: usize) -> Framing {
        Framing::custom(limited::Limited {
            inner: self.decoder,
            limit: bytes,
        })
    }

    /// Throws the next `bytes` bytes away as they arrive (consumed at once, never
    /// buffered), then frames by `then`. memcached swallows a refused value's block this
    /// way; [`Context::skip`](crate::Context::skip) does the same before the handle's
    /// current rule.
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// let mut rule = Framing::skip(3, Framing::lines()).into_decoder();
    /// let skipped = rule.decode(b"xy", usize::MAX).unwrap().unwrap();
    /// assert!(skipped.is_skip() && skipped.consumed() == 2);
    /// let skipped = rule.decode(b"zline\n", usize::MAX).unwrap().unwrap();
    /// assert_eq!(skipped.consumed(), 1);
    /// let line = rule.decode(b"line\n", usize::MAX).unwrap().unwrap();
    /// assert_eq!(line.payload(), 0..4);
    /// ```
    pub fn skip(bytes: u64, then: Framing) -> Framing {
        Framing::custom(skip::Skip {
            remaining: bytes,
            then: then.decoder,
        })
    }

    /// The rule's decoder, to run it outside a reactor (tests, fuzzing, benchmarks).
    ///
    /// ```
    /// use eventmux::framing::Framing;
    /// let mut lines = Framing::lines().into_decoder();
    /// let frame = lines.decode(b"hi\r\nrest", usize::MAX).unwrap().unwrap();
    /// assert_eq!(frame.payload(), 0..2);
    /// assert_eq!(frame.consumed(), 4);
    /// ```
    pub fn into_decoder(self) -> Box<dyn Decoder> {
        self.decoder
    }
}

/// Test support: feeds `chunks` through a decoder the way the reactor does (records are
/// taken from the start; the unconsumed tail waits for the next chunk) and collects the
/// records, then what `decode_eof` makes of the rest, and the rest.
#[cfg(test)]
pub(crate) fn frame_chunks(
    framing: &Framing,
    chunks: &[&[u8]],
) -> Result<(Vec<Vec<u8>>, Vec<u8>), FrameError> {
    let mut decoder = framing.decoder.fresh();
    let mut pending = Vec::new();
    let mut records = Vec::new();
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        // As the reactor does: never an empty buffer, and the rule's own limit if it has one.
        while !pending.is_empty() {
            let limit = decoder.max_size().unwrap_or(usize::MAX);
            // A refusal's reported size depends on how much had arrived: compare the rest.
            let decoded = decoder.decode(&pending, limit).map_err(|e| match e {
                FrameError::TooLarge { limit, .. } => FrameError::TooLarge {
                    size: limit as u64 + 1,
                    limit,
                },
                other => other,
            });
            let Some(frame) = decoded? else {
                if pending.len() > limit {
                    // However the stream was cut, the refusal is the same.
                    return Err(FrameError::TooLarge {
                        size: limit as u64 + 1,
                        limit,
                    });
                }
                break;
            };
            frame.check(pending.len())?;
            assert!(frame.consumed > 0);
            if frame.consumed > limit {
                return Err(FrameError::TooLarge {
                    size: limit as u64 + 1,
                    limit,
                });
            }
            if !frame.is_skip() {
                records.push(pending[frame.payload()].to_vec());
            }
            pending.drain(..frame.consumed);
        }
    }
    if let Some(frame) = decoder.decode_eof(&pending) {
        records.push(pending[frame.payload].to_vec());
        pending.drain(..frame.consumed);
    }
    Ok((records, pending))
}

/// Property support: splits `input` at `cuts` (positions, any order) into chunks.
#[cfg(test)]
pub(crate) fn cut(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(input[start..p].to_vec());
        start = p;
    }
    chunks.push(input[start..].to_vec());
    chunks
}

#[cfg(test)]
pub(crate) fn same_records_however_cut(framing: &Framing, input: &[u8], cuts: &[usize]) {
    let whole = frame_chunks(framing, &[input]);
    let chunks = cut(input, cuts);
    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let pieces = frame_chunks(framing, &refs);
    assert_eq!(whole, pieces, "cut at {cuts:?}");
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(whole, frame_chunks(framing, &bytewise), "byte by byte");
}
