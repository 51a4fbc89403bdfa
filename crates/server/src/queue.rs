//! The bounded queue in front of each session task (router deliveries, a stream-management takeover), with the
//! part of tokio's `mpsc` API the sessions use: `try_send` that never waits, `recv` (cancel-safe), `try_recv`,
//! `close`.
//!
//! Why not `tokio::sync::mpsc`: a channel allocates its shared state (cache-padded, ~480 B) and a first block of
//! 32 slots (1 KiB for [`Outbound`](crate::router::Outbound)) when it is made, and keeps both while the session
//! idles. Here the shared part is one small allocation and the items live in a `VecDeque` that is released
//! whenever the queue runs empty: an idle session holds ~100 B for its queue instead of ~1.5 KiB.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver: an item arrived, or the last sender left.
    ready: Notify,
    senders: AtomicUsize,
}

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// The receiver is gone or closed: sends fail.
    closed: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing can panic while the lock is held (pushes and pops only), so poison carries no broken state.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A queue of at most `capacity` items (at least 1).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { items: VecDeque::new(), capacity: capacity.max(1), closed: false }),
        ready: Notify::new(),
        senders: AtomicUsize::new(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

pub struct Sender<T>(Arc<Shared<T>>);

pub struct Receiver<T>(Arc<Shared<T>>);

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    Full(T),
    Closed(T),
}

/// Why [`Receiver::try_recv`] had nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    /// Empty, and every sender is gone.
    Disconnected,
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or its receiver closed; never waits.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() >= state.capacity {
            return Err(TrySendError::Full(item));
        }
        state.items.push_back(item);
        drop(state);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.ready.notify_one();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender")
    }
}

impl<T> Receiver<T> {
    /// The next item; `None` once the queue is empty and every sender is gone. Cancel-safe: an item is taken only
    /// when this returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Disconnected) => return None,
                // A send between the check and the wait leaves a permit in `ready`: the wait returns at once.
                Err(TryRecvError::Empty) => self.0.ready.notified().await,
            }
        }
    }

    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.0.lock();
        match state.items.pop_front() {
            Some(item) => {
                if state.items.is_empty() {
                    // Give the buffer back: a session idles between bursts.
                    state.items = VecDeque::new();
                }
                Ok(item)
            }
            None if self.0.senders.load(Ordering::Acquire) == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Refuses further sends; what is queued can still be received.
    pub fn close(&mut self) {
        self.0.lock().closed = true;
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_up_to_the_capacity() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn recv_waits_for_a_send_and_ends_when_the_senders_are_gone() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx.try_send("hello").unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(waiter.await.unwrap(), (Some("hello"), None));
    }

    #[tokio::test]
    async fn a_cancelled_recv_loses_nothing() {
        let (tx, mut rx) = channel(4);
        // The wait is abandoned before anything arrives...
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(5), rx.recv()).await;
        assert!(timed_out.is_err());
        tx.try_send(7).unwrap();
        // ...and the item sent afterwards is still there.
        assert_eq!(rx.recv().await, Some(7));
    }

    #[test]
    fn closing_or_dropping_the_receiver_refuses_sends() {
        let (tx, mut rx) = channel(4);
        tx.try_send(1).unwrap();
        rx.close();
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        assert_eq!(rx.try_recv(), Ok(1));
        drop(rx);
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }
}
