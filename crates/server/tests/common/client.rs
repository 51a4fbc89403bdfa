//! A logged-in session with conversation-level steps: send, expect (bounded waits), iq, roster, close.

use std::collections::VecDeque;
use std::time::Duration;

use drupe_proto::xml::{Element, StreamEvent};
use tokio::time::Instant;

use super::conn::{Conn, Ended};
use super::{bare, ns, DOMAIN, QUIET, WAIT};

/// A logged-in session with a bound resource.
pub struct Client {
    pub conn: Conn,
    /// The account's username.
    pub user: String,
    /// The bound full JID.
    pub jid: String,
    /// Stanzas received but not yet matched by an `expect`.
    inbox: VecDeque<Element>,
    next_id: u32,
    /// Stanzas (message, presence, iq) read from this stream so far: the XEP-0198 `h` of a client that handled
    /// everything it read.
    pub received: u32,
}

impl Client {
    /// Opens the post-authentication stream, binds, and optionally sends initial presence. Returns once the server
    /// has processed all of it (a ping round trip), so that other clients see this one as online.
    pub async fn finish_login(mut conn: Conn, user: &str, resource: Option<&str>, presence: bool) -> Client {
        let features = conn.open().await;
        assert!(features.child("bind", ns::BIND).is_some(), "no bind offered: {}", features.to_xml());
        let jid = conn.bind(resource).await.unwrap_or_else(|e| panic!("bind refused: {}", e.to_xml()));
        let mut client = Client { conn, user: user.to_owned(), jid, inbox: VecDeque::new(), next_id: 0, received: 0 };
        if presence {
            client.send("<presence/>").await;
        }
        client.sync().await;
        client
    }

    pub fn bare(&self) -> String {
        bare(&self.user)
    }

    pub async fn send(&mut self, xml: impl AsRef<str>) {
        self.conn.send_raw(xml.as_ref()).await;
    }

