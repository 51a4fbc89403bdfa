//! The archive's per-owner indexes, kept in batches (archive_index.rs): queries give the same answers whatever part
//! of the archive is indexed, a `seq` under a watermark is never reused, and deleted rows leave no index entries.

mod common;

use drupe_store::{ArchiveEntry, ArchivePage, ArchiveQuery, Store};

fn entry(n: usize, with: &str) -> ArchiveEntry {
    ArchiveEntry {
        stanza_id: format!("id-{n:05}"),
        with: with.into(),
        outgoing: n % 2 == 0,
        timestamp_ms: 1_000 + n as i64,
        origin_id: (n % 3 == 0).then(|| format!("origin-{}", n % 30)),
        body: Some(format!("message {n}")),
        stanza: format!("<message id='m{n}'><body>message {n}</body></message>"),
    }
}

const OWNERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// Every answer the archive gives about `owner`, for comparing states: pages both ways (plain and with one
/// contact), the count, and lookups by stanza-id and origin-id.
async fn answers(store: &Store, owner: &str, appended: usize) -> Vec<String> {
    let mut out = Vec::new();
    for with in [None, Some("bob@example.org")] {
        for (after, before) in [(None, None), (Some("id-00005"), None), (None, Some(Some("id-00050")))] {
            for before_last in [false, true] {
                let query = ArchiveQuery {
                    max: 7,
                    with: with.map(Into::into),
                    after_id: after.map(Into::into),
                    before_id: if before_last { Some(None) } else { before.map(|b: Option<&str>| b.map(Into::into)) },
                    ..ArchiveQuery::default()
                };
                let page: Result<ArchivePage, _> = store.archive_query(owner, &query).await;
                out.push(format!("{query:?} -> {page:?}"));
            }
        }
    }
    out.push(format!("count {:?}", store.archive_count(owner).await));
    for n in (0..appended).step_by(7) {
        out.push(format!("get {n} {:?}", store.archive_get(owner, &format!("id-{n:05}")).await));
    }
    for o in 0..30 {
        out.push(format!("origin {o} {:?}", store.archive_find_origin(owner, &format!("origin-{o}")).await));
    }
    out
}

async fn store_with_owners() -> (tempfile::TempDir, Store) {
    let (dir, store) = common::fresh();
    for (i, owner) in OWNERS.iter().enumerate() {
        store.account_create(owner, &common::credentials(i as u8)).await.unwrap();
    }
    (dir, store)
}

/// Appends messages `range` for every owner, each owner's copy with a contact of its own.
async fn append(store: &Store, range: std::ops::Range<usize>) {
    for n in range {
        let rows = OWNERS
            .iter()
            .enumerate()
            .map(|(i, owner)| {
                let with = if (n + i) % 2 == 0 { "bob@example.org" } else { "zoe@example.org" };
                (owner.to_string(), entry(n, with))
            })
            .collect();
        store.archive_append_all(rows).await.unwrap();
    }
}

#[tokio::test]
async fn answers_are_the_same_whatever_part_of_the_archive_is_indexed() {
    let (_dir, store) = store_with_owners().await;
    append(&store, 0..60).await;
    let mut before = Vec::new();
    for owner in OWNERS {
        before.push(answers(&store, owner, 60).await);
    }
    assert!(before[0].iter().any(|a| a.contains("stanza_id: \"id-00056\"")), "the tail is read");

    // Everything indexed.
    assert_eq!(store.archive_index_tail().await.unwrap(), 5 * 60);
    assert_eq!(store.archive_index_tail().await.unwrap(), 0, "nothing left");
    for (i, owner) in OWNERS.iter().enumerate() {
        assert_eq!(answers(&store, owner, 60).await, before[i], "{owner}, all indexed");
    }

    // Part indexed, part in the tail: the same answers again once the new rows are in either part.
    append(&store, 60..90).await;
    let mut tail = Vec::new();
    for owner in OWNERS {
        tail.push(answers(&store, owner, 90).await);
    }
    store.archive_index_tail().await.unwrap();
    for (i, owner) in OWNERS.iter().enumerate() {
        assert_eq!(answers(&store, owner, 90).await, tail[i], "{owner}, indexed again");
    }
}

#[tokio::test]
async fn a_seq_under_a_watermark_is_never_reused() {
    let (_dir, store) = store_with_owners().await;
    append(&store, 0..10).await;
    // bob's rows are the newest; index them, then remove bob: the archive's last `seq`s are gone.
    let mut newest: Vec<(String, ArchiveEntry)> = Vec::new();
    for n in 10..20 {
        newest.push(("bob".into(), entry(n, "alice@example.org")));
    }
    store.archive_append_all(newest).await.unwrap();
    store.archive_index_tail().await.unwrap();
    assert!(store.account_remove("bob").await.unwrap());

    // alice's next message must not take one of those `seq`s: it would sit under a watermark, unindexed.
    let late = entry(30, "carol@example.org");
    store.archive_append("alice", &late).await.unwrap();
    let last = store
        .archive_query("alice", &ArchiveQuery { max: 1, before_id: Some(None), ..ArchiveQuery::default() })
        .await
        .unwrap();
    assert_eq!(last.items, vec![late.clone()]);
    assert_eq!(store.archive_count("alice").await.unwrap(), 11);
    store.archive_index_tail().await.unwrap();
    assert_eq!(store.archive_get("alice", "id-00030").await.unwrap(), Some(late));
    assert_eq!(store.archive_count("alice").await.unwrap(), 11);
}

fn index_entries(dir: &tempfile::TempDir) -> i64 {
    let conn = rusqlite::Connection::open(common::db_path(dir)).unwrap();
    conn.query_row(
        "SELECT (SELECT count(*) FROM archive_owner_index) + (SELECT count(*) FROM archive_with_index)
              + (SELECT count(*) FROM archive_origin_index)",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn deleted_rows_leave_no_index_entries() {
    let (dir, store) = store_with_owners().await;
    append(&store, 0..30).await;
    store.archive_index_tail().await.unwrap();
    // Per row: owner and with entries; an origin entry for every third message.
    assert_eq!(index_entries(&dir), 5 * (30 + 30 + 10));

    assert!(store.account_remove("carol").await.unwrap());
    assert_eq!(index_entries(&dir), 4 * (30 + 30 + 10));
    // Retention: messages 0..15 are older than 1,015 ms.
    assert_eq!(store.archive_purge_before(1_015).await.unwrap(), 4 * 15);
    assert_eq!(index_entries(&dir), 4 * (15 + 15 + 5));
    assert_eq!(store.archive_count("alice").await.unwrap(), 15);
}

#[tokio::test]
async fn a_long_tail_is_indexed_by_the_appends_themselves() {
    let (dir, store) = store_with_owners().await;
    // 5 owners x 3,400 messages: past the 16,384 rows that start a pass in the background.
    for start in (0..3_400).step_by(200) {
        let rows = (start..start + 200)
            .flat_map(|n| OWNERS.iter().map(move |owner| (owner.to_string(), entry(n, "bob@example.org"))))
            .collect();
        store.archive_append_all(rows).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while index_entries(&dir) == 0 {
        assert!(std::time::Instant::now() < deadline, "no index pass started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.archive_count("alice").await.unwrap(), 3_400);
}
