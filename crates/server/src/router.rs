//! The session registry and local delivery: which resources of which account are bound, available, and with what
//! presence. Delivery is `try_send` on the session's bounded queue: the router never awaits a session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drupe_proto::xml::Element;

use crate::queue;

/// What the router hands to a session task; only that task writes to its socket.
#[derive(Debug)]
pub enum Outbound {
    /// Shared, so that one stanza sent to several resources is one allocation.
    Stanza(Arc<Element>),
    /// One serialization for many recipients (room fan-out): written as its head, ` to='…'`, and its tail.
    Addressed(Arc<Prepared>, Box<str>),
    /// A roster push (RFC 6121 §2.1.6): written only if the session has requested the roster.
    RosterPush(Arc<Element>),
    /// Another login bound the same resource: close with `<conflict/>` (RFC 6120 §7.7.2.2).
    Replaced,
    /// Messages were stored offline after this session became available: deliver them now.
    OfflineStored,
}

/// A stanza serialized once, without `to`, for many recipients.
#[derive(Debug)]
pub struct Prepared {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
    /// The stanza itself, for the rare paths that keep stanzas as elements (CSI holding, a parked session).
    pub element: Element,
}

impl Prepared {
    pub fn new(element: Element) -> Prepared {
        let (head, tail) = element.write_addressable(drupe_proto::ns::CLIENT);
        Prepared { head, tail, element }
    }

    /// The stanza as addressed to one recipient.
    pub fn to_element(&self, to: &str) -> Element {
        self.element.clone().with_attr("to", to)
    }
}

#[derive(Clone, Debug)]
pub struct SessionHandle {
    pub id: u64,
    pub tx: queue::Sender<Outbound>,
}

#[derive(Debug)]
struct Resource {
    name: String,
    handle: SessionHandle,
    /// The last available presence broadcast by the session (with `from` stamped) and its priority.
    presence: Option<(i8, Element)>,
    /// XEP-0280: the session wants copies of its account's messages.
    carbons: bool,
}

