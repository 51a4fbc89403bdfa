//! XEP-0280 Message Carbons: copies of what an account sends and receives on one resource reach its other
//! carbons-enabled resources, except what is marked private or no-copy and what is not a chat message.

mod common;

use common::{bare, has_body, ns, Client, Element, TestServer};

const CARBONS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";

/// The message inside a carbon copy of `direction` ("received" or "sent"), if `el` is one.
fn carbon<'a>(el: &'a Element, direction: &str) -> Option<&'a Element> {
    if !el.is("message", ns::CLIENT) {
        return None;
    }
    el.child(direction, CARBONS)?.child("forwarded", FORWARD)?.child("message", ns::CLIENT)
}

fn is_carbon(el: &Element) -> bool {
    carbon(el, "received").is_some() || carbon(el, "sent").is_some()
}

async fn set_carbons(c: &mut Client, enable: bool) {
    let id = c.id();
    let what = if enable { "enable" } else { "disable" };
    let reply = c.iq(&format!("<iq type='set' id='{id}'><{what} xmlns='{CARBONS}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{what}: {}", reply.to_xml());
}

/// alice on "phone" and "laptop", both available and with carbons, and bob.
async fn three_sessions(server: &TestServer) -> (Client, Client, Client) {
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("alice", Some("laptop"), true).await;
    set_carbons(&mut phone, true).await;
    set_carbons(&mut laptop, true).await;
    phone.discard_unmatched();
    laptop.discard_unmatched();
    let bob = server.login("bob").await;
    (phone, laptop, bob)
}

#[tokio::test]
async fn a_received_message_is_copied_to_the_other_resources() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    bob.say(&phone.jid, "hi phone").await;
    phone.expect(|el| has_body(el, "hi phone")).await;
    let copy = laptop.expect(|el| carbon(el, "received").is_some()).await;
    assert_eq!(copy.attr("from"), Some(bare("alice").as_str()), "from the account's bare JID: {}", copy.to_xml());
    assert_eq!(copy.attr("to"), Some(laptop.jid.as_str()), "{}", copy.to_xml());
    let inner = carbon(&copy, "received").expect("forwarded message");
    assert!(has_body(inner, "hi phone"), "{}", copy.to_xml());
    assert_eq!(inner.attr("from"), Some(bob.jid.as_str()), "{}", copy.to_xml());
    assert_eq!(inner.attr("to"), Some(phone.jid.as_str()), "{}", copy.to_xml());
    phone.expect_no("carbon of its own message", is_carbon).await;
}

#[tokio::test]
async fn a_sent_message_is_copied_to_the_other_resources() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    phone.say(&bare("bob"), "from my phone").await;
    bob.expect(|el| has_body(el, "from my phone")).await;
    let copy = laptop.expect(|el| carbon(el, "sent").is_some()).await;
    assert_eq!(copy.attr("from"), Some(bare("alice").as_str()), "{}", copy.to_xml());
    let inner = carbon(&copy, "sent").expect("forwarded message");
    assert!(has_body(inner, "from my phone"), "{}", copy.to_xml());
    assert_eq!(inner.attr("from"), Some(phone.jid.as_str()), "{}", copy.to_xml());
    assert_eq!(inner.attr("to"), Some(bare("bob").as_str()), "{}", copy.to_xml());
    phone.expect_no("carbon of its own message", is_carbon).await;
}

#[tokio::test]
async fn disabled_and_never_enabled_resources_get_no_copies() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    let mut tablet = server.login_with("alice", Some("tablet"), true).await; // never enabled
    set_carbons(&mut laptop, false).await;
    bob.say(&phone.jid, "in").await;
    phone.say(&bare("bob"), "out").await;
    phone.expect(|el| has_body(el, "in")).await;
    bob.expect(|el| has_body(el, "out")).await;
    laptop.expect_no("carbon after disable", is_carbon).await;
    tablet.expect_no("carbon without enable", is_carbon).await;

    // Enabled again: copies resume.
    set_carbons(&mut laptop, true).await;
    bob.say(&phone.jid, "again").await;
    laptop.expect(|el| carbon(el, "received").is_some_and(|m| has_body(m, "again"))).await;
}

#[tokio::test]
async fn private_and_no_copy_messages_are_not_copied() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    let markers = [format!("<private xmlns='{CARBONS}'/>"), "<no-copy xmlns='urn:xmpp:hints'/>".to_owned()];
    for (i, marker) in markers.iter().enumerate() {
        let to_phone = format!("<message type='chat' to='{}'><body>in{i}</body>{marker}</message>", phone.jid);
        bob.send(to_phone).await;
        phone.expect(|el| has_body(el, &format!("in{i}"))).await;
        phone.send(format!("<message type='chat' to='{}'><body>out{i}</body>{marker}</message>", bare("bob"))).await;
        bob.expect(|el| has_body(el, &format!("out{i}"))).await;
    }
    laptop.expect_no("carbon of a marked message", is_carbon).await;
}

#[tokio::test]
async fn groupchat_and_headline_messages_are_not_copied() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    // Without a MUC service the server may refuse groupchat between accounts; delivered or not, it is not copied.
    bob.send(format!("<message type='groupchat' to='{}'><body>groupchat</body></message>", phone.jid)).await;
    bob.sync().await;
    bob.send(format!("<message type='headline' to='{}'><body>headline</body></message>", phone.jid)).await;
    phone.expect(|el| has_body(el, "headline")).await;
    laptop.expect_no("carbon of groupchat or headline", is_carbon).await;
}

#[tokio::test]
async fn a_message_to_the_bare_jid_reaching_every_resource_is_not_copied_again() {
    let server = TestServer::start().await;
    let (mut phone, mut laptop, mut bob) = three_sessions(&server).await;
    bob.say(&bare("alice"), "to everyone").await;
    phone.expect(|el| has_body(el, "to everyone")).await;
    laptop.expect(|el| has_body(el, "to everyone")).await;
    phone.expect_no("carbon", is_carbon).await;
    laptop.expect_no("carbon", is_carbon).await;
}
