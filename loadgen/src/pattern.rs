//! The byte checker: every TCP connection of the load sends its own stretch of one
//! pseudo-random byte sequence ([`Pattern`]), and every byte echoed back is compared with
//! the byte sent at that position ([`Pattern::check`]), so lost, duplicated, reordered or
//! crossed bytes show as a [`Mismatch`].

use std::fmt;

/// Period of the pattern: a prime, so that messages of any power-of-two size land on ever
/// different parts of it.
const PERIOD: usize = 65_521;
/// How far apart in the pattern connections start, so that crossed streams show.
const CONNECTION_STRIDE: u64 = 7_919;

/// A pseudo-random byte sequence that repeats every 65,521 bytes, stored with enough of
/// its start repeated at the end that any window up to `largest_window` bytes is one
/// contiguous slice. Byte `p` of connection `c`'s stream is byte
/// `c * CONNECTION_STRIDE + p` of the sequence.
#[derive(Debug)]
pub(crate) struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    /// A pattern whose windows may be up to `largest_window` bytes long.
    pub(crate) fn new(largest_window: usize) -> Pattern {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let period: Vec<u8> = (0..PERIOD)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let bytes = period
            .iter()
            .cycle()
            .take(PERIOD + largest_window)
            .copied()
            .collect();
        Pattern { bytes }
    }

    /// The `len` bytes connection `connection` sends from byte `position` of its stream.
    ///
    /// # Panics
    ///
    /// If `len` is larger than the pattern was made for.
    pub(crate) fn window(&self, connection: usize, position: u64, len: usize) -> &[u8] {
        let start = connection as u64 * CONNECTION_STRIDE + position;
        let start = (start % PERIOD as u64) as usize;
        &self.bytes[start..start + len]
    }

    /// Whether `received`, echoed to connection `connection` from byte `position` of its
    /// stream, is what it sent; otherwise the first byte that differs.
    pub(crate) fn check(
        &self,
        connection: usize,
        position: u64,
        received: &[u8],
    ) -> Result<(), Mismatch> {
        let sent = self.window(connection, position, received.len());
        match received.iter().zip(sent).position(|(r, s)| r != s) {
            None => Ok(()),
            Some(at) => Err(Mismatch {
                position: position + at as u64,
                received: received[at],
                sent: sent[at],
            }),
        }
    }
}

/// An echoed byte that is not the one sent at its position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    position: u64,
    received: u8,
    sent: u8,
}

impl Mismatch {
    /// The byte's position in its connection's stream.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "echoed byte {} is {:#04x}, but {:#04x} was sent",
            self.position, self.received, self.sent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap_around_the_period() {
        let pattern = Pattern::new(100);
        let across = pattern.window(0, PERIOD as u64 - 50, 100);
        assert_eq!(&across[50..], pattern.window(0, 0, 50));
        assert_eq!(
            pattern.window(0, PERIOD as u64 * 3 + 7, 10),
            pattern.window(0, 7, 10)
        );
    }

    #[test]
    fn the_first_wrong_byte_is_reported_at_its_stream_position() {
        let pattern = Pattern::new(64);
        let mut echoed = pattern.window(2, 500, 64).to_vec();
        echoed[40] ^= 0xff;
        echoed[50] ^= 0xff;
        let mismatch = pattern.check(2, 500, &echoed).unwrap_err();
        assert_eq!(mismatch.position(), 540);
        assert_eq!(
            mismatch.to_string(),
            format!(
                "echoed byte 540 is {:#04x}, but {:#04x} was sent",
                echoed[40],
                echoed[40] ^ 0xff
            )
        );
    }

    #[test]
    fn a_repeated_message_does_not_pass() {
        let pattern = Pattern::new(128);
        let first = pattern.window(0, 0, 64).to_vec();
        // The echo of bytes 0..64 arriving again where bytes 64..128 belong.
        assert!(pattern.check(0, 64, &first).is_err());
    }

    #[test]
    fn connections_send_different_bytes() {
        let pattern = Pattern::new(64);
        assert_ne!(pattern.window(0, 0, 64), pattern.window(1, 0, 64));
        let sent = pattern.window(3, 1000, 16).to_vec();
        assert!(pattern.check(3, 1000, &sent).is_ok());
        assert!(
            pattern.check(4, 1000, &sent).is_err(),
            "another connection's bytes"
        );
    }
}