    /// A fresh stanza id.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.user, self.next_id)
    }

    /// Pings the server and waits for the answer: everything sent before has been processed.
    pub async fn sync(&mut self) {
        let id = self.id();
        let reply =
            self.iq(&format!("<iq type='get' id='{id}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
        assert_eq!(reply.attr("type"), Some("result"), "ping: {}", reply.to_xml());
    }

    /// Sends an IQ (which must carry an `id`) and returns its result or error.
    pub async fn iq(&mut self, xml: &str) -> Element {
        let sent = Element::parse(xml).unwrap_or_else(|| panic!("not one element: {xml}"));
        let id = sent.attr("id").expect("iq has an id").to_owned();
        self.send(xml).await;
        self.expect(|el| {
            el.is("iq", ns::CLIENT) && el.attr("id") == Some(&id) && matches!(el.attr("type"), Some("result" | "error"))
        })
        .await
    }

    /// The first stanza (received earlier and not yet matched, or arriving within [`WAIT`]) matching `pred`.
    pub async fn expect(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        self.expect_within(WAIT, pred).await
    }

    pub async fn expect_within(&mut self, wait: Duration, pred: impl Fn(&Element) -> bool) -> Element {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return self.inbox.remove(i).expect("position is valid");
        }
        let deadline = Instant::now() + wait;
        loop {
            let event = self.conn.next_event_until(deadline).await;
            self.count(&event);
            match event {
                Ok(StreamEvent::Stanza(el)) if pred(&el) => return el,
                Ok(StreamEvent::Stanza(el)) => self.inbox.push_back(el),
                Ok(StreamEvent::Whitespace) => {}
                other => panic!(
                    "{}: the expected stanza did not arrive ({other:?}); unmatched stanzas:\n{}",
                    self.jid,
                    self.describe_inbox()
                ),
            }
        }
    }

    /// A non-error message from `from`'s full JID.
    pub async fn expect_message_from(&mut self, from: &Client) -> Element {
        let jid = from.jid.clone();
        self.expect(|el| {
            el.is("message", ns::CLIENT) && el.attr("from") == Some(&jid) && el.attr("type") != Some("error")
        })
        .await
    }

    /// Presence of `type` (`None`: available) from `from`'s full JID.
    pub async fn expect_presence_from(&mut self, from: &Client, kind: Option<&str>) -> Element {
        let jid = from.jid.clone();
        self.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&jid) && el.attr("type") == kind)
            .await
    }

    /// A roster push (`<iq type='set'>` with a roster query); it is acknowledged as RFC 6121 §2.1.6 requires.
    pub async fn expect_roster_push(&mut self) -> Element {
        let push = self.expect(|el| el.is("iq", ns::CLIENT) && el.child("query", ns::ROSTER).is_some()).await;
        assert_eq!(push.attr("type"), Some("set"), "roster push type: {}", push.to_xml());
        let id = push.attr("id").unwrap_or_default();
        self.send(format!("<iq type='result' id='{id}'/>")).await;
        push
    }

    /// Fails if a stanza matching `pred` was received and not yet matched, or arrives within [`QUIET`].
    pub async fn expect_no(&mut self, what: &str, pred: impl Fn(&Element) -> bool) {
        if let Some(el) = self.inbox.iter().find(|el| pred(el)) {
            panic!("{}: unexpected {what}: {}", self.jid, el.to_xml());
        }
        let deadline = Instant::now() + QUIET;
        loop {
            let event = self.conn.next_event_until(deadline).await;
            self.count(&event);
            match event {
                Ok(StreamEvent::Stanza(el)) if pred(&el) => panic!("{}: unexpected {what}: {}", self.jid, el.to_xml()),
                Ok(StreamEvent::Stanza(el)) => self.inbox.push_back(el),
                Ok(StreamEvent::Whitespace) => {}
                Err(Ended::Timeout) => return,
                other => panic!("{}: stream ended while waiting ({other:?})", self.jid),
            }
        }
    }

    /// Fails if any stanza is waiting unmatched or arrives within `wait`.
    pub async fn expect_nothing(&mut self, wait: Duration) {
        if let Some(el) = self.inbox.front() {
            panic!("{}: unexpected stanza: {}", self.jid, el.to_xml());
        }
        let event = self.conn.next_event_until(Instant::now() + wait).await;
        self.count(&event);
        match event {
            Err(Ended::Timeout) => {}
            Ok(StreamEvent::Whitespace) => {}
            other => panic!("{}: expected nothing, got {other:?}", self.jid),
        }
    }

    /// Forgets stanzas received and not matched so far (e.g. presence the test does not look at).
    pub fn discard_unmatched(&mut self) {
        self.inbox.clear();
    }

    /// Requests the roster; returns the result IQ.
    pub async fn roster(&mut self) -> Element {
        let id = self.id();
        let reply = self.iq(&format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>")).await;
        assert_eq!(reply.attr("type"), Some("result"), "roster get: {}", reply.to_xml());
        reply
    }

    /// Sends a chat message with `body` to `to`.
    pub async fn say(&mut self, to: &str, body: &str) {
        self.send(format!("<message type='chat' to='{to}'><body>{body}</body></message>")).await;
    }

    /// Closes the stream politely and waits for the server's close.
    pub async fn close(mut self) {
        self.send("</stream:stream>").await;
        self.conn.expect_closed().await;
    }

    /// Drops the socket without closing the stream.
    pub fn drop_connection(self) {
        drop(self);
    }

    /// Expects the stream to end with `condition`.
    pub async fn expect_stream_error(&mut self, condition: &str) -> Element {
        self.conn.expect_stream_error(condition).await
    }

    fn describe_inbox(&self) -> String {
        if self.inbox.is_empty() {
            return "(none)".into();
        }
        self.inbox.iter().map(|el| el.to_xml()).collect::<Vec<_>>().join("\n")
    }

    /// A client for a stream that is already bound (by XEP-0198 resumption or XEP-0386 Bind2); nothing is sent.
    pub fn bound(conn: Conn, user: &str, jid: &str) -> Client {
        Client { conn, user: user.to_owned(), jid: jid.to_owned(), inbox: VecDeque::new(), next_id: 0, received: 0 }
    }

    fn count(&mut self, event: &Result<StreamEvent, Ended>) {
        if let Ok(StreamEvent::Stanza(el)) = event {
            if el.ns() == ns::CLIENT && matches!(el.name(), "message" | "presence" | "iq") {
                self.received = self.received.wrapping_add(1);
            }
        }
    }

    /// XEP-0198: sends `<enable/>` (asking for resumption if `resume`) and returns `<enabled/>` or `<failed/>`.
    pub async fn enable_sm(&mut self, resume: bool) -> Element {
        let attr = if resume { " resume='true'" } else { "" };
        self.send(format!("<enable xmlns='{SM}'{attr}/>")).await;
        self.expect(|el| el.ns() == SM && matches!(el.name(), "enabled" | "failed")).await
    }

    /// XEP-0198: acknowledges everything read so far.
    pub async fn ack_all(&mut self) {
        let h = self.received;
        self.send(format!("<a xmlns='{SM}' h='{h}'/>")).await;
    }

    /// Every stanza received and not matched, plus whatever arrives until `wait` passes with nothing new.
    pub async fn collect(&mut self, wait: Duration) -> Vec<Element> {
        let mut all: Vec<Element> = self.inbox.drain(..).collect();
        loop {
            let event = self.conn.next_event_until(Instant::now() + wait).await;
            self.count(&event);
            match event {
                Ok(StreamEvent::Stanza(el)) => all.push(el),
                Ok(StreamEvent::Whitespace) => {}
                Err(Ended::Timeout) => return all,
                other => panic!("{}: stream ended while collecting ({other:?})", self.jid),
            }
        }
    }

    /// XEP-0313: a query with `inner` (form and RSM set) inside `<query/>`; returns the `<result/>` elements in the
    /// order received and the final IQ (result with `<fin/>`, or error).
    pub async fn mam(&mut self, inner: &str) -> (Vec<Element>, Element) {
        let id = self.id();
        let reply = self
            .iq(&format!("<iq type='set' id='{id}'><query xmlns='{MAM}' queryid='{id}'>{inner}</query></iq>"))
            .await;
        let mut results = Vec::new();
        self.inbox.retain(|el| match el.child("result", MAM) {
            Some(r) if el.is("message", ns::CLIENT) && r.attr("queryid") == Some(&id) => {
                results.push(r.clone());
                false
            }
            _ => true,
        });
        (results, reply)
    }
}

