//! The output queue of a datagram handle: whole datagrams waiting for the socket, each with
//! its destination (none on a connected socket). The same structure holds received
//! datagrams that a pause held back, each with its sender.
//!
//! Bytes live in one reusable arena and the queue holds ranges into it, so queueing does not
//! allocate in steady state. The sent prefix of the arena is reclaimed once it is half the
//! arena, so a backlog that never empties holds at most about twice what is queued (which
//! is what `max_output` bounds).
//!
//! A flush cuts the queue into the messages of one `sendmmsg(2)` ([`DatagramQueue::plan`]):
//! on a UDP socket a run of datagrams to one destination, all of one size but the last
//! (which may be shorter, not empty), becomes one segmented message (`UDP_SEGMENT`), until
//! the kernel or the route refuses that once, which turns it off for the queue.

use std::collections::VecDeque;
use std::ops::Range;

use socket2::SockAddr;

use crate::Address;

/// Messages per `sendmmsg(2)` call.
pub(crate) const SEND_MESSAGES: usize = 64;
/// Datagrams per `sendmmsg(2)` call, counting each segment of a segmented message.
pub(crate) const SEND_DATAGRAMS: usize = 256;
/// Datagrams joined into one segmented message at most (the kernel's `UDP_MAX_SEGMENTS`
/// has been 64 since UDP segmentation came in, Linux 4.18).
const MAX_SEGMENTS: usize = 64;
/// Largest datagram sent segmented: fits a 1500-byte MTU under IPv4 or IPv6 headers (a
/// segment must fit the path MTU, or the kernel refuses the message with `EINVAL`).
const MAX_SEGMENT_SIZE: usize = 1400;
/// Largest segmented message in all (a UDP length is 16 bits).
const MAX_SEGMENTED_BYTES: usize = 65_000;

/// One message of a `sendmmsg(2)` call: the next `count` queued datagrams, to the first
/// one's destination; with `segment_size > 0` they go as one `UDP_SEGMENT` message cut
/// every `segment_size` bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) count: usize,
    pub(crate) segment_size: u16,
}

#[derive(Default)]
pub(crate) struct DatagramQueue {
    arena: Vec<u8>,
    /// The position `arena[0]` has in the ranges (which count from the arena's first use,
    /// so reclaiming a prefix need not rewrite them).
    base: usize,
    queued: VecDeque<(Range<usize>, Option<Address>)>,
    bytes: usize,
    segmentation_refused: bool,
}

impl DatagramQueue {
    /// Datagrams queued (what `buflen` reports for datagram handles).
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Bytes queued, for the output bound.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn push(&mut self, data: &[u8], to: Option<Address>) {
        let start = self.base + self.arena.len();
        self.arena.extend_from_slice(data);
        self.queued.push_back((start..start + data.len(), to));
        self.bytes += data.len();
    }

    /// The queued datagrams, oldest first, as `sendmmsg` wants them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&SockAddr>)> {
        self.queued.iter().map(|(range, to)| {
            (
                &self.arena[range.start - self.base..range.end - self.base],
                to.as_ref().map(Address::as_sockaddr),
            )
        })
    }

    /// Cuts the oldest queued datagrams into the messages of one `sendmmsg` call (at most
    /// `messages.len()` messages and [`SEND_DATAGRAMS`] datagrams); returns how many
    /// messages it filled in. `segment`: the socket takes `UDP_SEGMENT` (UDP on Linux).
    pub(crate) fn plan(&self, segment: bool, messages: &mut [Message]) -> usize {
        let segment = segment && !self.segmentation_refused;
        plan_messages(
            self.queued
                .iter()
                .map(|(range, to)| (range.len(), to.as_ref())),
            segment,
            messages,
        )
    }

    /// The socket or its route refused a segmented send: send one datagram per message
    /// from now on.
    pub(crate) fn refuse_segmentation(&mut self) {
        self.segmentation_refused = true;
    }

    /// Drops the `n` oldest datagrams (sent, or failed for good).
    pub(crate) fn pop(&mut self, n: usize) {
        for _ in 0..n {
            if let Some((range, _)) = self.queued.pop_front() {
                self.bytes -= range.len();
            }
        }
        match self.queued.front() {
            None => {
                self.arena.clear();
                self.base = 0;
            }
            Some((range, _)) => {
                let sent = range.start - self.base;
                if sent > 0 && sent >= self.arena.len() / 2 {
                    // Each byte moves a bounded number of times, however long the backlog.
                    self.arena.drain(..sent);
                    self.base += sent;
                }
            }
        }
    }

    /// Empties the queue; returns how many datagrams were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.queued.len();
        self.queued.clear();
        self.arena.clear();
        self.base = 0;
        self.bytes = 0;
        dropped
    }
}

