//! Pipelined durability: a session reads on while the archive writes of the messages it sent are committing, and
//! counts each message as handled only once its write is committed.
//!
//! A message goes to its recipients at once and its archive copies to the store's group-commit writer. Waiting for
//! that commit before reading the next stanza left each sender's next message in its socket for a batch's fsync:
//! at 10,000 msgs/s one message in ten waited tens of milliseconds (docs/benchmarks.md). Now the session keeps the
//! write in a FIFO and goes on, and stream management (XEP-0198) counts in order: a stanza handled while earlier
//! writes are committing is counted after them. So `h` and every `<a/>` still cover only committed messages, and an
//! `<r/>` is answered once all that came before it is counted (an answer may come later; it is never wrong).
//!
//! The FIFO holds at most `c2s.max_pending_commits` writes: at the limit the session waits for the oldest before it
//! handles another message. Any other stanza waits for all of them first (an IQ may read what they write, e.g. a MAM
//! query right after a message), and so does the end of a session: a parked or resumed session's `h` is complete
//! and no write is left unsubmitted.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use drupe_proto::xml::Element;

use super::session::Session;
use super::sm::NS;
use crate::modules::message::Committing;

/// The writes of one session still committing, oldest first, and the `<r/>` waiting for them.
#[derive(Default)]
pub(super) struct Commits {
    queue: VecDeque<Pending>,
    /// Unanswered `<r/>`: the count `h` must reach, and how many requests wait for it.
    requests: VecDeque<(u32, u32)>,
}

struct Pending {
    /// `None` once committed (it waits for the writes before it to be counted). In a mutex never locked, only
    /// reached through `get_mut`: the write is `Send` but not `Sync`, and the session must be both.
    write: Option<Mutex<Committing>>,
    /// Stanzas counted when this write and all before it are committed: its own message and those handled after it.
    stanzas: u32,
}

impl Commits {
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Counts a handled stanza after the newest write; `false` when none is pending (count it now).
    pub(super) fn count_after(&mut self) -> bool {
        match self.queue.back_mut() {
            Some(p) => {
                p.stanzas += 1;
                true
            }
            None => false,
        }
    }

    /// Stanzas handled but not yet counted.
    fn uncounted(&self) -> u32 {
        self.queue.iter().map(|p| p.stanzas).sum()
    }

    /// Polls every write (each one's first polls submit it to the store) and takes the committed ones off the
    /// front. Ready with the stanzas they release, once at least one is taken.
    fn poll_committed(&mut self, cx: &mut Context<'_>) -> Poll<u32> {
        for p in &mut self.queue {
            if let Some(write) = &mut p.write {
                if write.get_mut().unwrap_or_else(PoisonError::into_inner).as_mut().poll(cx).is_ready() {
                    p.write = None;
                }
            }
        }
        let mut released = None;
        while self.queue.front().is_some_and(|p| p.write.is_none()) {
            let p = self.queue.pop_front().expect("front checked");
            released = Some(released.unwrap_or(0) + p.stanzas);
        }
        released.map_or(Poll::Pending, Poll::Ready)
    }

    /// Resolves when one or more writes at the front are committed, with the stanzas they release. Never resolves
    /// while nothing is pending.
    pub(super) async fn committed(&mut self) -> u32 {
        poll_fn(|cx| self.poll_committed(cx)).await
    }
}

impl Session {
    /// Keeps a message's archive write, still committing, and reads on; the message counts as handled once the
    /// write is committed. (Called while the message is handled, before the session counts it.)
    pub async fn committing(&mut self, mut write: Committing) {
        // A first poll now hands it to the store, ahead of whatever the next stanza writes.
        let committed = poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx).is_ready())).await;
        if !committed || !self.commits.is_empty() {
            self.commits.queue.push_back(Pending { write: (!committed).then(|| Mutex::new(write)), stanzas: 0 });
        }
    }

    /// Waits until fewer than `c2s.max_pending_commits` writes are pending (before a message).
    pub(super) async fn commits_room(&mut self) {
        while self.commits.queue.len() >= self.ctx.config.c2s.max_pending_commits {
            let released = self.commits.committed().await;
            self.sm_count(released);
        }
    }

    /// Waits until every pending write is committed and counted.
    pub(super) async fn commits_settle(&mut self) {
        while !self.commits.is_empty() {
            let released = self.commits.committed().await;
            self.sm_count(released);
        }
    }

    /// An `<r/>`: answered once `h` counts everything handled before it (at once when no write is pending).
    pub(super) fn sm_request(&mut self) {
        let Some(sm) = self.sm.as_ref() else { return };
        let due = sm.inbound.wrapping_add(self.commits.uncounted());
        match self.commits.requests.back_mut() {
            Some((at, n)) if *at == due => *n = n.saturating_add(1),
            _ => self.commits.requests.push_back((due, 1)),
        }
        self.sm_count(0);
    }

    /// Counts stanzas whose writes are committed, and answers the `<r/>` that waited for them.
    pub(super) fn sm_count(&mut self, stanzas: u32) {
        let Some(sm) = self.sm.as_mut() else { return };
        sm.inbound = sm.inbound.wrapping_add(stanzas);
        let h = sm.inbound;
        // `due` at or before `h`, modulo 2^32 (requests are never 2^31 stanzas apart).
        while let Some(&(due, n)) = self.commits.requests.front() {
            if h.wrapping_sub(due) >= 1 << 31 {
                break;
            }
            self.commits.requests.pop_front();
            for _ in 0..n {
                self.send(&Element::new("a", NS).with_attr("h", h.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    /// A write that commits when its sender is used.
    fn write(commits: &mut Commits, stanzas: u32) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel::<()>();
        let write: Committing = Box::pin(async move {
            let _ = rx.await;
        });
        commits.queue.push_back(Pending { write: Some(Mutex::new(write)), stanzas });
        tx
    }

    fn poll(commits: &mut Commits) -> Poll<u32> {
        commits.poll_committed(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn stanzas_are_released_in_order_once_every_earlier_write_is_committed() {
        let mut commits = Commits::default();
        let first = write(&mut commits, 1);
        let second = write(&mut commits, 3);
        let third = write(&mut commits, 1);
        assert_eq!(poll(&mut commits), Poll::Pending);
        // The second commits first: nothing is counted before the first.
        second.send(()).unwrap();
        assert_eq!(poll(&mut commits), Poll::Pending);
        assert_eq!(commits.uncounted(), 5);
        first.send(()).unwrap();
        assert_eq!(poll(&mut commits), Poll::Ready(4));
        assert!(!commits.is_empty());
        third.send(()).unwrap();
        assert_eq!(poll(&mut commits), Poll::Ready(1));
        assert!(commits.is_empty());
        assert_eq!(poll(&mut commits), Poll::Pending);
    }

    #[test]
    fn a_stanza_handled_while_writes_are_pending_counts_after_the_newest() {
        let mut commits = Commits::default();
        assert!(!commits.count_after(), "nothing pending: counted at once");
        let only = write(&mut commits, 1);
        assert!(commits.count_after());
        assert!(commits.count_after());
        assert_eq!(commits.uncounted(), 3);
        only.send(()).unwrap();
        assert_eq!(poll(&mut commits), Poll::Ready(3));
    }
}