/// Why a stanza could not be handed to a session.
#[derive(Debug, PartialEq, Eq)]
pub enum Undeliverable {
    /// No such resource bound.
    NoSession,
    /// The session's queue is full (slow reader).
    QueueFull,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BindError {
    TooManyResources,
}

#[derive(Default)]
pub struct Router {
    accounts: Mutex<HashMap<String, Vec<Resource>>>,
}

impl Router {
    fn with_accounts<T>(&self, f: impl FnOnce(&mut HashMap<String, Vec<Resource>>) -> T) -> T {
        // A poisoned lock means a panic elsewhere while holding it; the map itself is still consistent because
        // every critical section below is a single insert/remove/update.
        let mut guard = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Registers a bound resource. Returns the handle of the session it replaces, if any.
    pub fn bind(
        &self,
        user: &str,
        resource: &str,
        handle: SessionHandle,
        max_resources: usize,
    ) -> Result<Option<SessionHandle>, BindError> {
        self.with_accounts(|accounts| {
            let list = accounts.entry(user.to_owned()).or_default();
            if let Some(slot) = list.iter_mut().find(|r| r.name == resource) {
                let old = std::mem::replace(&mut slot.handle, handle);
                slot.presence = None;
                slot.carbons = false;
                return Ok(Some(old));
            }
            if list.len() >= max_resources {
                return Err(BindError::TooManyResources);
            }
            // Most accounts have one or two resources: grow one at a time, not to Vec's first step of four (~600 B).
            list.reserve_exact(1);
            list.push(Resource { name: resource.to_owned(), handle, presence: None, carbons: false });
            Ok(None)
        })
    }

    /// Removes the binding if it still belongs to session `id` (a replaced session must not unbind its successor).
    pub fn unbind(&self, user: &str, resource: &str, id: u64) {
        self.with_accounts(|accounts| {
            if let Some(list) = accounts.get_mut(user) {
                list.retain(|r| !(r.name == resource && r.handle.id == id));
                if list.is_empty() {
                    accounts.remove(user);
                }
            }
        })
    }

    /// Records a session's broadcast presence: `Some((priority, stanza))` when available, `None` when unavailable.
    pub fn set_presence(&self, user: &str, resource: &str, id: u64, presence: Option<(i8, Element)>) {
        self.with_accounts(|accounts| {
            if let Some(r) =
                accounts.get_mut(user).and_then(|l| l.iter_mut().find(|r| r.name == resource && r.handle.id == id))
            {
                r.presence = presence;
            }
        })
    }

    pub fn set_carbons(&self, user: &str, resource: &str, id: u64, enabled: bool) {
        self.with_accounts(|accounts| {
            if let Some(r) =
                accounts.get_mut(user).and_then(|l| l.iter_mut().find(|r| r.name == resource && r.handle.id == id))
            {
                r.carbons = enabled;
            }
        })
    }

    /// Resource names and handles of the resources that enabled carbons.
    pub fn carbons(&self, user: &str) -> Vec<(String, SessionHandle)> {
        self.with_accounts(|a| {
            a.get(user).map(|l| l.iter().filter(|r| r.carbons).map(|r| (r.name.clone(), r.handle.clone())).collect())
        })
        .unwrap_or_default()
    }

    /// The current available presences of all of `user`'s resources (what a probe is answered with).
    pub fn presences(&self, user: &str) -> Vec<Element> {
        self.with_accounts(|a| {
            a.get(user).map(|l| l.iter().filter_map(|r| r.presence.as_ref().map(|p| p.1.clone())).collect())
        })
        .unwrap_or_default()
    }

    /// Handles of the available resources, with their priorities.
    pub fn available(&self, user: &str) -> Vec<(i8, SessionHandle)> {
        self.with_accounts(|a| {
            a.get(user).map(|l| l.iter().filter_map(|r| r.presence.as_ref().map(|p| (p.0, r.handle.clone()))).collect())
        })
        .unwrap_or_default()
    }

    /// Handles of every bound resource, available or not.
    pub fn bound(&self, user: &str) -> Vec<SessionHandle> {
        self.with_accounts(|a| a.get(user).map(|l| l.iter().map(|r| r.handle.clone()).collect())).unwrap_or_default()
    }

    pub fn handle(&self, user: &str, resource: &str) -> Option<SessionHandle> {
        self.with_accounts(|a| a.get(user)?.iter().find(|r| r.name == resource).map(|r| r.handle.clone()))
    }

    /// Number of bound sessions (for metrics and tests).
    pub fn session_count(&self) -> usize {
        self.with_accounts(|a| a.values().map(Vec::len).sum())
    }
}

impl SessionHandle {
    pub fn send(&self, out: Outbound) -> Result<(), Undeliverable> {
        self.tx.try_send(out).map_err(|e| match e {
            queue::TrySendError::Full(_) => Undeliverable::QueueFull,
            queue::TrySendError::Closed(_) => Undeliverable::NoSession,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64) -> (SessionHandle, queue::Receiver<Outbound>) {
        let (tx, rx) = queue::channel(4);
        (SessionHandle { id, tx }, rx)
    }

    #[test]
    fn rebinding_a_resource_returns_the_replaced_session() {
        let r = Router::default();
        let (a, _ra) = handle(1);
        let (b, _rb) = handle(2);
        assert!(r.bind("alice", "phone", a, 4).unwrap().is_none());
        assert_eq!(r.bind("alice", "phone", b, 4).unwrap().unwrap().id, 1);
        // The replaced session's unbind must not remove its successor.
        r.unbind("alice", "phone", 1);
        assert!(r.handle("alice", "phone").is_some());
        r.unbind("alice", "phone", 2);
        assert_eq!(r.session_count(), 0);
    }

    #[test]
    fn resource_limit_and_presence_tracking() {
        let r = Router::default();
        let (a, _ra) = handle(1);
        let (b, _rb) = handle(2);
        r.bind("bob", "a", a, 1).unwrap();
        assert_eq!(r.bind("bob", "b", b, 1).unwrap_err(), BindError::TooManyResources);
        assert!(r.available("bob").is_empty());
        r.set_presence("bob", "a", 1, Some((5, Element::new("presence", "jabber:client"))));
        assert_eq!(r.available("bob")[0].0, 5);
        assert_eq!(r.presences("bob").len(), 1);
        r.set_presence("bob", "a", 1, None);
        assert!(r.presences("bob").is_empty());
    }

    #[test]
    fn full_queue_is_reported_not_awaited() {
        let (tx, _rx) = queue::channel(1);
        let h = SessionHandle { id: 1, tx };
        h.send(Outbound::Replaced).unwrap();
        assert_eq!(h.send(Outbound::Replaced).unwrap_err(), Undeliverable::QueueFull);
    }
}
