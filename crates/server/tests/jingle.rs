//! Call set-up routing: XEP-0353 Jingle Message Initiation (propose to every resource of the bare JID, the answer
//! to the caller's full JID, carbons to the other devices) and XEP-0166 Jingle IQs between full JIDs.

mod common;

use common::{error_condition, ns, Client, Element, TestServer};

const JMI0: &str = "urn:xmpp:jingle-message:0";
const JMI1: &str = "urn:xmpp:jingle-message:1";
const JINGLE: &str = "urn:xmpp:jingle:1";
const CARBONS: &str = "urn:xmpp:carbons:2";

async fn enable_carbons(c: &mut Client) {
    let id = c.id();
    let r = c.iq(&format!("<iq type='set' id='{id}'><enable xmlns='{CARBONS}'/></iq>")).await;
    assert_eq!(r.attr("type"), Some("result"));
}

fn jmi(stanza: &Element, ns: &str, action: &str, sid: &str) -> bool {
    stanza.is("message", common::ns::CLIENT) && stanza.child(action, ns).is_some_and(|a| a.attr("id") == Some(sid))
}

/// The message inside a carbon copy (`sent` or `received`).
fn carbon<'a>(stanza: &'a Element, direction: &str) -> Option<&'a Element> {
    stanza.child(direction, CARBONS)?.child("forwarded", "urn:xmpp:forward:0")?.child("message", ns::CLIENT)
}

fn propose(to: &str, ns: &str, sid: &str, kind: Option<&str>) -> String {
    let kind = kind.map(|k| format!(" type='{k}'")).unwrap_or_default();
    format!(
        "<message to='{to}'{kind} id='m-{sid}'><propose xmlns='{ns}' id='{sid}'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>\
         <store xmlns='urn:xmpp:hints'/></message>"
    )
}

#[tokio::test]
async fn a_call_is_proposed_to_every_device_and_answered_to_the_caller() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    for ns in [JMI0, JMI1] {
        let sid = format!("call-{}", &ns[ns.len() - 1..]);
        let mut phone = server.login_with("alice", Some("phone"), true).await;
        let mut tablet = server.login_with("alice", Some("tablet"), true).await;
        let mut laptop = server.login_with("bob", Some("laptop"), true).await;
        let mut desk = server.login_with("bob", Some("desk"), true).await;
        enable_carbons(&mut tablet).await;
        enable_carbons(&mut desk).await;

        // The propose goes to the bare JID: every device of bob rings, alice's other device learns of the call.
        phone.send(propose(&laptop.bare(), ns, &sid, Some("chat"))).await;
        for device in [&mut laptop, &mut desk] {
            let m = device.expect(|m| jmi(m, ns, "propose", &sid)).await;
            assert_eq!(m.attr("from"), Some(phone.jid.as_str()));
        }
        let copy = tablet.expect(|m| carbon(m, "sent").is_some_and(|c| jmi(c, ns, "propose", &sid))).await;
        assert_eq!(copy.attr("from"), Some(tablet.bare().as_str()));

        // Bob picks up on the laptop: proceed goes to the caller's full JID only.
        let proceed = format!("<message to='{}' type='chat'><proceed xmlns='{ns}' id='{sid}'/></message>", phone.jid);
        laptop.send(proceed).await;
        let m = phone.expect(|m| jmi(m, ns, "proceed", &sid)).await;
        assert_eq!(m.attr("from"), Some(laptop.jid.as_str()));
        // Bob's desk stops ringing (sent carbon); alice's tablet learns the call was answered (received carbon).
        desk.expect(|m| carbon(m, "sent").is_some_and(|c| jmi(c, ns, "proceed", &sid))).await;
        tablet.expect(|m| carbon(m, "received").is_some_and(|c| jmi(c, ns, "proceed", &sid))).await;
        tablet.expect_no("a direct proceed", |m| jmi(m, ns, "proceed", &sid)).await;

        // The caller's other devices and the callee's other devices hear of finish/retract the same way.
        let finish = format!(
            "<message to='{}' type='chat'><finish xmlns='{ns}' id='{sid}'><reason xmlns='{JINGLE}'><success/></reason></finish></message>",
            laptop.jid
        );
        phone.send(finish).await;
        laptop.expect(|m| jmi(m, ns, "finish", &sid)).await;
        desk.expect(|m| carbon(m, "received").is_some_and(|c| jmi(c, ns, "finish", &sid))).await;

        for c in [phone, tablet, laptop, desk] {
            c.drop_connection();
        }
    }
}

