//! XEP-0054 vcard-temp with XEP-0398 avatar conversion and XEP-0153 presence hashes, and XEP-0172 nick in PEP.

mod common;
mod pep_support;

use base64::Engine;
use common::{bare, error_condition, ns, Client, TestServer};
use pep_support::*;

const AVATAR_DATA: &str = "urn:xmpp:avatar:data";
const AVATAR_METADATA: &str = "urn:xmpp:avatar:metadata";
const NICK: &str = "http://jabber.org/protocol/nick";
const UPDATE: &str = "vcard-temp:x:update";

async fn get_vcard(c: &mut Client, to: Option<&str>) -> common::Element {
    let id = c.id();
    let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    c.iq(&format!("<iq type='get' id='{id}'{to}><vCard xmlns='vcard-temp'/></iq>")).await
}

async fn set_vcard(c: &mut Client, inner: &str) -> common::Element {
    let id = c.id();
    c.iq(&format!("<iq type='set' id='{id}'><vCard xmlns='vcard-temp'>{inner}</vCard></iq>")).await
}

fn sha1_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn vcards_are_stored_read_by_anyone_and_written_only_by_their_owner() {
    let server = TestServer::start_with(|c| c.pubsub.max_vcard_bytes = 2048).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let empty = get_vcard(&mut alice, None).await;
    assert_eq!(empty.attr("type"), Some("result"), "{}", empty.to_xml());
    assert!(empty.child("vCard", "vcard-temp").is_some_and(|v| v.children().next().is_none()));

    let reply = set_vcard(&mut alice, "<FN>Alice Liddell</FN><NICKNAME>al</NICKNAME>").await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for (reader, to) in [(&mut alice, None), (&mut bob, Some(bare("alice")))] {
        let got = get_vcard(reader, to.as_deref()).await;
        let fn_ = got.child("vCard", "vcard-temp").and_then(|v| v.child("FN", "vcard-temp")).map(|f| f.text());
        assert_eq!(fn_.as_deref(), Some("Alice Liddell"), "{}", got.to_xml());
    }
    // A missing account looks like one without a vCard (no enumeration).
    let none = get_vcard(&mut bob, Some(&bare("nobody"))).await;
    assert_eq!(none.attr("type"), Some("result"), "{}", none.to_xml());

    let id = bob.id();
    let forbidden = bob
        .iq(&format!(
            "<iq type='set' id='{id}' to='{}'><vCard xmlns='vcard-temp'><FN>x</FN></vCard></iq>",
            bare("alice")
        ))
        .await;
    assert_eq!(error_condition(&forbidden).as_deref(), Some("forbidden"), "{}", forbidden.to_xml());
    let too_big = set_vcard(&mut alice, &format!("<DESC>{}</DESC>", "x".repeat(3000))).await;
    assert_eq!(error_condition(&too_big).as_deref(), Some("not-acceptable"), "{}", too_big.to_xml());
    let kept = get_vcard(&mut alice, None).await;
    assert!(kept.to_xml().contains("Alice Liddell"), "{}", kept.to_xml());
}

#[tokio::test]
async fn a_vcard_photo_becomes_the_pep_avatar_and_the_presence_hash() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let image = b"\x89PNG not really an image".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
    let hash = sha1_hex(&image);
    let mut alice = server.login("alice").await;
    let reply = set_vcard(&mut alice, &format!("<PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL></PHOTO>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());

    // XEP-0398: data and metadata were published, with the SHA-1 as id.
    let mut bob = server.login("bob").await;
    let meta = items(&mut bob, &bare("alice"), AVATAR_METADATA, "", "", "").await;
    assert_eq!(item_ids(&meta), std::slice::from_ref(&hash), "{}", meta.to_xml());
    let info = meta.to_xml();
    assert!(info.contains(&format!("bytes='{}'", image.len())) && info.contains("type='image/png'"), "{info}");
    let data = items(&mut bob, &bare("alice"), AVATAR_DATA, "", "", "").await;
    assert!(data.to_xml().contains(&b64), "{}", data.to_xml());

    // XEP-0153: alice's next presence carries the hash.
    bob.discard_unmatched();
    alice.send("<presence/>").await;
    let p = bob.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(alice.jid.as_str())).await;
    let photo = p.child("x", "vcard-temp:x:update").and_then(|x| x.child("photo", "vcard-temp:x:update"));
    assert_eq!(photo.map(|p| p.text()), Some(hash.clone()), "{}", p.to_xml());

    // XEP-0398 §4: an empty <photo/> is left alone, an empty <x/> gets the hash.
    let photo_of = |p: &common::Element| p.child("x", UPDATE).and_then(|x| x.child("photo", UPDATE)).map(|p| p.text());
    let from_alice =
        |el: &common::Element| el.is("presence", ns::CLIENT) && el.attr("from") == Some("alice@localhost/test");
    alice.send(format!("<presence><x xmlns='{UPDATE}'><photo/></x></presence>")).await;
    let p = bob.expect(from_alice).await;
    assert_eq!(photo_of(&p).as_deref(), Some(""), "{}", p.to_xml());
    alice.send(format!("<presence><x xmlns='{UPDATE}'/></presence>")).await;
    let p = bob.expect(from_alice).await;
    assert_eq!(photo_of(&p), Some(hash.clone()), "{}", p.to_xml());

    // Directed presence too, such as a room join.
    let joined = alice.join("lobby", "al").await;
    let own = joined
        .iter()
        .find(|el| {
            el.is("presence", ns::CLIENT) && el.attr("from") == Some(common::muc::occupant("lobby", "al").as_str())
        })
        .expect("own occupant presence");
    assert_eq!(photo_of(own), Some(hash), "{}", own.to_xml());
}

