//! Rosters (RFC 6121 §2): items with groups and subscription flags, and the per-owner version.

mod common;

use drupe_store::{RosterItem, StoreError, Subscription};

fn item(jid: &str, subscription: Subscription, groups: &[&str]) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        name: None,
        subscription,
        ask_out: false,
        pending_in: false,
        approved: false,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

#[tokio::test]
async fn every_change_bumps_the_owners_roster_version() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    assert_eq!(store.roster_version("alice").await.unwrap(), 0);

    let carol = item("carol@example.org", Subscription::None, &[]);
    assert_eq!(store.roster_put("alice", &carol).await.unwrap(), 1);
    assert_eq!(store.roster_put("alice", &carol).await.unwrap(), 2);
    let dave = item("dave@example.org", Subscription::To, &[]);
    assert_eq!(store.roster_put("alice", &dave).await.unwrap(), 3);
    assert_eq!(store.roster_remove("alice", "carol@example.org").await.unwrap(), Some(4));
    // Removing what is not there changes nothing, version included.
    assert_eq!(store.roster_remove("alice", "carol@example.org").await.unwrap(), None);
    assert_eq!(store.roster_version("alice").await.unwrap(), 4);

    // Versions are per owner.
    assert_eq!(store.roster_put("bob", &carol).await.unwrap(), 1);
    assert_eq!(store.roster("alice").await.unwrap().version, 4);
}

#[tokio::test]
async fn an_item_is_stored_with_all_its_fields_and_replaced_whole() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    assert_eq!(store.roster_item("alice", "carol@example.org").await.unwrap(), None);

    let first = RosterItem {
        jid: "carol@example.org".into(),
        name: Some("Carol".into()),
        subscription: Subscription::From,
        ask_out: true,
        pending_in: false,
        approved: true,
        groups: vec!["Work".into(), "Friends".into(), "Chess".into()],
    };
    store.roster_put("alice", &first).await.unwrap();
    assert_eq!(store.roster_item("alice", "carol@example.org").await.unwrap(), Some(first.clone()));

    let second = RosterItem {
        name: None,
        subscription: Subscription::Both,
        ask_out: false,
        pending_in: true,
        approved: false,
        groups: vec!["Friends".into()],
        ..first
    };
    store.roster_put("alice", &second).await.unwrap();
    assert_eq!(store.roster_item("alice", "carol@example.org").await.unwrap(), Some(second.clone()));

    let ungrouped = RosterItem { groups: vec![], ..second };
    store.roster_put("alice", &ungrouped).await.unwrap();
    assert_eq!(store.roster_item("alice", "carol@example.org").await.unwrap(), Some(ungrouped));
}

#[tokio::test]
async fn the_roster_lists_items_sorted_each_with_its_own_groups() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    let items = [
        item("zed@example.org", Subscription::None, &["B", "A"]),
        item("amy@example.org", Subscription::Both, &["Friends"]),
        item("max@example.org", Subscription::To, &[]),
        item("kim@example.org", Subscription::From, &["Friends", "Work"]),
    ];
    for item in &items {
        store.roster_put("alice", item).await.unwrap();
    }
    // Another owner's items and groups must not leak in.
    store.roster_put("bob", &item("amy@example.org", Subscription::None, &["Bob's"])).await.unwrap();

    let roster = store.roster("alice").await.unwrap();
    assert_eq!(roster.version, 4);
    let mut expected = items.to_vec();
    expected.sort_by(|a, b| a.jid.cmp(&b.jid));
    assert_eq!(roster.items, expected);
}

#[tokio::test]
async fn duplicate_groups_are_kept_once() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    let doubled = item("amy@example.org", Subscription::None, &["A", "B", "A"]);
    store.roster_put("alice", &doubled).await.unwrap();
    let stored = store.roster_item("alice", "amy@example.org").await.unwrap().unwrap();
    assert_eq!(stored.groups, ["A", "B"]);
}

#[tokio::test]
async fn a_roster_needs_an_account() {
    let (_dir, store) = common::fresh();
    let result = store.roster_put("ghost", &item("amy@example.org", Subscription::None, &[])).await;
    assert!(matches!(result, Err(StoreError::NoSuchAccount)), "{result:?}");
    assert_eq!(store.roster_version("ghost").await.unwrap(), 0);
    assert_eq!(store.roster_remove("ghost", "amy@example.org").await.unwrap(), None);
}

#[test]
fn subscription_states_round_trip_through_their_attribute_values() {
    for s in [Subscription::None, Subscription::To, Subscription::From, Subscription::Both] {
        assert_eq!(Subscription::parse(s.as_str()), Some(s));
    }
    assert_eq!(Subscription::parse("remove"), None);
}
