//! Tokens: the names by which handles are known.
//!
//! A [`Token`] is a slab index plus a generation. The reactor bumps the generation every
//! time it fills a slot, and checks it on every lookup, so a token kept after its handle
//! closed can never reach the handle that later reuses the slot: the lookup simply fails.
//! The index and generation travel through the kernel as epoll's 64-bit user data, which is
//! what lets the reactor drop a stale readiness event that was already in flight when the
//! slot was reused within one batch of events. A token also names the reactor that made it,
//! so a program with several reactors cannot apply one reactor's token to an unrelated
//! handle of another: the lookup fails, as for a stale token.

use std::fmt;

/// Identifies one handle registered in a [`Reactor`](crate::Reactor).
///
/// Tokens are cheap to copy and compare. A token outlives its handle harmlessly: every
/// operation through a stale token fails with [`Error::StaleToken`](crate::Error::StaleToken)
/// and no event is ever delivered for it.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use eventmux::{Handler, Reactor};
/// struct Nothing;
/// impl Handler for Nothing {}
///
/// let mut reactor = Reactor::new()?;
/// let token = reactor.add_handler(Nothing);
/// assert!(reactor.handle(token).is_some());
/// reactor.handle(token).unwrap().kill();
/// reactor.run_once(Some(std::time::Duration::ZERO))?;
/// assert!(reactor.handle(token).is_none()); // stale now, and forever
/// # Ok(()) }
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    index: u32,
    generation: u32,
    reactor: u32,
}

impl Token {
    pub(crate) fn new(index: usize, generation: u32, reactor: u32) -> Token {
        let index = u32::try_from(index).expect("more than 4 billion handles");
        Token {
            index,
            generation,
            reactor,
        }
    }

    /// The slot this token names. Slots are reused; use the whole token to compare handles.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many handles had been opened in this reactor when this one was (wrapping).
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The token as the 64-bit user data handed to the readiness backend.
    pub(crate) fn to_key(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The token of a readiness report `key` from reactor `reactor`'s selector.
    pub(crate) fn from_key(key: u64, reactor: u32) -> Token {
        Token {
            index: key as u32,
            generation: (key >> 32) as u32,
            reactor,
        }
    }

    /// The reactor this token belongs to.
    pub(crate) fn reactor(self) -> u32 {
        self.reactor
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token({}#{}@{})",
            self.index, self.generation, self.reactor
        )
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn key_round_trips_index_and_generation() {
        let token = Token::new(123_456, u32::MAX - 3, 9);
        assert_eq!(Token::from_key(token.to_key(), 9), token);
        assert_ne!(Token::new(7, 1, 1).to_key(), Token::new(7, 2, 1).to_key());
        assert_ne!(
            Token::new(7, 1, 1),
            Token::new(7, 1, 2),
            "another reactor's token"
        );
    }
}
