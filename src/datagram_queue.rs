//! The output queue of a datagram handle: whole datagrams waiting for the socket, each with
//! its destination (none on a connected socket). The same structure holds received
//! datagrams that a pause held back, each with its sender. Bytes live in one reusable arena and the
//! queue holds ranges into it, so queueing does not allocate in steady state. A flush hands
//! up to 64 messages (256 datagrams) to one `sendmmsg(2)`; on a UDP socket, runs of
//! datagrams to one destination go as single segmented messages (`UDP_SEGMENT`), until the
//! kernel or the route refuses that once, which turns it off for the queue.

use std::collections::VecDeque;
use std::ops::Range;

use socket2::SockAddr;

use crate::Address;

#[derive(Default)]
pub(crate) struct DatagramQueue {
    arena: Vec<u8>,
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
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        self.queued.push_back((start..self.arena.len(), to));
        self.bytes += data.len();
    }

    /// The queued datagrams, oldest first, as `sendmmsg` wants them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&SockAddr>)> {
        self.queued.iter().map(|(range, to)| {
            (
                &self.arena[range.clone()],
                to.as_ref().map(Address::as_sockaddr),
            )
        })
    }

    /// Whether runs of datagrams may still be sent segmented (not refused yet).
    pub(crate) fn may_segment(&self) -> bool {
        !self.segmentation_refused
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
        if self.queued.is_empty() {
            self.arena.clear();
        }
    }

    /// Empties the queue; returns how many datagrams were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.queued.len();
        self.queued.clear();
        self.arena.clear();
        self.bytes = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_keep_their_bounds_order_and_destinations() {
        let mut queue = DatagramQueue::default();
        let to: Address = "127.0.0.1:9"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into();
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
}
