//! XEP-0045 rooms in the store: persistent rooms with configuration, subject and affiliations, room archives with
//! paging and tombstones, and removal taking everything of a room with it.

mod common;

use drupe_store::{ArchiveQuery, RoomMessage, StoreError};

fn message(seq: i64, id: &str, nick: &str, body: &str) -> RoomMessage {
    RoomMessage {
        seq,
        stanza_id: id.into(),
        nick: nick.into(),
        timestamp_ms: seq / 1000,
        origin_id: None,
        body: Some(body.into()),
        stanza: format!("<message><body>{body}</body></message>"),
    }
}

fn bodies(page: &drupe_store::ArchivePage) -> Vec<String> {
    page.items.iter().filter_map(|e| e.body.clone()).collect()
}

#[tokio::test]
async fn rooms_keep_their_configuration_subject_and_affiliations() {
    let (_dir, store) = common::fresh();
    assert!(store.muc_rooms().await.unwrap().is_empty());
    assert!(matches!(store.muc_affiliation_set("none", "a@x", Some("owner")).await, Err(StoreError::NotFound)));
    store.muc_room_put("lobby", 1, "<x/>", None).await.unwrap();
    store.muc_affiliation_set("lobby", "b@x", Some("member")).await.unwrap();
    store.muc_affiliation_set("lobby", "a@x", Some("owner")).await.unwrap();
    store.muc_affiliation_set("lobby", "c@x", Some("outcast")).await.unwrap();
    store.muc_affiliation_set("lobby", "c@x", None).await.unwrap();
    store.muc_room_put("lobby", 3, "<x type='submit'/>", Some("<message/>")).await.unwrap();
    // A write that arrives late with an older version changes nothing.
    store.muc_room_put("lobby", 2, "<x type='stale'/>", None).await.unwrap();
    let rooms = store.muc_rooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].config, "<x type='submit'/>");
    assert_eq!(rooms[0].subject.as_deref(), Some("<message/>"));
    assert_eq!(rooms[0].version, 3);
    assert_eq!(
        rooms[0].affiliations,
        [("a@x".to_owned(), "owner".to_owned()), ("b@x".to_owned(), "member".to_owned())]
    );
    // Only the four stored affiliations exist.
    assert!(store.muc_affiliation_set("lobby", "d@x", Some("king")).await.is_err());
}

#[tokio::test]
async fn a_room_archive_pages_filters_and_keeps_tombstones() {
    let (_dir, store) = common::fresh();
    assert!(matches!(store.muc_archive_append("lobby", &message(1, "a", "n", "x")).await, Err(StoreError::NotFound)));
    store.muc_room_put("lobby", 1, "<x/>", None).await.unwrap();
    store.muc_room_put("other", 1, "<x/>", None).await.unwrap();
    for (i, nick) in ["ann", "bob", "ann", "bob", "ann"].iter().enumerate() {
        let seq = 1_000_000 + i as i64;
        store.muc_archive_append("lobby", &message(seq, &format!("id{i}"), nick, &format!("m{i}"))).await.unwrap();
    }
    store.muc_archive_append("other", &message(5, "id0", "ann", "elsewhere")).await.unwrap();
    assert!(matches!(
        store.muc_archive_append("lobby", &message(9, "id0", "x", "dup")).await,
        Err(StoreError::AlreadyExists)
    ));

    let all = store.muc_archive_query("lobby", &ArchiveQuery { max: 10, ..Default::default() }).await.unwrap();
    assert_eq!(bodies(&all), ["m0", "m1", "m2", "m3", "m4"]);
    assert!(all.complete);
    assert_eq!(all.count, Some(5));
    let last = ArchiveQuery { max: 2, before_id: Some(None), ..Default::default() };
    let page = store.muc_archive_query("lobby", &last).await.unwrap();
    assert_eq!(bodies(&page), ["m3", "m4"]);
    assert!(!page.complete);
    let after = ArchiveQuery { max: 2, after_id: Some("id1".into()), ..Default::default() };
    assert_eq!(bodies(&store.muc_archive_query("lobby", &after).await.unwrap()), ["m2", "m3"]);
    let with = ArchiveQuery { max: 10, with: Some("bob".into()), ..Default::default() };
    assert_eq!(bodies(&store.muc_archive_query("lobby", &with).await.unwrap()), ["m1", "m3"]);
    let text = ArchiveQuery { max: 10, text: Some("M4".into()), ..Default::default() };
    assert_eq!(bodies(&store.muc_archive_query("lobby", &text).await.unwrap()), ["m4"]);
    let unknown = ArchiveQuery { max: 2, after_id: Some("nope".into()), ..Default::default() };
    assert!(matches!(store.muc_archive_query("lobby", &unknown).await, Err(StoreError::NotFound)));

    assert!(store.muc_archive_moderate("lobby", "id2", "<message><retracted/></message>").await.unwrap());
    assert!(!store.muc_archive_moderate("lobby", "missing", "<x/>").await.unwrap());
    let tomb = store.muc_archive_get("lobby", "id2").await.unwrap().expect("kept");
    assert_eq!((tomb.body, tomb.stanza.as_str()), (None, "<message><retracted/></message>"));
    assert_eq!(store.muc_archive_count("lobby").await.unwrap(), 5);

    // Removing a room takes its affiliations and archive; other rooms keep theirs.
    store.muc_affiliation_set("lobby", "a@x", Some("owner")).await.unwrap();
    assert!(store.muc_room_remove("lobby").await.unwrap());
    assert!(!store.muc_room_remove("lobby").await.unwrap());
    assert_eq!(store.muc_archive_count("lobby").await.unwrap(), 0);
    assert_eq!(store.muc_archive_count("other").await.unwrap(), 1);
    let rooms = store.muc_rooms().await.unwrap();
    assert_eq!(rooms.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(), ["other"]);
}
