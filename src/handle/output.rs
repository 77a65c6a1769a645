//! The per-handle output queue: what `send` has accepted and the kernel has not yet taken.
//!
//! Bytes given as a slice are appended to one reusable `tail` buffer, so steady-state
//! sends do not allocate; `Bytes` given by value are queued as they are (no copy). A flush
//! hands everything to one vectored write, oldest first, and [`OutputQueue::consume`]
//! drops what the kernel took. A queue that drains gives its buffers back to the reactor's
//! [`BufferPool`] and holds no memory while idle.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

use super::buffer_pool::BufferPool;

/// At most this many buffers go into one vectored write (well under `IOV_MAX`).
pub(crate) const MAX_IOVECS: usize = 64;

#[derive(Default)]
pub(crate) struct OutputQueue {
    /// Queued `Bytes`, all older than anything in `tail`.
    chunks: VecDeque<Bytes>,
    /// Copied bytes; `tail[tail_start..]` is still unsent.
    tail: Vec<u8>,
    tail_start: usize,
    len: usize,
}

impl OutputQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn push_slice(&mut self, data: &[u8], pool: &mut BufferPool) {
        if self.tail.capacity() == 0 {
            self.tail = pool.take();
        }
        let full = self.tail.len() + data.len() > self.tail.capacity();
        if full && self.tail_start > 0 && self.tail_start >= self.tail.len() / 2 {
            // Reclaim the sent prefix instead of growing. Only when it is at least half the
            // buffer, so each byte is moved a bounded number of times even when a backlog
            // never drains.
            self.tail.drain(..self.tail_start);
            self.tail_start = 0;
        }
        self.tail.extend_from_slice(data);
        self.len += data.len();
    }

    pub(crate) fn push_bytes(&mut self, data: Bytes, pool: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        if self.chunks.capacity() == 0 {
            self.chunks = pool.take_chunk_list();
        }
        if self.tail_start < self.tail.len() {
            // Keep order: what was copied before this chunk must go out before it.
            let pending = Bytes::copy_from_slice(&self.tail[self.tail_start..]);
            self.chunks.push_back(pending);
        }
        self.tail.clear();
        self.tail_start = 0;
        self.len += data.len();
        self.chunks.push_back(data);
    }

    /// Everything queued, if it lies in one buffer (the common case: copied sends only).
    pub(crate) fn contiguous(&self) -> Option<&[u8]> {
        self.chunks
            .is_empty()
            .then(|| &self.tail[self.tail_start..])
    }

    /// Fills `slices` with the oldest queued buffers; returns how many were filled.
    pub(crate) fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOVECS]) -> usize {
        let mut n = 0;
        for chunk in self.chunks.iter().take(MAX_IOVECS) {
            slices[n] = IoSlice::new(chunk);
            n += 1;
        }
        if n < MAX_IOVECS && self.tail_start < self.tail.len() {
            slices[n] = IoSlice::new(&self.tail[self.tail_start..]);
            n += 1;
        }
        n
    }

    /// Like [`io_slices`](OutputQueue::io_slices), but no more than `limit` bytes in all
    /// (the last slice is cut short); returns how many slices were filled and their bytes.
    pub(crate) fn io_slices_upto<'a>(
        &'a self,
        slices: &mut [IoSlice<'a>; MAX_IOVECS],
        limit: usize,
    ) -> (usize, usize) {
        let tail = (self.tail_start < self.tail.len()).then(|| &self.tail[self.tail_start..]);
        let buffers = self.chunks.iter().map(|c| &c[..]).chain(tail);
        let (mut n, mut offered) = (0, 0);
        for buffer in buffers.take(MAX_IOVECS) {
            if offered == limit {
                break;
            }
            let take = buffer.len().min(limit - offered);
            slices[n] = IoSlice::new(&buffer[..take]);
            n += 1;
            offered += take;
        }
        (n, offered)
    }

    /// Drops the first `n` queued bytes (what a write took). Once nothing is left, the
    /// buffers go back to `pool`, unless `keep` says a sweep will return them (a busy
    /// connection then reuses its buffer message after message; see [`OutputQueue::release`]).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize, pool: &mut BufferPool, keep: bool) {
        if n == self.len && self.chunks.is_empty() {
            // The common case: the whole tail was written.
            self.len = 0;
            self.tail.clear();
            self.tail_start = 0;
            if !keep {
                self.release(pool);
            }
            return;
        }
        self.consume_part(n, pool, keep);
    }

    /// [`OutputQueue::consume`] of part of the queue, or across chunks.
    fn consume_part(&mut self, mut n: usize, pool: &mut BufferPool, keep: bool) {
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(chunk) if chunk.len() <= n => {
                    n -= chunk.len();
                    self.chunks.pop_front();
                }
                Some(chunk) => {
                    bytes::Buf::advance(chunk, n);
                    return;
                }
                None => {
                    self.tail_start += n;
                    break;
                }
            }
        }
        if self.tail_start == self.tail.len() {
            self.tail.clear();
            self.tail_start = 0;
        }
        if self.len == 0 && !keep {
            self.release(pool);
        }
    }

    /// An empty queue's buffers go back to `pool`, so an idle connection holds none (the
    /// deadline sweep calls this for queues that `consume` kept).
    pub(crate) fn release(&mut self, pool: &mut BufferPool) {
        if self.len > 0 {
            return;
        }
        if self.tail.capacity() > 0 {
            self.tail_start = 0;
            pool.give(std::mem::take(&mut self.tail));
        }
        if self.chunks.capacity() > 0 {
            pool.give_chunk_list(std::mem::take(&mut self.chunks));
        }
    }

    /// Empties the queue; returns how many bytes were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.len;
        self.chunks.clear();
        self.tail.clear();
        self.tail_start = 0;
        self.len = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &OutputQueue) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = queue.io_slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn slices_and_bytes_keep_their_order() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_slice(b"ab", pool);
        queue.push_bytes(Bytes::from_static(b"cd"), pool);
        queue.push_slice(b"ef", pool);
        assert_eq!(queue.len(), 6);
        assert_eq!(drain(&queue), b"abcdef");
    }

    #[test]
    fn slices_up_to_a_limit_stop_inside_a_buffer() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_bytes(Bytes::from_static(b"abc"), pool);
        queue.push_slice(b"defg", pool);
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let (n, offered) = queue.io_slices_upto(&mut slices, 5);
        let got: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!((n, offered, &got[..]), (2, 5, &b"abcde"[..]));
        assert_eq!(queue.io_slices_upto(&mut slices, usize::MAX), (2, 7));
        assert_eq!(queue.io_slices_upto(&mut slices, 3), (1, 3));
    }

    #[test]
    fn consume_across_chunks_and_tail() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_bytes(Bytes::from_static(b"abc"), pool);
        queue.push_slice(b"defg", pool);
        queue.consume(4, pool, false);
        assert_eq!(queue.len(), 3);
        assert_eq!(drain(&queue), b"efg");
        queue.push_slice(b"h", pool);
        assert_eq!(drain(&queue), b"efgh");
        queue.consume(4, pool, false);
        assert!(queue.is_empty());
        assert_eq!(drain(&queue), b"");
    }

    #[test]
    fn tail_is_reused_without_growing() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_slice(&[0; 100], pool);
        queue.push_slice(&[0; 100], pool);
        let capacity = queue.tail.capacity();
        for _ in 0..1000 {
            queue.consume(100, pool, false);
            queue.push_slice(&[1; 100], pool);
        }
        assert_eq!(queue.tail.capacity(), capacity);
    }

    #[test]
    fn a_kept_buffer_serves_the_next_send_until_it_is_released() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_slice(&[0; 100], pool);
        queue.consume(100, pool, true);
        assert!(queue.is_empty());
        assert!(queue.tail.capacity() >= 100, "kept for the next send");
        assert_eq!(pool.pooled_bytes(), 0);
        queue.push_slice(&[1; 50], pool);
        queue.consume(50, pool, true);
        queue.release(pool);
        assert_eq!(queue.tail.capacity(), 0, "an idle queue holds nothing");
        assert!(pool.pooled_bytes() >= 100);
    }

    #[test]
    fn a_drained_queue_holds_no_buffer_and_the_next_send_reuses_it() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_slice(&[7; 64 * 1024], pool);
        queue.push_bytes(Bytes::from_static(b"chunk"), pool);
        queue.consume(64 * 1024 + 5, pool, false);
        assert!(queue.is_empty());
        assert_eq!((queue.tail.capacity(), queue.chunks.capacity()), (0, 0));
        queue.push_slice(b"again", pool);
        assert!(
            queue.tail.capacity() >= 64 * 1024,
            "the pooled buffer came back"
        );
        assert_eq!(queue.contiguous(), Some(&b"again"[..]));
    }

    #[test]
    fn clear_reports_what_was_dropped() {
        let mut queue = OutputQueue::default();
        let pool = &mut BufferPool::default();
        queue.push_slice(b"12345", pool);
        queue.push_bytes(Bytes::from_static(b"678"), pool);
        assert_eq!(queue.clear(), 8);
        assert!(queue.is_empty());
    }
}