/// The grouping rule of [`DatagramQueue::plan`], over `(length, destination)` pairs.
fn plan_messages<'a>(
    datagrams: impl Iterator<Item = (usize, Option<&'a Address>)>,
    segment: bool,
    messages: &mut [Message],
) -> usize {
    let mut datagrams = datagrams.peekable();
    let mut filled = 0;
    let mut used = 0;
    while filled < messages.len() && used < SEND_DATAGRAMS {
        let Some((len, to)) = datagrams.next() else {
            break;
        };
        let first = used;
        used += 1;
        if segment && (1..=MAX_SEGMENT_SIZE).contains(&len) {
            let mut total = len;
            while used < SEND_DATAGRAMS && used - first < MAX_SEGMENTS {
                let next = match datagrams.peek() {
                    Some(&(next, next_to))
                        if next_to == to
                            && next > 0
                            && next <= len
                            && total + next <= MAX_SEGMENTED_BYTES =>
                    {
                        next
                    }
                    _ => break,
                };
                datagrams.next();
                used += 1;
                total += next;
                if next < len {
                    // Only the last segment may be shorter.
                    break;
                }
            }
        }
        let count = used - first;
        messages[filled] = Message {
            count,
            segment_size: if count > 1 { len as u16 } else { 0 },
        };
        filled += 1;
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(port: u16) -> Address {
        std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()
    }

    #[test]
    fn datagrams_keep_their_bounds_order_and_destinations() {
        let mut queue = DatagramQueue::default();
        let to = address(9);
        queue.push(b"one", Some(to.clone()));
        queue.push(b"", None);
        queue.push(b"three", None);
        assert_eq!((queue.len(), queue.bytes()), (3, 8));
        let datagrams: Vec<&[u8]> = queue.iter().map(|(data, _)| data).collect();
        assert_eq!(datagrams, [&b"one"[..], b"", b"three"]);
        assert_eq!(queue.iter().next().unwrap().1, Some(to.as_sockaddr()));
        queue.pop(2);
        assert_eq!(queue.iter().next().unwrap().0, b"three");
        queue.pop(1);
        assert!(queue.is_empty() && queue.arena.is_empty());
    }

    #[test]
    fn a_backlog_that_never_empties_stays_near_what_is_queued() {
        let mut queue = DatagramQueue::default();
        for round in 0..10_000u32 {
            queue.push(&round.to_be_bytes(), None);
            queue.push(&round.to_be_bytes(), None);
            queue.pop(1);
            assert_eq!(queue.iter().next().unwrap().0.len(), 4);
        }
        assert_eq!(queue.len(), 10_000);
        assert!(
            queue.arena.len() <= 2 * queue.bytes() + 8,
            "arena {} for {} queued bytes",
            queue.arena.len(),
            queue.bytes()
        );
        let first: Vec<u8> = queue.iter().next().unwrap().0.to_vec();
        assert_eq!(first, 5_000u32.to_be_bytes());
    }

    fn plan_of(datagrams: &[(usize, Option<&Address>)], segment: bool) -> Vec<Message> {
        let mut messages = [Message::default(); SEND_MESSAGES];
        let n = plan_messages(datagrams.iter().copied(), segment, &mut messages);
        messages[..n].to_vec()
    }

    fn message(count: usize, segment_size: u16) -> Message {
        Message {
            count,
            segment_size,
        }
    }

    #[test]
    fn runs_to_one_destination_join_with_a_shorter_last_segment() {
        let (a, b) = (address(1), address(2));
        let datagrams = [
            (100, Some(&a)),
            (100, Some(&a)),
            (60, Some(&a)), // shorter: ends the run
            (100, Some(&a)),
            (100, Some(&b)), // another destination
            (0, Some(&b)),   // empty datagrams go alone
        ];
        assert_eq!(
            plan_of(&datagrams, true),
            [message(3, 100), message(1, 0), message(1, 0), message(1, 0)]
        );
        let one_each = vec![message(1, 0); 6];
        assert_eq!(plan_of(&datagrams, false), one_each, "without segmentation");
    }

    #[test]
    fn segmented_messages_respect_the_kernel_limits() {
        let a = address(1);
        // 65 equal datagrams: 64 segments at most per message.
        let many = vec![(10, Some(&a)); 65];
        assert_eq!(plan_of(&many, true), [message(64, 10), message(1, 0)]);
        // Too large to segment, and a total past 65,000 bytes.
        assert_eq!(
            plan_of(&[(1401, Some(&a)), (1401, Some(&a))], true),
            [message(1, 0), message(1, 0)]
        );
        let big = vec![(1400, Some(&a)); 50];
        let plan = plan_of(&big, true);
        assert_eq!(
            plan[0],
            message(46, 1400),
            "46 * 1400 <= 65,000 < 47 * 1400"
        );
        // A longer datagram after a run starts a new message.
        assert_eq!(
            plan_of(&[(10, None), (20, None)], true),
            [message(1, 0), message(1, 0)]
        );
    }

    #[test]
    fn one_call_takes_at_most_its_messages_and_datagrams() {
        let single = vec![(10, None); 300];
        assert_eq!(plan_of(&single, false).len(), SEND_MESSAGES);
        let total: usize = plan_of(&single, true).iter().map(|m| m.count).sum();
        assert_eq!(total, SEND_DATAGRAMS);
    }
}
