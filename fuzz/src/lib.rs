//! Shared driver for the framing fuzz targets.
//!
//! A fuzz input is read as
//!
//! ```text
//! [rule parameters (target-specific)] [limit selector] [plan length k] [k plan bytes] [stream...]
//! ```
//!
//! Each target reads its own parameters with [`Input`], builds a [`Framing`] and hands the
//! rest to [`check_framing`], which reads the limit and the read plan, then feeds the stream
//! through the rule's decoder twice:
//!
//! * cut into reads as the plan says, the way the reactor (`src/deliver.rs`) drives a decoder:
//!   each read is appended to the pending bytes, `decode` is called while it yields records
//!   (never on an empty buffer), each record's `consumed` bytes are drained, and at the end
//!   `decode_eof` gets what is left. A plan byte can also ask for `decode` to be called a
//!   second time on the very same bytes after it said "need more", as the reactor does when a
//!   read leaves a partial record behind (`deliver_read` then `deliver_pending`);
//! * all at once, with a fresh decoder of the same rule (`Framing::clone`, i.e. `fresh()`).
//!
//! Every frame is checked (`consumed >= 1`, payload inside `consumed` and inside the buffer),
//! and the two runs must give the same records and the same ending (the same error, or the
//! same last record and leftover bytes).
//!
//! The reactor's own bound checks around the decoder (a pending buffer longer than `limit`
//! with no record, a record whose `consumed` exceeds `limit`) are deliberately not modelled:
//! their outcome legitimately depends on how the bytes arrived (the size they report is the
//! buffer length at the time, and a long malformed HTTP head is an overrun when it trickles
//! in but `BadHttp` when it arrives whole). `limit` is still passed to `decode`, so the rules'
//! own `TooLarge` refusals (Size, Fixed, Http) are exercised and must not depend on the cuts.

use eventmux::framing::{Decoder, Frame, FrameError, Framing};

/// A cursor over the fuzz input that yields zeroes once exhausted.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// The next byte, or 0 when the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `n` next bytes (fewer if the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// The next 8 bytes as a little-endian i64 (missing bytes are zero).
    pub fn i64(&mut self) -> i64 {
        let mut raw = [0u8; 8];
        let got = self.bytes(8);
        raw[..got.len()].copy_from_slice(got);
        i64::from_le_bytes(raw)
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// The `limit` (a handle's `max_size`) passed to `decode`, picked by one input byte:
/// small bounds so that `TooLarge` is reachable, and `usize::MAX` (`max_size(0)`, unbounded).
pub const LIMITS: [usize; 4] = [4096, 256, 16, usize::MAX];

/// One read of the stream.
#[derive(Clone, Copy, Debug)]
pub struct Read {
    /// How many bytes the read returns (at least 1: a read of 0 is the end of the stream).
    pub len: usize,
    /// After `decode` says "need more", ask it once more about the same bytes.
    pub ask_again: bool,
}

impl Read {
    /// Plan byte: bits 0-5 give 1..=64 bytes, bit 6 multiplies by 64, bit 7 asks again.
    fn from_byte(b: u8) -> Read {
        let len = usize::from(b & 0x3f) + 1;
        Read {
            len: if b & 0x40 != 0 { len * 64 } else { len },
            ask_again: b & 0x80 != 0,
        }
    }
}

/// How a run ended after its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The stream ended: `decode_eof`'s record (if any) and the bytes still unconsumed.
    Eof {
        last: Option<Vec<u8>>,
        rest: Vec<u8>,
    },
    /// `decode` refused the stream.
    Failed(FrameError),
}

/// What a handler would have seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub records: Vec<Vec<u8>>,
    pub end: End,
}

/// Panics unless `frame` is a valid answer about `len` bytes.
fn check_frame(frame: &Frame, len: usize, what: &str) {
    assert!(frame.consumed() >= 1, "{what}: consumed 0 bytes: {frame:?}");
    assert!(
        frame.consumed() <= len,
        "{what}: consumed past the {len} bytes given: {frame:?}"
    );
    assert!(
        frame.payload().start <= frame.payload().end,
        "{what}: reversed payload: {frame:?}"
    );
    assert!(
        frame.payload().end <= frame.consumed(),
        "{what}: payload ends past consumed: {frame:?}"
    );
}

/// Feeds `stream` through `decoder`, cut into reads by cycling through `plan` (all at once if
/// the plan is empty), and collects what a handler would see.
pub fn feed(decoder: &mut dyn Decoder, stream: &[u8], plan: &[Read], limit: usize) -> Outcome {
    let mut pending: Vec<u8> = Vec::new();
    let mut records = Vec::new();
    let whole = [Read {
        len: stream.len().max(1),
        ask_again: false,
    }];
    let plan = if plan.is_empty() { &whole[..] } else { plan };
    let mut offset = 0;
    for read in plan.iter().cycle() {
        if offset >= stream.len() {
            break;
        }
        let end = (offset + read.len).min(stream.len());
        pending.extend_from_slice(&stream[offset..end]);
        offset = end;
        let mut asked_again = false;
        // The reactor never asks about an empty buffer.
        while !pending.is_empty() {
            // A rule with its own limit (Framing::max_size) is told that one.
            let limit = decoder.max_size().unwrap_or(limit);
            match decoder.decode(&pending, limit) {
                Ok(Some(frame)) => {
                    check_frame(&frame, pending.len(), "decode");
                    // A skip frame throws its bytes away (Framing::skip).
                    if !frame.is_skip() {
                        records.push(pending[frame.payload()].to_vec());
                    }
                    pending.drain(..frame.consumed());
                    asked_again = false;
                }
                Ok(None) if read.ask_again && !asked_again => asked_again = true,
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        records,
                        end: End::Failed(error),
                    }
                }
            }
        }
    }
    // The reactor calls decode_eof even with nothing left.
    let last = decoder.decode_eof(&pending).map(|frame| {
        check_frame(&frame, pending.len(), "decode_eof");
        let record = pending[frame.payload()].to_vec();
        pending.drain(..frame.consumed());
        record
    });
    Outcome {
        records,
        end: End::Eof {
            last,
            rest: pending,
        },
    }
}

/// Reads the limit and the read plan from `input`, then checks that `framing` cuts the rest
/// of the input the same however it arrives (see the crate docs).
pub fn check_framing(framing: Framing, mut input: Input<'_>) {
    let limit = LIMITS[usize::from(input.byte() % 4)];
    let plan_len = usize::from(input.byte() % 16);
    let plan: Vec<Read> = input
        .bytes(plan_len)
        .iter()
        .map(|&b| Read::from_byte(b))
        .collect();
    let stream = input.rest();

    let mut reference = framing.clone().into_decoder();
    let mut decoder = framing.into_decoder();
    let cut = feed(decoder.as_mut(), stream, &plan, limit);
    let whole = feed(reference.as_mut(), stream, &[], limit);
    assert_eq!(
        cut, whole,
        "records differ between the cut stream (plan {plan:?}, limit {limit}) and the whole stream"
    );
}