#[tokio::test]
async fn accept_reject_and_retract_reach_everyone_they_should() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("bob", Some("laptop"), true).await;
    let mut desk = server.login_with("bob", Some("desk"), true).await;

    // :0 style: accept to one's own bare JID stops the other devices ringing.
    phone.send(propose(&laptop.bare(), JMI0, "c1", Some("chat"))).await;
    laptop.expect(|m| jmi(m, JMI0, "propose", "c1")).await;
    desk.expect(|m| jmi(m, JMI0, "propose", "c1")).await;
    laptop
        .send(format!("<message to='{}' type='chat'><accept xmlns='{JMI0}' id='c1'/></message>", laptop.bare()))
        .await;
    desk.expect(|m| jmi(m, JMI0, "accept", "c1")).await;

    // Reject goes back to the caller's full JID.
    phone.send(propose(&laptop.bare(), JMI1, "c2", Some("chat"))).await;
    desk.expect(|m| jmi(m, JMI1, "propose", "c2")).await;
    desk.send(format!("<message to='{}' type='chat'><reject xmlns='{JMI1}' id='c2'/></message>", phone.jid)).await;
    phone.expect(|m| jmi(m, JMI1, "reject", "c2")).await;

    // Retract goes to the bare JID like the propose: every device stops ringing.
    phone.send(propose(&laptop.bare(), JMI1, "c3", Some("chat"))).await;
    phone
        .send(format!("<message to='{}' type='chat'><retract xmlns='{JMI1}' id='c3'/></message>", laptop.bare()))
        .await;
    for device in [&mut laptop, &mut desk] {
        device.expect(|m| jmi(m, JMI1, "propose", "c3")).await;
        device.expect(|m| jmi(m, JMI1, "retract", "c3")).await;
    }
}

#[tokio::test]
async fn a_propose_without_a_type_is_carbon_copied_too() {
    // Older clients (jingle-message:0) send JMI as normal messages without a body; XEP-0280 §6 copies them.
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut tablet = server.login_with("alice", Some("tablet"), true).await;
    let mut laptop = server.login_with("bob", Some("laptop"), true).await;
    enable_carbons(&mut tablet).await;
    phone.send(propose(&laptop.bare(), JMI0, "n1", None)).await;
    laptop.expect(|m| jmi(m, JMI0, "propose", "n1")).await;
    tablet.expect(|m| carbon(m, "sent").is_some_and(|c| jmi(c, JMI0, "propose", "n1"))).await;
}

#[tokio::test]
async fn a_propose_to_an_offline_contact_waits_for_it() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    phone.send(propose("bob@localhost", JMI1, "late", Some("chat"))).await;
    phone.sync().await;
    phone.expect_no("an error", |m| m.attr("type") == Some("error")).await;
    let mut laptop = server.login_with("bob", Some("laptop"), true).await;
    laptop.expect(|m| jmi(m, JMI1, "propose", "late")).await;
}

#[tokio::test]
async fn jingle_iqs_travel_between_full_jids() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("bob", Some("laptop"), true).await;
    let mut desk = server.login_with("bob", Some("desk"), true).await;

    let initiate = format!(
        "<iq type='set' id='j1' to='{}'><jingle xmlns='{JINGLE}' action='session-initiate' sid='s1' \
         initiator='{}'><content creator='initiator' name='voice'/></jingle></iq>",
        laptop.jid, phone.jid
    );
    phone.send(initiate).await;
    let iq = laptop.expect(|m| m.is("iq", ns::CLIENT) && m.attr("id") == Some("j1")).await;
    assert_eq!(iq.attr("from"), Some(phone.jid.as_str()));
    assert_eq!(iq.child("jingle", JINGLE).and_then(|j| j.attr("action")), Some("session-initiate"));
    desk.expect_no("the IQ meant for the laptop", |m| m.attr("id") == Some("j1")).await;
    laptop.send(format!("<iq type='result' id='j1' to='{}'/>", phone.jid)).await;
    let ack = phone.expect(|m| m.attr("id") == Some("j1")).await;
    assert_eq!((ack.attr("type"), ack.attr("from")), (Some("result"), Some(laptop.jid.as_str())));

    // The answer the other way, and its error reply.
    laptop
        .send(format!(
            "<iq type='set' id='j2' to='{}'><jingle xmlns='{JINGLE}' action='session-accept' sid='s1'/></iq>",
            phone.jid
        ))
        .await;
    phone.expect(|m| m.attr("id") == Some("j2") && m.attr("type") == Some("set")).await;
    phone
        .send(format!(
            "<iq type='error' id='j2' to='{}'><error type='cancel'><item-not-found xmlns='{}'/></error></iq>",
            laptop.jid,
            ns::STANZA_ERRORS
        ))
        .await;
    let err = laptop.expect(|m| m.attr("id") == Some("j2")).await;
    assert_eq!(error_condition(&err).as_deref(), Some("item-not-found"));

    // A Jingle IQ to a resource that is not there, or to a bare JID, is answered by the server.
    let gone = format!("<iq type='set' id='j3' to='bob@localhost/gone'><jingle xmlns='{JINGLE}' action='session-initiate' sid='s2'/></iq>");
    let reply = phone.iq(&gone).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"));
    let bare = format!(
        "<iq type='set' id='j4' to='bob@localhost'><jingle xmlns='{JINGLE}' action='session-initiate' sid='s3'/></iq>"
    );
    let reply = phone.iq(&bare).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"));
    laptop.expect_no("an IQ not addressed to it", |m| matches!(m.attr("id"), Some("j3" | "j4"))).await;
}
