//! XEP-0163 PEP: publish with auto-create, notifications filtered by verified XEP-0115 caps, last-item delivery,
//! publish-options preconditions, access models, retract, items paging, configure, delete, discovery, limits and
//! persistence.

mod common;
mod pep_support;

use common::{bare, error_condition, ns, TestServer};
use pep_support::*;

const TUNE: &str = "http://jabber.org/protocol/tune";
const MOOD: &str = "http://jabber.org/protocol/mood";

fn tune(title: &str) -> String {
    format!("<tune xmlns='{TUNE}'><title>{title}</title></tune>")
}

#[tokio::test]
async fn a_publish_creates_the_node_and_notifies_contacts_that_want_it() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    server.befriend("alice", "carol").await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    let (mut bob, first) = online(&server, "bob", "laptop", &[&format!("{TUNE}+notify")]).await;
    assert!(first.queried, "an unknown ver is asked for");
    let (mut carol, _) = online(&server, "carol", "pc", &[&format!("{MOOD}+notify")]).await;
    let (mut eve, _) = online(&server, "eve", "pc", &[&format!("{TUNE}+notify")]).await; // not a contact

    let reply = publish(&mut alice, TUNE, "t1", &tune("Song"), &[]).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let published = reply.child("pubsub", PUBSUB).and_then(|p| p.child("publish", PUBSUB)).expect("publish result");
    assert_eq!(published.child("item", PUBSUB).and_then(|i| i.attr("id")), Some("t1"));

    let alice_bare = bare("alice");
    let note = bob.expect(|el| event(el, &alice_bare, TUNE).is_some()).await;
    assert_eq!(note.attr("to"), Some(bob.jid.as_str()), "to the full JID that wants it: {}", note.to_xml());
    assert_eq!(note.attr("type"), Some("headline"));
    let event_items = event(&note, &alice_bare, TUNE).unwrap();
    assert_eq!(event_item_ids(event_items), ["t1"]);
    let title = event_items.children().next().and_then(|i| i.child("tune", TUNE)).and_then(|t| t.child("title", TUNE));
    assert_eq!(title.map(|t| t.text()).as_deref(), Some("Song"), "{}", note.to_xml());

    carol.expect_no("tune event without tune+notify", |el| event(el, &alice_bare, TUNE).is_some()).await;
    eve.expect_no("event to a non-contact", |el| event(el, &alice_bare, TUNE).is_some()).await;
    alice.expect_no("event to the publisher without +notify", |el| event(el, &alice_bare, TUNE).is_some()).await;

    // The node exists now, with the PEP defaults: one item kept, presence access.
    let reply = items(&mut bob, &alice_bare, TUNE, "", "", "").await;
    assert_eq!(item_ids(&reply), ["t1"]);
    publish(&mut alice, TUNE, "t2", &tune("Next"), &[]).await;
    bob.expect(|el| event(el, &alice_bare, TUNE).is_some_and(|i| event_item_ids(i) == ["t2"])).await;
    assert_eq!(item_ids(&items(&mut bob, &alice_bare, TUNE, "", "", "").await), ["t2"]);
}

#[tokio::test]
async fn the_last_item_is_delivered_when_a_contact_comes_online_with_notify() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    publish(&mut alice, TUNE, "t1", &tune("Old"), &[]).await;
    publish(&mut alice, TUNE, "t2", &tune("Current"), &[]).await;

    let (_bob, announced) = online(&server, "bob", "laptop", &[&format!("{TUNE}+notify")]).await;
    let alice_bare = bare("alice");
    let last: Vec<_> = announced.stanzas.iter().filter_map(|el| event(el, &alice_bare, TUNE)).collect();
    assert_eq!(last.len(), 1, "exactly the last item: {:?}", announced.stanzas);
    assert_eq!(event_item_ids(last[0]), ["t2"]);

    // A second resource with the same (now verified) caps is not asked again and gets the last item at once.
    let (_bob2, again) = online(&server, "bob", "phone", &[&format!("{TUNE}+notify")]).await;
    assert!(!again.queried, "a verified ver comes from the cache");
    assert!(again.stanzas.iter().any(|el| event(el, &alice_bare, TUNE).is_some()), "{:?}", again.stanzas);
}

