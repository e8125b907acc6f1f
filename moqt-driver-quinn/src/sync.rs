//! Tiny runtime-agnostic primitives between the connection task and application handles.
//!
//! [`Queue`] is a single-consumer queue the connection task pushes owned values into without
//! ever waiting: it reports the consumer's backlog (items and bytes) so the owner can evict or
//! stop instead of buffering without bound, and it carries an end state (clean or a code).
//! [`Latch`] is a set-once value many tasks can wait on. Both lock only for a few instructions
//! and never across an await; no protocol state lives behind these locks.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// How a queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Cleanly.
    Done,
    /// With a stream or session code.
    Code(u64),
}

#[derive(Debug)]
struct QueueInner<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    end: Option<End>,
    receiver_alive: bool,
    waker: Option<Waker>,
}

/// A single-consumer queue fed by the connection task.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    inner: Mutex<QueueInner<T>>,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Queue {
            inner: Mutex::new(QueueInner {
                items: VecDeque::new(),
                bytes: 0,
                end: None,
                receiver_alive: true,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueInner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an item weighing `bytes`; if more than `max_items` are then queued, the oldest is
    /// removed and returned (the caller decides what evicting means). Ignored after the end.
    pub(crate) fn push(&self, item: T, bytes: usize, max_items: usize) -> Option<T> {
        let mut inner = self.lock();
        if inner.end.is_some() || !inner.receiver_alive {
            return None;
        }
        inner.items.push_back((item, bytes));
        inner.bytes += bytes;
        let evicted = if inner.items.len() > max_items {
            inner.items.pop_front().map(|(t, b)| {
                inner.bytes -= b;
                t
            })
        } else {
            None
        };
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
        evicted
    }

    /// Items and bytes waiting for the consumer.
    pub(crate) fn backlog(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.items.len(), inner.bytes)
    }

    /// Whether the consumer still exists.
    pub(crate) fn receiver_alive(&self) -> bool {
        self.lock().receiver_alive
    }

    /// Ends the queue (first end wins); queued items are still delivered.
    pub(crate) fn close(&self, end: End) {
        let mut inner = self.lock();
        if inner.end.is_none() {
            inner.end = Some(end);
        }
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
    }

    /// Whether the queue has ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.lock().end.is_some()
    }

    /// The consumer went away: drop what is queued.
    pub(crate) fn drop_receiver(&self) -> Vec<T> {
        let mut inner = self.lock();
        inner.receiver_alive = false;
        inner.bytes = 0;
        inner.items.drain(..).map(|(t, _)| t).collect()
    }

    /// The next item, or the end.
    pub(crate) async fn pop(&self) -> Result<T, End> {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if let Some((t, b)) = inner.items.pop_front() {
                inner.bytes -= b;
                return Poll::Ready(Ok(t));
            }
            if let Some(end) = inner.end {
                return Poll::Ready(Err(end));
            }
            match &inner.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => inner.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

#[derive(Debug)]
struct LatchInner<T> {
    value: Option<T>,
    wakers: Vec<Waker>,
}

/// A value set once, awaited by anyone.
#[derive(Debug)]
pub(crate) struct Latch<T> {
    inner: Mutex<LatchInner<T>>,
}

impl<T: Clone> Latch<T> {
    pub(crate) fn new() -> Self {
        Latch { inner: Mutex::new(LatchInner { value: None, wakers: Vec::new() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LatchInner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the value if unset; wakes every waiter.
    pub(crate) fn set(&self, value: T) {
        let mut inner = self.lock();
        if inner.value.is_none() {
            inner.value = Some(value);
        }
        for w in inner.wakers.drain(..) {
            w.wake();
        }
    }

    /// The value, if set.
    pub(crate) fn get(&self) -> Option<T> {
        self.lock().value.clone()
    }

    /// Waits for the value.
    pub(crate) async fn wait(&self) -> T {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if let Some(v) = &inner.value {
                return Poll::Ready(v.clone());
            }
            if !inner.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                inner.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// A counter with waiters for "at least n" (e.g. subscribers of a track).
#[derive(Debug, Default)]
pub(crate) struct Counter {
    inner: Mutex<(usize, Vec<Waker>)>,
}

impl Counter {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Vec<Waker>)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set(&self, n: usize) {
        let mut inner = self.lock();
        inner.0 = n;
        for w in inner.1.drain(..) {
            w.wake();
        }
    }

    pub(crate) fn get(&self) -> usize {
        self.lock().0
    }

    pub(crate) async fn at_least(&self, n: usize) {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if inner.0 >= n {
                return Poll::Ready(());
            }
            if !inner.1.iter().any(|w| w.will_wake(cx.waker())) {
                inner.1.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    #[test]
    fn queue_evicts_the_oldest_and_reports_backlog() {
        let q = Queue::new();
        assert_eq!(q.push(1, 10, 2), None);
        assert_eq!(q.push(2, 20, 2), None);
        assert_eq!(q.push(3, 30, 2), Some(1));
        assert_eq!(q.backlog(), (2, 50));
        assert_eq!(block_on(q.pop()), Ok(2));
        assert_eq!(q.backlog(), (1, 30));
        q.close(End::Code(5));
        // Items queued before the end are still delivered, then the end; nothing after it.
        assert_eq!(q.push(4, 1, 8), None);
        assert_eq!(block_on(q.pop()), Ok(3));
        assert_eq!(block_on(q.pop()), Err(End::Code(5)));
        q.close(End::Done);
        assert_eq!(block_on(q.pop()), Err(End::Code(5)), "the first end wins");
    }

    #[test]
    fn queue_without_receiver_drops_everything() {
        let q = Queue::new();
        q.push("a", 1, 8);
        assert_eq!(q.drop_receiver(), vec!["a"]);
        assert!(!q.receiver_alive());
        assert_eq!(q.push("b", 1, 8), None);
        assert_eq!(q.backlog(), (0, 0));
    }

    #[test]
    fn latch_and_counter_wake_waiters() {
        let latch = std::sync::Arc::new(Latch::new());
        let l2 = latch.clone();
        let t = std::thread::spawn(move || block_on(l2.wait()));
        latch.set(7u32);
        latch.set(8);
        assert_eq!(t.join().unwrap(), 7);
        assert_eq!(latch.get(), Some(7));

        let counter = std::sync::Arc::new(Counter::default());
        let c2 = counter.clone();
        let t = std::thread::spawn(move || block_on(c2.at_least(2)));
        counter.set(1);
        counter.set(2);
        t.join().unwrap();
        counter.set(0);
        assert_eq!(counter.get(), 0);
    }
}