/// The XEP-0198 namespace.
pub const SM: &str = "urn:xmpp:sm:3";
/// The XEP-0313 namespace.
pub const MAM: &str = "urn:xmpp:mam:2";

/// XEP-0045 steps: joining a room and reading what a join delivers, in order.
impl Client {
    /// Sends a join presence for `room/nick` (with `inner` inside the muc `<x/>`, e.g. a `<history/>`) and returns
    /// every stanza received up to and including the room's subject message, which XEP-0045 §7.2.15 makes the last
    /// step of a successful join.
    pub async fn join_with(&mut self, room: &str, nick: &str, inner: &str) -> Vec<Element> {
        let to = super::muc::occupant(room, nick);
        self.send(format!("<presence to='{to}'><x xmlns='{}'>{inner}</x></presence>", super::muc::MUC)).await;
        let room_jid = super::muc::room(room);
        self.collect_until(|el| {
            super::muc::is_subject(el) && el.attr("from").is_some_and(|f| f.split('/').next() == Some(&room_jid))
        })
        .await
    }

    /// Joins `room` as `nick` and returns the stanzas of the join (see [`Client::join_with`]).
    pub async fn join(&mut self, room: &str, nick: &str) -> Vec<Element> {
        self.join_with(room, nick, "").await
    }

    /// Joins `room` as `nick`, creating it, and accepts the default configuration (an instant room, XEP-0045
    /// §10.1.2): others may enter once this returns. Returns the stanzas of the join.
    pub async fn create(&mut self, room: &str, nick: &str) -> Vec<Element> {
        let got = self.join(room, nick).await;
        let reply = self.configure(room, "").await;
        assert_eq!(reply.attr("type"), Some("result"), "instant room {room}: {}", reply.to_xml());
        got
    }

    /// Submits `room`'s configuration form with `fields` (see [`super::muc::field`]); returns the IQ reply.
    pub async fn configure(&mut self, room: &str, fields: &str) -> Element {
        let id = self.id();
        let to = super::muc::room(room);
        self.iq(&format!(
            "<iq type='set' id='{id}' to='{to}'><query xmlns='{}'><x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
            super::muc::MUC_OWNER
        ))
        .await
    }

    /// The stanzas received before the first one matching `pred` (unmatched ones first, in arrival order), then
    /// that one; they are removed from the inbox.
    pub async fn collect_until(&mut self, pred: impl Fn(&Element) -> bool) -> Vec<Element> {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return self.inbox.drain(..=i).collect();
        }
        let last = self.expect(pred).await;
        let mut all: Vec<Element> = self.inbox.drain(..).collect();
        all.push(last);
        all
    }
}