#[tokio::test]
async fn a_caps_answer_that_does_not_match_its_hash_is_neither_trusted_nor_cached() {
    let server = TestServer::start().await;
    server.befriend("alice", "mallory").await;
    server.befriend("alice", "bob").await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    let honest = [format!("{TUNE}+notify")];
    let honest: Vec<&str> = honest.iter().map(String::as_str).collect();
    let ver = caps_ver(&honest);

    // Mallory claims the ver of "tune+notify" but answers with "mood+notify" (a poisoning attempt).
    let mut mallory = server.login_with("mallory", Some("x"), false).await;
    let lie = format!("{MOOD}+notify");
    let poisoned = announce_ver(&mut mallory, &ver, &[lie.as_str()]).await;
    assert!(poisoned.queried);
    publish(&mut alice, MOOD, "m1", &format!("<mood xmlns='{MOOD}'><happy/></mood>"), &[]).await;
    publish(&mut alice, TUNE, "t1", &tune("Song"), &[]).await;
    let alice_bare = bare("alice");
    mallory.expect_no("events through unverified caps", |el| el.child("event", EVENT).is_some()).await;

    // The ver was not cached: the next client announcing it is asked again, and its honest answer is trusted.
    let mut bob = server.login_with("bob", Some("laptop"), false).await;
    let verified = announce_ver(&mut bob, &ver, &honest).await;
    assert!(verified.queried, "the poisoned answer must not have been cached");
    assert!(verified.stanzas.iter().any(|el| event(el, &alice_bare, TUNE).is_some()), "{:?}", verified.stanzas);
    // Verified now: mallory announcing it again is not asked, and gets tune (not mood) events.
    let again = announce_ver(&mut mallory, &ver, &[]).await;
    assert!(!again.queried);
    publish(&mut alice, TUNE, "t2", &tune("Two"), &[]).await;
    mallory.expect(|el| event(el, &alice_bare, TUNE).is_some()).await;
}

#[tokio::test]
async fn publish_options_are_preconditions_once_the_node_exists() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let open = [("pubsub#access_model", "open"), ("pubsub#max_items", "max")];
    let reply = publish(&mut alice, "urn:test:n", "a", "<x xmlns='urn:test'/>", &open).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    // Same options again: fine.
    let reply = publish(&mut alice, "urn:test:n", "b", "<x xmlns='urn:test'/>", &open).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for mismatch in [("pubsub#access_model", "presence"), ("pubsub#persist_items", "false"), ("pubsub#max_items", "3")]
    {
        let reply = publish(&mut alice, "urn:test:n", "c", "<x xmlns='urn:test'/>", &[mismatch]).await;
        assert_eq!(error_condition(&reply).as_deref(), Some("conflict"), "{mismatch:?}: {}", reply.to_xml());
        assert_eq!(app_error(&reply).as_deref(), Some("precondition-not-met"), "{}", reply.to_xml());
    }
    // max_items = max kept both items.
    assert_eq!(item_ids(&items(&mut alice, &bare("alice"), "urn:test:n", "", "", "").await), ["a", "b"]);

    // Configure the node (owner form), after which the other precondition holds.
    let id = alice.id();
    let form = form(
        "http://jabber.org/protocol/pubsub#node_config",
        &[("pubsub#access_model", "presence"), ("pubsub#send_last_published_item", "never")],
    );
    let reply = alice
        .iq(&format!(
            "<iq type='set' id='{id}'><pubsub xmlns='{OWNER}'><configure node='urn:test:n'>{form}</configure></pubsub></iq>"
        ))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let reply =
        publish(&mut alice, "urn:test:n", "d", "<x xmlns='urn:test'/>", &[("pubsub#access_model", "presence")]).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let id = alice.id();
    let config = alice
        .iq(&format!("<iq type='get' id='{id}'><pubsub xmlns='{OWNER}'><configure node='urn:test:n'/></pubsub></iq>"))
        .await;
    let xml = config.to_xml();
    assert!(xml.contains("pubsub#access_model") && xml.contains("<value>presence</value>"), "{xml}");
    assert!(xml.contains("<value>never</value>"), "{xml}");
}

