//! Buffers that handles' queues lend and give back. A queue that drains returns its buffer
//! here instead of keeping its peak capacity, so an idle connection holds no buffer at all
//! (2,000 connections that each echoed 64 KiB once used to keep 28 KiB each), while a busy
//! one takes a warm buffer back on its next send and steady state allocates nothing.
//!
//! The pool is bounded twice: buffers larger than [`LARGEST_POOLED`] are freed rather than
//! kept, and it keeps at most [`POOLED_BYTES`] in all, so a burst that touched many buffers
//! leaves no more than that behind.

use std::collections::VecDeque;

use bytes::Bytes;

/// Buffers above this capacity are freed when they drain, not pooled.
pub(crate) const LARGEST_POOLED: usize = 256 * 1024;
/// The most capacity the pool keeps in all.
pub(crate) const POOLED_BYTES: usize = 4 * 1024 * 1024;
/// Chunk lists kept for reuse.
const POOLED_CHUNK_LISTS: usize = 1024;

/// Spare byte buffers and chunk lists, one pool per reactor.
#[derive(Default)]
pub(crate) struct BufferPool {
    buffers: Vec<Vec<u8>>,
    pooled_bytes: usize,
    chunk_lists: Vec<VecDeque<Bytes>>,
}

impl BufferPool {
    /// An empty buffer, with the capacity a previous user left in it when the pool has one.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        match self.buffers.pop() {
            Some(buffer) => {
                self.pooled_bytes -= buffer.capacity();
                buffer
            }
            None => Vec::new(),
        }
    }

    /// Takes back a buffer its queue no longer needs (its contents are dropped).
    pub(crate) fn give(&mut self, mut buffer: Vec<u8>) {
        let capacity = buffer.capacity();
        if capacity == 0 || capacity > LARGEST_POOLED || self.pooled_bytes + capacity > POOLED_BYTES
        {
            return;
        }
        buffer.clear();
        self.pooled_bytes += capacity;
        self.buffers.push(buffer);
    }

    /// An empty chunk list.
    pub(crate) fn take_chunk_list(&mut self) -> VecDeque<Bytes> {
        self.chunk_lists.pop().unwrap_or_default()
    }

    /// Takes back an emptied chunk list.
    pub(crate) fn give_chunk_list(&mut self, mut list: VecDeque<Bytes>) {
        if list.capacity() > 0 && self.chunk_lists.len() < POOLED_CHUNK_LISTS {
            list.clear();
            self.chunk_lists.push(list);
        }
    }

    /// Capacity held in pooled byte buffers.
    #[cfg(test)]
    pub(crate) fn pooled_bytes(&self) -> usize {
        self.pooled_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_with_its_capacity() {
        let mut pool = BufferPool::default();
        let mut buffer = Vec::with_capacity(4096);
        buffer.extend_from_slice(b"old");
        pool.give(buffer);
        assert_eq!(pool.pooled_bytes(), 4096);
        let again = pool.take();
        assert!(again.is_empty() && again.capacity() >= 4096);
        assert_eq!(pool.pooled_bytes(), 0);
        assert_eq!(pool.take().capacity(), 0, "an empty pool lends nothing");
    }

    #[test]
    fn large_buffers_and_overflow_are_freed() {
        let mut pool = BufferPool::default();
        pool.give(Vec::with_capacity(LARGEST_POOLED + 1));
        assert_eq!(pool.pooled_bytes(), 0);
        for _ in 0..(POOLED_BYTES / LARGEST_POOLED) + 4 {
            pool.give(Vec::with_capacity(LARGEST_POOLED));
        }
        assert!(pool.pooled_bytes() <= POOLED_BYTES);
    }
}
