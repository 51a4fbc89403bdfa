//! PEP storage (XEP-0060/0163): auto-create on publish, replacement by id, max_items trimming, paging, retract,
//! purge, delete, node limits, affiliations; vcard-temp and private XML storage.

mod common;

use drupe_store::{AccessModel, Affiliation, ItemsQuery, NodeConfig, NodeCreated, Published, PubsubItem, StoreError};

fn item(id: &str, n: i64) -> PubsubItem {
    PubsubItem { id: id.into(), publisher: "alice@x".into(), payload: format!("<p xmlns='t'>{n}</p>"), published_ms: n }
}

fn ids(page: &drupe_store::ItemsPage) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

async fn with_alice() -> (tempfile::TempDir, drupe_store::Store) {
    let (dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn publish_creates_the_node_replaces_by_id_and_keeps_max_items() {
    let (_dir, store) = with_alice().await;
    let config = NodeConfig { max_items: 3, ..NodeConfig::default() };
    let first = store.pubsub_publish("alice", "n", &config, &item("a", 1), 10).await.unwrap();
    assert_eq!(first, Published::Stored { created: true, config: config.clone() });
    for (id, n) in [("b", 2), ("c", 3), ("a", 4), ("d", 5)] {
        let other = NodeConfig { max_items: 99, ..NodeConfig::default() };
        let again = store.pubsub_publish("alice", "n", &other, &item(id, n), 10).await.unwrap();
        assert_eq!(again, Published::Stored { created: false, config: config.clone() }, "existing config kept");
    }
    let all = ItemsQuery { max: 100, ..Default::default() };
    let page = store.pubsub_items("alice", "n", &all).await.unwrap();
    // "a" was republished (moved to the end); "b" is the oldest and fell off.
    assert_eq!(ids(&page), ["c", "a", "d"]);
    assert_eq!(page.count, 3);
    assert_eq!(store.pubsub_last_item("alice", "n").await.unwrap().unwrap().id, "d");
    assert_eq!(store.pubsub_last_item("alice", "none").await.unwrap(), None);
}

#[tokio::test]
async fn paging_by_rsm_anchors_and_ids() {
    let (_dir, store) = with_alice().await;
    let config = NodeConfig { max_items: 100, ..NodeConfig::default() };
    for n in 1..=7 {
        store.pubsub_publish("alice", "n", &config, &item(&format!("i{n}"), n), 10).await.unwrap();
    }
    let q = |after: Option<&str>, before: Option<Option<&str>>, max| ItemsQuery {
        after: after.map(Into::into),
        before: before.map(|b| b.map(Into::into)),
        max,
        ..Default::default()
    };
    let first = store.pubsub_items("alice", "n", &q(None, None, 3)).await.unwrap();
    assert_eq!((ids(&first), first.complete, first.count), (vec!["i1", "i2", "i3"], false, 7));
    let next = store.pubsub_items("alice", "n", &q(Some("i3"), None, 3)).await.unwrap();
    assert_eq!(ids(&next), ["i4", "i5", "i6"]);
    let last = store.pubsub_items("alice", "n", &q(Some("i6"), None, 3)).await.unwrap();
    assert_eq!((ids(&last), last.complete), (vec!["i7"], true));
    let latest = store.pubsub_items("alice", "n", &q(None, Some(None), 2)).await.unwrap();
    assert_eq!(ids(&latest), ["i6", "i7"]);
    let before = store.pubsub_items("alice", "n", &q(None, Some(Some("i3")), 5)).await.unwrap();
    assert_eq!((ids(&before), before.complete), (vec!["i1", "i2"], true));
    let missing = store.pubsub_items("alice", "n", &q(Some("nope"), None, 3)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let by_id = ItemsQuery { ids: vec!["i5".into(), "zz".into(), "i2".into()], max: 10, ..Default::default() };
    assert_eq!(ids(&store.pubsub_items("alice", "n", &by_id).await.unwrap()), ["i2", "i5"]);
}

#[tokio::test]
async fn retract_purge_delete_configure_and_limits() {
    let (_dir, store) = with_alice().await;
    let config = NodeConfig { max_items: 5, ..NodeConfig::default() };
    for n in 1..=4 {
        store.pubsub_publish("alice", "n", &config, &item(&format!("i{n}"), n), 2).await.unwrap();
    }
    assert!(store.pubsub_retract("alice", "n", "i2").await.unwrap());
    assert!(!store.pubsub_retract("alice", "n", "i2").await.unwrap());
    // Lowering max_items (or persist_items=false) trims to the newest.
    let fewer = NodeConfig { max_items: 2, access_model: AccessModel::Open, ..config.clone() };
    assert!(store.pubsub_node_configure("alice", "n", &fewer).await.unwrap());
    let all = ItemsQuery { max: 100, ..Default::default() };
    assert_eq!(ids(&store.pubsub_items("alice", "n", &all).await.unwrap()), ["i3", "i4"]);
    assert_eq!(store.pubsub_node("alice", "n").await.unwrap(), Some(fewer));
    let volatile = NodeConfig { persist_items: false, max_items: 10, ..config.clone() };
    store.pubsub_node_configure("alice", "n", &volatile).await.unwrap();
    assert_eq!(ids(&store.pubsub_items("alice", "n", &all).await.unwrap()), ["i4"]);

    // Node limit: 2 per account.
    assert_eq!(store.pubsub_node_create("alice", "m", &config, 2).await.unwrap(), NodeCreated::Created);
    assert_eq!(store.pubsub_node_create("alice", "m", &config, 2).await.unwrap(), NodeCreated::Exists);
    assert_eq!(store.pubsub_node_create("alice", "o", &config, 2).await.unwrap(), NodeCreated::TooManyNodes);
    assert_eq!(store.pubsub_publish("alice", "o", &config, &item("x", 1), 2).await.unwrap(), Published::TooManyNodes);
    let nodes: Vec<String> = store.pubsub_nodes("alice").await.unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(nodes, ["m", "n"]);

    assert!(store.pubsub_purge("alice", "n").await.unwrap());
    assert_eq!(store.pubsub_items("alice", "n", &all).await.unwrap().count, 0);
    assert!(store.pubsub_node_delete("alice", "n").await.unwrap());
    assert!(!store.pubsub_node_delete("alice", "n").await.unwrap());
    assert_eq!(store.pubsub_node("alice", "n").await.unwrap(), None);
    let nobody = store.pubsub_publish("bob", "n", &config, &item("x", 1), 2).await;
    assert!(matches!(nobody, Err(StoreError::NoSuchAccount)), "{nobody:?}");
}

#[tokio::test]
async fn affiliations_vcards_and_private_xml_persist() {
    let (dir, store) = with_alice().await;
    store.pubsub_node_create("alice", "w", &NodeConfig::default(), 10).await.unwrap();
    let changes = [("bob@x".to_owned(), Some(Affiliation::Member)), ("eve@x".to_owned(), Some(Affiliation::Outcast))];
    assert!(store.pubsub_set_affiliations("alice", "w", &changes).await.unwrap());
    assert!(store.pubsub_set_affiliations("alice", "w", &[("eve@x".into(), None)]).await.unwrap());
    assert!(!store.pubsub_set_affiliations("alice", "missing", &changes).await.unwrap());

    store.vcard_set("alice", "<vCard xmlns='vcard-temp'><FN>A</FN></vCard>").await.unwrap();
    assert!(store.private_xml_set("alice", "ns:a", Some("<a xmlns='ns:a'/>"), 100).await.unwrap());
    // Over the per-account quota: refused, nothing stored.
    assert!(!store.private_xml_set("alice", "ns:b", Some(&"x".repeat(95)), 100).await.unwrap());
    assert_eq!(store.private_xml("alice", "ns:b").await.unwrap(), None);
    store.close().await;
    drop(store);

    let store = drupe_store::Store::open_sqlite(&common::db_path(&dir), Default::default()).unwrap();
    assert_eq!(store.pubsub_affiliations("alice", "w").await.unwrap(), [("bob@x".to_owned(), Affiliation::Member)]);
    assert_eq!(store.vcard("alice").await.unwrap().as_deref(), Some("<vCard xmlns='vcard-temp'><FN>A</FN></vCard>"));
    assert_eq!(store.private_xml("alice", "ns:a").await.unwrap().as_deref(), Some("<a xmlns='ns:a'/>"));
    assert!(store.private_xml_set("alice", "ns:a", None, 100).await.unwrap());
    assert_eq!(store.private_xml("alice", "ns:a").await.unwrap(), None);
    // Removing the account removes everything it owned.
    assert!(store.account_remove("alice").await.unwrap());
    assert_eq!(store.pubsub_node("alice", "w").await.unwrap(), None);
    assert_eq!(store.vcard("alice").await.unwrap(), None);
}