#[tokio::test]
async fn access_models_decide_who_reads() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut eve = server.login("eve").await;
    let a = bare("alice");
    publish(&mut alice, "urn:test:presence", "1", "<x xmlns='urn:test'/>", &[]).await;
    publish(&mut alice, "urn:test:open", "1", "<x xmlns='urn:test'/>", &[("pubsub#access_model", "open")]).await;
    publish(&mut alice, "urn:test:private", "1", "<x xmlns='urn:test'/>", &[("pubsub#access_model", "whitelist")])
        .await;

    // presence (the default): contacts yes, strangers no.
    assert_eq!(item_ids(&items(&mut bob, &a, "urn:test:presence", "", "", "").await), ["1"]);
    let denied = items(&mut eve, &a, "urn:test:presence", "", "", "").await;
    assert_eq!(error_condition(&denied).as_deref(), Some("not-authorized"), "{}", denied.to_xml());
    assert_eq!(app_error(&denied).as_deref(), Some("presence-subscription-required"));
    // open: anyone.
    assert_eq!(item_ids(&items(&mut eve, &a, "urn:test:open", "", "", "").await), ["1"]);
    // whitelist: only the owner and JIDs it affiliated.
    assert_eq!(item_ids(&items(&mut alice, &a, "urn:test:private", "", "", "").await), ["1"]);
    let closed = items(&mut bob, &a, "urn:test:private", "", "", "").await;
    assert_eq!(error_condition(&closed).as_deref(), Some("not-allowed"), "{}", closed.to_xml());
    assert_eq!(app_error(&closed).as_deref(), Some("closed-node"));
    let id = alice.id();
    let reply = alice
        .iq(&format!(
            "<iq type='set' id='{id}'><pubsub xmlns='{OWNER}'><affiliations node='urn:test:private'>\
             <affiliation jid='{}' affiliation='member'/></affiliations></pubsub></iq>",
            bare("bob")
        ))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert_eq!(item_ids(&items(&mut bob, &a, "urn:test:private", "", "", "").await), ["1"]);
    // An outcast is refused even on an open node.
    let id = alice.id();
    alice
        .iq(&format!(
            "<iq type='set' id='{id}'><pubsub xmlns='{OWNER}'><affiliations node='urn:test:open'>\
             <affiliation jid='{}' affiliation='outcast'/></affiliations></pubsub></iq>",
            bare("eve")
        ))
        .await;
    let banned = items(&mut eve, &a, "urn:test:open", "", "", "").await;
    assert_eq!(error_condition(&banned).as_deref(), Some("forbidden"), "{}", banned.to_xml());

    // Only the owner publishes; a missing node (or account) is item-not-found.
    let id = bob.id();
    let forbidden = bob
        .iq(&format!(
            "<iq type='set' id='{id}' to='{a}'><pubsub xmlns='{PUBSUB}'><publish node='urn:test:open'><item><x xmlns='urn:test'/></item></publish></pubsub></iq>"
        ))
        .await;
    assert_eq!(error_condition(&forbidden).as_deref(), Some("forbidden"), "{}", forbidden.to_xml());
    let missing = items(&mut bob, &a, "urn:test:none", "", "", "").await;
    assert_eq!(error_condition(&missing).as_deref(), Some("item-not-found"));
    let nobody = items(&mut bob, &bare("nobody"), "urn:test:open", "", "", "").await;
    assert_eq!(error_condition(&nobody).as_deref(), Some("item-not-found"));
}