#[tokio::test]
async fn a_pep_avatar_is_mirrored_into_the_vcard() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    set_vcard(&mut alice, "<FN>Alice</FN>").await;
    let image = b"GIF89a tiny".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
    let hash = sha1_hex(&image);
    let data = format!("<data xmlns='{AVATAR_DATA}'>{b64}</data>");
    assert_eq!(publish(&mut alice, AVATAR_DATA, &hash, &data, &[]).await.attr("type"), Some("result"));
    let meta = format!(
        "<metadata xmlns='{AVATAR_METADATA}'><info id='{hash}' bytes='{}' type='image/gif'/></metadata>",
        image.len()
    );
    assert_eq!(publish(&mut alice, AVATAR_METADATA, &hash, &meta, &[]).await.attr("type"), Some("result"));

    let vcard = get_vcard(&mut alice, None).await;
    let v = vcard.child("vCard", "vcard-temp").expect("vCard");
    assert_eq!(v.child("FN", "vcard-temp").map(|f| f.text()).as_deref(), Some("Alice"), "other fields kept");
    let photo = v.child("PHOTO", "vcard-temp").expect("PHOTO");
    assert_eq!(photo.child("BINVAL", "vcard-temp").map(|b| b.text()), Some(b64));
    assert_eq!(photo.child("TYPE", "vcard-temp").map(|t| t.text()).as_deref(), Some("image/gif"));

    // Disabling the avatar (empty metadata) removes the PHOTO.
    publish(&mut alice, AVATAR_METADATA, "none", &format!("<metadata xmlns='{AVATAR_METADATA}'/>"), &[]).await;
    let vcard = get_vcard(&mut alice, None).await;
    assert!(
        vcard.child("vCard", "vcard-temp").and_then(|v| v.child("PHOTO", "vcard-temp")).is_none(),
        "{}",
        vcard.to_xml()
    );
}

#[tokio::test]
async fn a_nick_is_published_to_contacts_that_want_it() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let (mut alice, _) = online(&server, "alice", "phone", &[]).await;
    let (mut bob, _) = online(&server, "bob", "pc", &[&format!("{NICK}+notify")]).await;
    publish(&mut alice, NICK, "current", &format!("<nick xmlns='{NICK}'>Ally</nick>"), &[]).await;
    let note = bob.expect(|el| event(el, &bare("alice"), NICK).is_some()).await;
    assert!(note.to_xml().contains(">Ally</nick>"), "{}", note.to_xml());
}

#[tokio::test]
async fn vcard_temp_and_vcard4_stay_in_step() {
    const VCARD4: &str = "urn:ietf:params:xml:ns:vcard-4.0";
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    set_vcard(&mut alice, "<FN>Alice Liddell</FN><JABBERID>a@x</JABBERID>").await;
    let v4 = items(&mut alice, &bare("alice"), "urn:xmpp:vcard4", "", "", "").await;
    assert_eq!(item_ids(&v4), ["current"], "{}", v4.to_xml());
    assert!(v4.to_xml().contains("<fn><text>Alice Liddell</text></fn>"), "{}", v4.to_xml());

    let card =
        format!("<vcard xmlns='{VCARD4}'><fn><text>Alice L.</text></fn><nickname><text>al</text></nickname></vcard>");
    assert_eq!(publish(&mut alice, "urn:xmpp:vcard4", "current", &card, &[]).await.attr("type"), Some("result"));
    let temp = get_vcard(&mut alice, None).await;
    let v = temp.child("vCard", "vcard-temp").expect("vCard");
    assert_eq!(v.child("FN", "vcard-temp").map(|f| f.text()).as_deref(), Some("Alice L."), "{}", temp.to_xml());
    assert_eq!(v.child("NICKNAME", "vcard-temp").map(|f| f.text()).as_deref(), Some("al"));
    assert_eq!(v.child("JABBERID", "vcard-temp").map(|f| f.text()).as_deref(), Some("a@x"), "unmapped field kept");
}
