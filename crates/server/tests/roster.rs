//! Roster management (RFC 6121 §2): get with versioning, set, remove, and pushes to interested resources.

mod common;

use common::{error_condition, ns, roster_item, roster_items, Client, Element, TestServer};

fn is_push(el: &Element) -> bool {
    el.is("iq", ns::CLIENT) && el.attr("type") == Some("set") && el.child("query", ns::ROSTER).is_some()
}

fn version(reply: &Element) -> String {
    reply.child("query", ns::ROSTER).and_then(|q| q.attr("ver")).expect("roster ver").to_owned()
}

async fn set_item(c: &mut Client, item: &str) -> Element {
    let id = c.id();
    c.iq(&format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>{item}</query></iq>")).await
}

#[tokio::test]
async fn an_empty_roster_has_a_version() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let reply = alice.roster().await;
    assert!(roster_items(&reply).is_empty(), "{}", reply.to_xml());
    assert!(!version(&reply).is_empty());
}

#[tokio::test]
async fn a_set_is_pushed_to_every_resource_that_requested_the_roster() {
    let server = TestServer::start().await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("alice", Some("laptop"), true).await;
    let mut tablet = server.login_with("alice", Some("tablet"), true).await; // never asks for the roster
    phone.roster().await;
    laptop.roster().await;

    let item = "<item jid='bob@localhost' name='Bobby'><group>Friends</group><group>Work</group></item>";
    let reply = set_item(&mut phone, item).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for c in [&mut phone, &mut laptop] {
        let push = c.expect_roster_push().await;
        assert!(push.attr("from").is_none_or(|f| f == "alice@localhost"), "push from: {}", push.to_xml());
        let pushed = roster_item(&push, "bob@localhost").expect("pushed item");
        assert_eq!(pushed.attr("name"), Some("Bobby"));
        assert_eq!(pushed.attr("subscription"), Some("none"));
        let groups: Vec<String> = pushed.children().map(|g| g.text()).collect();
        assert_eq!(groups, ["Friends", "Work"]);
    }
    tablet.expect_no("roster push", is_push).await;

    let roster = laptop.roster().await;
    let stored = roster_item(&roster, "bob@localhost").expect("item in roster");
    assert_eq!(stored.attr("name"), Some("Bobby"));
    assert_eq!(stored.children().count(), 2, "{}", stored.to_xml());
}

#[tokio::test]
async fn a_remove_is_pushed_with_subscription_remove() {
    let server = TestServer::start().await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("alice", Some("laptop"), true).await;
    phone.roster().await;
    laptop.roster().await;
    set_item(&mut phone, "<item jid='bob@localhost'/>").await;
    phone.expect_roster_push().await;
    laptop.expect_roster_push().await;

    let reply = set_item(&mut laptop, "<item jid='bob@localhost' subscription='remove'/>").await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for c in [&mut phone, &mut laptop] {
        let push = c.expect_roster_push().await;
        let removed = roster_item(&push, "bob@localhost").expect("pushed item");
        assert_eq!(removed.attr("subscription"), Some("remove"), "{}", push.to_xml());
    }
    let roster = phone.roster().await;
    assert!(roster_item(&roster, "bob@localhost").is_none(), "{}", roster.to_xml());

    // Removing what is not there is item-not-found (RFC 6121 §2.5.3).
    let reply = set_item(&mut phone, "<item jid='bob@localhost' subscription='remove'/>").await;
    assert_eq!(error_condition(&reply).as_deref(), Some("item-not-found"), "{}", reply.to_xml());
}

#[tokio::test]
async fn a_get_with_the_current_version_returns_an_empty_result() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    set_item(&mut alice, "<item jid='bob@localhost'/>").await;
    let full = alice.roster().await;
    let ver = version(&full);

    let id = alice.id();
    let reply = alice.iq(&format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert!(reply.first_child().is_none(), "unchanged roster must not be sent again: {}", reply.to_xml());

    // After a change, the old version gets the whole roster with a new version.
    set_item(&mut alice, "<item jid='carol@localhost'/>").await;
    let id = alice.id();
    let reply = alice.iq(&format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>")).await;
    assert_eq!(roster_items(&reply).len(), 2, "{}", reply.to_xml());
    assert_ne!(version(&reply), ver);
}

#[tokio::test]
async fn a_client_cannot_set_subscription_state() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    set_item(&mut alice, "<item jid='bob@localhost' subscription='both' ask='subscribe'/>").await;
    let roster = alice.roster().await;
    let item = roster_item(&roster, "bob@localhost").expect("item");
    assert_eq!(item.attr("subscription"), Some("none"), "{}", item.to_xml());
    assert_eq!(item.attr("ask"), None, "{}", item.to_xml());
}