#[tokio::test]
async fn retract_delete_paging_and_discovery() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    let (mut bob, _) = online(&server, "bob", "pc", &["urn:test:list+notify"]).await;
    let a = bare("alice");
    let many = [("pubsub#max_items", "10")];
    for i in 1..=5 {
        publish(&mut alice, "urn:test:list", &format!("i{i}"), "<x xmlns='urn:test'/>", &many).await;
    }
    // max_items: the latest; RSM: pages in publication order.
    assert_eq!(item_ids(&items(&mut bob, &a, "urn:test:list", " max_items='2'", "", "").await), ["i4", "i5"]);
    let rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>i2</after></set>";
    let page = items(&mut bob, &a, "urn:test:list", "", "", rsm).await;
    assert_eq!(item_ids(&page), ["i3", "i4"]);
    let set = page.child("pubsub", PUBSUB).and_then(|p| p.child("set", "http://jabber.org/protocol/rsm")).unwrap();
    assert_eq!(set.child("count", "http://jabber.org/protocol/rsm").map(|c| c.text()).as_deref(), Some("5"));
    let by_id = items(&mut bob, &a, "urn:test:list", "", "<item id='i1'/><item id='i3'/>", "").await;
    assert_eq!(item_ids(&by_id), ["i1", "i3"]);

    // Retract with notify.
    bob.discard_unmatched();
    let id = alice.id();
    let reply = alice
        .iq(&format!(
            "<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB}'><retract node='urn:test:list' notify='true'><item id='i2'/></retract></pubsub></iq>"
        ))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let note = bob.expect(|el| event(el, &a, "urn:test:list").is_some()).await;
    let retract = event(&note, &a, "urn:test:list").and_then(|i| i.children().find(|c| c.name() == "retract"));
    assert_eq!(retract.and_then(|r| r.attr("id")), Some("i2"), "{}", note.to_xml());
    assert_eq!(item_ids(&items(&mut bob, &a, "urn:test:list", "", "", "").await), ["i1", "i3", "i4", "i5"]);

    // Discovery on the account: PEP identity and features; nodes the requester may see.
    let id = alice.id();
    let info = alice.iq(&format!("<iq type='get' id='{id}' to='{a}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    let xml = info.to_xml();
    for needle in [
        "category='pubsub'",
        "type='pep'",
        "pubsub#publish-options",
        "pubsub#filtered-notifications",
        "pubsub#access-whitelist",
        "pubsub#last-published",
        "pubsub#persistent-items",
        "urn:xmpp:bookmarks:1#compat",
    ] {
        assert!(xml.contains(needle), "{needle} missing: {xml}");
    }
    publish(&mut alice, "urn:test:hidden", "1", "<x xmlns='urn:test'/>", &[("pubsub#access_model", "whitelist")]).await;
    let id = bob.id();
    let list = bob.iq(&format!("<iq type='get' id='{id}' to='{a}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
    let nodes: Vec<&str> =
        list.child("query", ns::DISCO_ITEMS).unwrap().children().filter_map(|i| i.attr("node")).collect();
    assert_eq!(nodes, ["urn:test:list"], "the whitelist node is not listed to bob: {}", list.to_xml());

    // Delete: contacts that want the node are told.
    let id = alice.id();
    let reply = alice
        .iq(&format!("<iq type='set' id='{id}'><pubsub xmlns='{OWNER}'><delete node='urn:test:list'/></pubsub></iq>"))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let note = bob.expect(|el| event(el, &a, "urn:test:list").is_some_and(|e| e.name() == "delete")).await;
    assert_eq!(note.attr("type"), Some("headline"));
    let gone = items(&mut bob, &a, "urn:test:list", "", "", "").await;
    assert_eq!(error_condition(&gone).as_deref(), Some("item-not-found"));
}

#[tokio::test]
async fn limits_apply_and_items_survive_a_restart() {
    let server = TestServer::start_with(|c| {
        c.pubsub.max_item_bytes = 200;
        c.pubsub.max_nodes_per_account = 2;
    })
    .await;
    let mut alice = server.login("alice").await;
    let big = format!("<x xmlns='urn:test'>{}</x>", "a".repeat(300));
    let reply = publish(&mut alice, "urn:test:a", "1", &big, &[]).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("not-acceptable"), "{}", reply.to_xml());
    assert_eq!(app_error(&reply).as_deref(), Some("payload-too-big"));
    for node in ["urn:test:a", "urn:test:b"] {
        let reply = publish(&mut alice, node, "1", "<x xmlns='urn:test'>kept</x>", &[]).await;
        assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    }
    let reply = publish(&mut alice, "urn:test:c", "1", "<x xmlns='urn:test'/>", &[]).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("policy-violation"), "{}", reply.to_xml());
    alice.close().await;

    let server = server.restart().await;
    let mut alice = server.login("alice").await;
    let reply = items(&mut alice, &bare("alice"), "urn:test:b", "", "", "").await;
    assert_eq!(item_ids(&reply), ["1"]);
    assert!(reply.to_xml().contains(">kept</x>"), "{}", reply.to_xml());
}

#[tokio::test]
async fn a_new_subscriber_gets_the_last_items_when_approved() {
    let server = TestServer::start().await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    publish(&mut alice, TUNE, "t1", &tune("Before you came"), &[]).await;
    let (mut bob, first) = online(&server, "bob", "pc", &[&format!("{TUNE}+notify")]).await;
    let a = bare("alice");
    assert!(!first.stanzas.iter().any(|el| event(el, &a, TUNE).is_some()), "not subscribed yet");
    bob.send(format!("<presence to='{a}' type='subscribe'/>")).await;
    alice.expect(|el| el.is("presence", ns::CLIENT) && el.attr("type") == Some("subscribe")).await;
    alice.send(format!("<presence to='{}' type='subscribed'/>", bare("bob"))).await;
    let note = bob.expect(|el| event(el, &a, TUNE).is_some()).await;
    assert_eq!(event_item_ids(event(&note, &a, TUNE).unwrap()), ["t1"]);
}
