//! The per-handle input buffer: bytes read but not yet handed over, because they are the
//! start of a record that has not fully arrived (or records held back while reading is
//! paused). Without framing it stays empty: reads go straight from the shared read buffer
//! to `on_read`. Once emptied it gives its buffer back to the reactor's [`BufferPool`], so
//! an idle framed connection holds no buffer.

use super::buffer_pool::BufferPool;

/// Received bytes waiting for the rest of their record; `buf[start..]` is live.
#[derive(Default)]
pub(crate) struct InputBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl InputBuffer {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn extend(&mut self, data: &[u8], pool: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Reclaim the consumed prefix once it is at least half: each byte moves a
            // bounded number of times.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Drops the first `n` live bytes (a record that was handed over).
    pub(crate) fn consume(&mut self, n: usize, pool: &mut BufferPool) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.clear(pool);
        }
    }

    /// Drops every live byte and gives the buffer back to `pool`.
    pub(crate) fn clear(&mut self, pool: &mut BufferPool) {
        self.start = 0;
        pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::{BufferPool, InputBuffer};

    #[test]
    fn consume_then_extend_keeps_the_live_bytes_in_order() {
        let mut input = InputBuffer::default();
        let pool = &mut BufferPool::default();
        input.extend(b"abcdef", pool);
        input.consume(4, pool);
        assert_eq!(input.as_slice(), b"ef");
        input.extend(b"gh", pool);
        assert_eq!(input.as_slice(), b"efgh");
        input.consume(4, pool);
        assert!(input.is_empty());
        assert_eq!(
            input.buf.capacity(),
            0,
            "an empty input buffer holds no memory"
        );
    }
}
