//! Timers: one-shot and repeating, each owned by a handle.
//!
//! A binary heap orders deadlines; a map holds the live timers. Cancelling only removes the
//! map entry and the heap entry is skipped when it surfaces (lazy deletion); when dead heap
//! entries outnumber live timers the heap is rebuilt, so a handler that re-arms an idle
//! timeout on every message cannot grow it without bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::Token;

/// Names one timer set through [`Context::set_timer`](crate::Context::set_timer) or
/// [`Context::set_interval`](crate::Context::set_interval); passed back to
/// [`Handler::on_timer`](crate::Handler::on_timer).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// Who a timer is for: the handler, or the reactor's own bookkeeping on the handle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimerPurpose {
    /// Delivered to `Handler::on_timer`.
    User,
    /// A graceful close has waited long enough for its queue to drain.
    Linger,
    /// A listener paused after EMFILE/ENFILE may try accepting again.
    AcceptRetry,
    /// A TLS handshake has had its time (`Options::handshake_timeout`).
    #[cfg(feature = "tls")]
    Handshake,
}

#[derive(Copy, Clone, Debug)]
pub(crate) struct Timer {
    pub(crate) token: Token,
    pub(crate) purpose: TimerPurpose,
    deadline: Instant,
    period: Option<Duration>,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: HashMap<u64, Timer>,
    next_id: u64,
}

impl Timers {
    pub(crate) fn insert(
        &mut self,
        token: Token,
        purpose: TimerPurpose,
        after: Duration,
        period: Option<Duration>,
    ) -> TimerId {
        let id = self.next_id;
        self.next_id += 1;
        // A zero period would be due again at once and hold the loop in one turn.
        let period = period.map(|p| p.max(Duration::from_micros(1)));
        let deadline = Instant::now() + after;
        self.live.insert(
            id,
            Timer {
                token,
                purpose,
                deadline,
                period,
            },
        );
        self.heap.push(Reverse((deadline, id)));
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live.len() {
            self.compact();
        }
        TimerId(id)
    }

    /// Returns the timer if it was still live.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<Timer> {
        self.live.remove(&id.0)
    }

    pub(crate) fn get(&self, id: TimerId) -> Option<&Timer> {
        self.live.get(&id.0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The earliest live deadline.
    #[inline]
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        if self.heap.is_empty() {
            return None;
        }
        self.first_live_deadline()
    }

    /// How long until the earliest live deadline (zero if it is past).
    #[inline]
    pub(crate) fn until_next(&mut self) -> Option<Duration> {
        self.next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The earliest deadline of a timer still set, dropping cancelled ones from the heap.
    fn first_live_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, id))) = self.heap.peek().copied() {
            match self.live.get(&id) {
                Some(timer) if timer.deadline == deadline => return Some(deadline),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes one timer due at `now`. A repeating timer is re-armed for its next period (a
    /// loop that fell behind skips missed periods rather than firing a burst).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, Timer)> {
        let deadline = self.next_deadline()?;
        if deadline > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        let timer = self.live.get_mut(&id)?;
        let fired = *timer;
        match timer.period {
            Some(period) => {
                let mut next = timer.deadline + period;
                if next <= now {
                    next = now + period;
                }
                timer.deadline = next;
                self.heap.push(Reverse((next, id)));
            }
            None => {
                self.live.remove(&id);
            }
        }
        Some((TimerId(id), fired))
    }

    fn compact(&mut self) {
        self.heap = self
            .live
            .iter()
            .map(|(&id, timer)| Reverse((timer.deadline, id)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::new(0, 0, 0)
    }

    #[test]
    fn fires_in_deadline_order_and_once() {
        let mut timers = Timers::default();
        let late = timers.insert(token(), TimerPurpose::User, Duration::from_millis(20), None);
        let early = timers.insert(token(), TimerPurpose::User, Duration::ZERO, None);
        let now = Instant::now() + Duration::from_millis(30);
        assert_eq!(timers.pop_due(now).map(|t| t.0), Some(early));
        assert_eq!(timers.pop_due(now).map(|t| t.0), Some(late));
        assert!(timers.pop_due(now).is_none());
        assert!(timers.is_empty());
    }

    #[test]
    fn cancelled_timer_never_fires() {
        let mut timers = Timers::default();
        let id = timers.insert(token(), TimerPurpose::User, Duration::ZERO, None);
        assert!(timers.cancel(id).is_some());
        assert!(timers.cancel(id).is_none());
        assert!(timers
            .pop_due(Instant::now() + Duration::from_secs(1))
            .is_none());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn repeating_timer_rearms_and_skips_missed_periods() {
        let mut timers = Timers::default();
        let period = Duration::from_millis(10);
        let id = timers.insert(token(), TimerPurpose::User, period, Some(period));
        let much_later = Instant::now() + Duration::from_secs(5);
        assert_eq!(timers.pop_due(much_later).map(|t| t.0), Some(id));
        // Behind by 500 periods, it fires once now and next one period later, not 500 times.
        assert!(timers.pop_due(much_later).is_none());
        assert!(timers.next_deadline().unwrap() > much_later);
    }

    #[test]
    fn rearming_after_cancel_does_not_grow_the_heap_forever() {
        let mut timers = Timers::default();
        let mut id = timers.insert(token(), TimerPurpose::User, Duration::from_secs(60), None);
        for _ in 0..10_000 {
            timers.cancel(id);
            id = timers.insert(token(), TimerPurpose::User, Duration::from_secs(60), None);
        }
        assert!(timers.heap.len() <= 130, "heap holds {}", timers.heap.len());
    }
}
