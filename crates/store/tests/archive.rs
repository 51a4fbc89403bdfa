//! The message archive (XEP-0313): RSM paging both ways, filters, ids, full-text search,
//! anchors, duplicates, retention, preferences (XEP-0441) and removal with the account.

mod common;

use drupe_store::{ArchiveDefault, ArchiveEntry, ArchivePage, ArchivePrefs, ArchiveQuery, Store, StoreError};

/// Message `n`: alternately with bob and carol, ten milliseconds apart; every tenth one
/// says "hello", every fifteenth "weather".
fn entry(n: usize) -> ArchiveEntry {
    let mut body = format!("message number {n}");
    if n % 10 == 0 {
        body.push_str(" hello there");
    }
    if n % 15 == 0 {
        body.push_str(" nice weather");
    }
    ArchiveEntry {
        stanza_id: format!("id-{n:04}"),
        with: if n % 2 == 0 { "bob@example.org" } else { "carol@example.org" }.into(),
        outgoing: n % 3 == 0,
        timestamp_ms: 1_000 + 10 * n as i64,
        origin_id: (n % 4 == 0).then(|| format!("origin-{n}")),
        body: Some(body.clone()),
        stanza: format!("<message id='m{n}'><body>{body}</body></message>"),
    }
}

/// A store where alice has archived messages 0..n and mallory a few of her own. The first two thirds of alice's
/// are in the per-owner indexes, the rest in the tail, so every query reads both parts.
async fn archive_of(n: usize) -> (tempfile::TempDir, Store, Vec<ArchiveEntry>) {
    let (dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("mallory", &common::credentials(2)).await.unwrap();
    let entries: Vec<_> = (0..n).map(entry).collect();
    for (i, entry) in entries.iter().enumerate() {
        if i == 2 * n / 3 {
            store.archive_index_tail().await.unwrap();
        }
        store.archive_append("alice", entry).await.unwrap();
    }
    for n in [1000, 1001, 1010] {
        store.archive_append("mallory", &entry(n)).await.unwrap();
    }
    (dir, store, entries)
}

fn query(max: usize) -> ArchiveQuery {
    ArchiveQuery { max, ..ArchiveQuery::default() }
}

/// Pages through everything `base` matches, forward or backward, checking that each page
/// holds at most `max` items in archive order and that only the last is complete.
/// Returns every item in archive order.
async fn page_through(store: &Store, base: &ArchiveQuery, backward: bool) -> Vec<ArchiveEntry> {
    let mut query = base.clone();
    if backward {
        query.before_id = Some(None);
    }
    let mut pages: Vec<ArchivePage> = Vec::new();
    loop {
        let page = store.archive_query("alice", &query).await.unwrap();
        assert!(page.items.len() <= base.max);
        assert!(page.items.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms), "archive order");
        let complete = page.complete;
        if !complete {
            assert_eq!(page.items.len(), base.max, "only the last page may be short");
        }
        match (backward, page.items.first(), page.items.last()) {
            (true, Some(first), _) => query.before_id = Some(Some(first.stanza_id.clone())),
            (false, _, Some(last)) => query.after_id = Some(last.stanza_id.clone()),
            _ => assert!(complete, "an empty page is the last"),
        }
        pages.push(page);
        if complete {
            break;
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
    let count = pages[0].count;
    assert!(pages.iter().all(|page| page.count == count), "the count ignores paging");
    if backward {
        pages.reverse();
    }
    let items: Vec<_> = pages.into_iter().flat_map(|page| page.items).collect();
    assert_eq!(count, Some(items.len() as u64));
    items
}

#[tokio::test]
async fn forward_paging_takes_three_pages_and_only_the_last_is_complete() {
    let (_dir, store, entries) = archive_of(250).await;
    let mut query = query(100);
    let mut expected = [(0..100, false), (100..200, false), (200..250, true)].into_iter();
    for (range, complete) in expected.by_ref() {
        let page = store.archive_query("alice", &query).await.unwrap();
        assert_eq!(page.items, entries[range]);
        assert_eq!(page.complete, complete);
        assert_eq!(page.count, Some(250));
        query.after_id = Some(page.items.last().unwrap().stanza_id.clone());
    }
    // After the very last item: nothing more, complete.
    let page = store.archive_query("alice", &query).await.unwrap();
    assert_eq!((page.items.len(), page.complete), (0, true));
}

#[tokio::test]
async fn backward_paging_starts_with_the_last_page_and_each_page_is_chronological() {
    let (_dir, store, entries) = archive_of(250).await;
    let mut query = ArchiveQuery { before_id: Some(None), ..query(100) };
    for (range, complete) in [(150..250, false), (50..150, false), (0..50, true)] {
        let page = store.archive_query("alice", &query).await.unwrap();
        assert_eq!(page.items, entries[range]);
        assert_eq!(page.complete, complete);
        assert_eq!(page.count, Some(250));
        query.before_id = Some(Some(page.items[0].stanza_id.clone()));
    }
}

#[tokio::test]
async fn filters_combine_with_paging_in_both_directions() {
    let (_dir, store, entries) = archive_of(250).await;
    let ts = |n: usize| entries[n].timestamp_ms;
    let bob = Some("bob@example.org".to_string());
    let filters = [
        ArchiveQuery { with: bob.clone(), ..query(30) },
        ArchiveQuery { start_ms: Some(ts(40)), ..query(30) },
        ArchiveQuery { end_ms: Some(ts(99)), ..query(7) },
        ArchiveQuery { start_ms: Some(ts(50)), end_ms: Some(ts(199)), ..query(25) },
        ArchiveQuery { with: bob.clone(), start_ms: Some(ts(51)), end_ms: Some(ts(151)), ..query(10) },
        ArchiveQuery { with: Some("nobody@example.org".into()), ..query(10) },
        ArchiveQuery { start_ms: Some(ts(249) + 1), ..query(10) },
    ];
    for filter in filters {
        let expected: Vec<_> = entries
            .iter()
            .filter(|e| filter.with.as_ref().is_none_or(|with| &e.with == with))
            .filter(|e| filter.start_ms.is_none_or(|start| e.timestamp_ms >= start))
            .filter(|e| filter.end_ms.is_none_or(|end| e.timestamp_ms <= end))
            .cloned()
            .collect();
        assert_eq!(page_through(&store, &filter, false).await, expected, "forward, {filter:?}");
        assert_eq!(page_through(&store, &filter, true).await, expected, "backward, {filter:?}");
    }
}

#[tokio::test]
async fn the_ids_filter_returns_only_those_ids_in_archive_order() {
    let (_dir, store, entries) = archive_of(50).await;
    // Asked out of order, with an unknown id and one of mallory's.
    let ids = ["id-0042", "id-0007", "nope", "id-1000", "id-0013", "id-0007"].map(String::from).to_vec();
    let page = store.archive_query("alice", &ArchiveQuery { ids: ids.clone(), ..query(10) }).await.unwrap();
    assert_eq!(page.items, [entries[7].clone(), entries[13].clone(), entries[42].clone()]);
    assert_eq!((page.complete, page.count), (true, Some(3)));

    // Still a filter among the others, and still paged.
    let with_carol = ArchiveQuery { ids: ids.clone(), with: Some("carol@example.org".into()), ..query(1) };
    assert_eq!(page_through(&store, &with_carol, false).await, [entries[7].clone(), entries[13].clone()]);
    let page = store.archive_query("alice", &ArchiveQuery { ids, ..query(2) }).await.unwrap();
    assert_eq!((page.items.len(), page.complete), (2, false));
}

#[tokio::test]
async fn counts_ignore_paging_and_other_owners() {
    let (_dir, store, _) = archive_of(120).await;
    assert_eq!(store.archive_count("alice").await.unwrap(), 120);
    assert_eq!(store.archive_count("mallory").await.unwrap(), 3);
    assert_eq!(store.archive_count("nobody").await.unwrap(), 0);
    // max = 0 asks for the count alone (XEP-0059 §2.6).
    let page = store.archive_query("alice", &query(0)).await.unwrap();
    assert_eq!((page.items.len(), page.complete, page.count), (0, false, Some(120)));
    let page = store.archive_query("nobody", &query(0)).await.unwrap();
    assert_eq!((page.items.len(), page.complete, page.count), (0, true, Some(0)));
}

#[tokio::test]
async fn full_text_search_finds_every_word_and_pages() {
    let (_dir, store, entries) = archive_of(250).await;
    let matching = |words: &[&str]| -> Vec<ArchiveEntry> {
        entries.iter().filter(|e| words.iter().all(|w| e.body.as_ref().unwrap().contains(w))).cloned().collect()
    };
    let search = |text: &str, max: usize| ArchiveQuery { text: Some(text.into()), ..query(max) };
    assert_eq!(page_through(&store, &search("hello", 10), false).await, matching(&["hello"]));
    assert_eq!(page_through(&store, &search("HELLO", 10), true).await, matching(&["hello"]));
    assert_eq!(page_through(&store, &search("weather hello", 2), false).await, matching(&["hello", "weather"]));
    // Combined with the other filters; mallory's "hello"s are not alice's.
    let bob_hello = ArchiveQuery { with: Some("bob@example.org".into()), start_ms: Some(1_500), ..search("hello", 4) };
    let expected: Vec<_> = matching(&["hello"]).into_iter().filter(|e| e.timestamp_ms >= 1_500).collect();
    assert_eq!(page_through(&store, &bob_hello, true).await, expected);
    // Search syntax in the text is just text.
    for text in ["\"hello", "hello*", "body:hello", "NOT AND OR (", "ünïcode ☃"] {
        let page = store.archive_query("alice", &search(text, 10)).await;
        assert!(page.is_ok(), "{text:?}: {page:?}");
    }
    assert_eq!(page_through(&store, &search("absent", 10), false).await, []);
    // Blank text is no filter.
    assert_eq!(store.archive_query("alice", &search("  ", 1)).await.unwrap().count, Some(250));
}

#[tokio::test]
async fn an_anchor_not_in_the_owners_archive_is_not_found() {
    let (_dir, store, _) = archive_of(10).await;
    for anchor in ["nope", "id-1000"] {
        let after = ArchiveQuery { after_id: Some(anchor.into()), ..query(5) };
        let before = ArchiveQuery { before_id: Some(Some(anchor.into())), ..query(5) };
        for query in [after, before] {
            let result = store.archive_query("alice", &query).await;
            assert!(matches!(result, Err(StoreError::NotFound)), "{query:?}: {result:?}");
        }
    }
}

#[tokio::test]
async fn entries_read_back_by_stanza_id_and_origin_id() {
    let (_dir, store, entries) = archive_of(10).await;
    let mut copy = entry(3);
    copy.body = Some("a different message".into());
    copy.timestamp_ms = entry(2_000).timestamp_ms;
    store.archive_append("mallory", &copy).await.unwrap();
    let ghost = store.archive_append("ghost", &copy).await;
    assert!(matches!(ghost, Err(StoreError::NoSuchAccount)), "{ghost:?}");

    assert_eq!(store.archive_get("alice", "id-0003").await.unwrap(), Some(entries[3].clone()));
    assert_eq!(store.archive_get("alice", "id-1000").await.unwrap(), None);
    assert_eq!(store.archive_get("mallory", "id-0003").await.unwrap(), Some(copy));

    // The latest message with an origin-id is the one a correction refers to.
    assert_eq!(store.archive_find_origin("alice", "origin-4").await.unwrap(), Some(entries[4].clone()));
    let mut resent = entry(11);
    resent.origin_id = Some("origin-4".into());
    resent.timestamp_ms = entry(3_000).timestamp_ms;
    store.archive_append("alice", &resent).await.unwrap();
    assert_eq!(store.archive_find_origin("alice", "origin-4").await.unwrap(), Some(resent));
    assert_eq!(store.archive_find_origin("alice", "origin-1000").await.unwrap(), None);
    assert_eq!(store.archive_find_origin("mallory", "origin-4").await.unwrap(), None);
}

/// A stanza-id in our time-ordered shape: 8 base-62 digits of `ms`, then 12 more characters.
fn timed_id(ms: i64, tail: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = [0u8; 8];
    let mut rest = ms;
    for d in id.iter_mut().rev() {
        *d = DIGITS[(rest % 62) as usize];
        rest /= 62;
    }
    format!("{}{tail:>12}", String::from_utf8_lossy(&id))
}

/// Times only move forward in the archive (an entry stamped earlier than the last row gets the last row's time),
/// and anchors with our time-ordered ids are found near their time, or a day away after a clock step.
#[tokio::test]
async fn archive_time_never_goes_back_and_time_ordered_anchors_are_found() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    let t0 = 1_764_000_000_000;
    let mut ids = Vec::new();
    for n in 0..300i64 {
        // 300 messages a minute apart; the 200th is stamped an hour early (a clock stepped back).
        let ms = if n == 200 { t0 + 60_000 * n - 3_600_000 } else { t0 + 60_000 * n };
        let id = timed_id(ms, &format!("n{n}"));
        let owner = if n % 3 == 0 { "bob" } else { "alice" };
        let e = ArchiveEntry {
            stanza_id: id.clone(),
            with: "carol@example.org".into(),
            outgoing: false,
            timestamp_ms: ms,
            origin_id: None,
            body: Some(format!("message {n}")),
            stanza: format!("<message><body>message {n}</body></message>"),
        };
        store.archive_append(owner, &e).await.unwrap();
        ids.push((owner, id, ms));
    }
    for (n, (owner, id, ms)) in ids.iter().enumerate() {
        let got = store.archive_get(owner, id).await.unwrap().unwrap_or_else(|| panic!("message {n} not found"));
        assert_eq!(&got.stanza_id, id);
        if n == 200 {
            assert_eq!(got.timestamp_ms, ids[199].2, "an earlier stamp is raised to the last row's");
        } else {
            assert_eq!(got.timestamp_ms, *ms);
        }
        let other = if *owner == "bob" { "alice" } else { "bob" };
        assert_eq!(store.archive_get(other, id).await.unwrap(), None, "ids are per owner");
    }
    assert_eq!(store.archive_get("alice", &timed_id(t0 + 30_000, "none")).await.unwrap(), None);

    // A time window: every message of alice between minute 100 and minute 150, both included.
    let q =
        ArchiveQuery { start_ms: Some(t0 + 6_000_000), end_ms: Some(t0 + 9_000_000), max: 100, ..Default::default() };
    let page = store.archive_query("alice", &q).await.unwrap();
    let expected: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(n, (o, ..))| (100..=150).contains(n) && *o == "alice")
        .map(|(_, (_, id, _))| id.clone())
        .collect();
    assert_eq!(page.items.iter().map(|e| e.stanza_id.clone()).collect::<Vec<_>>(), expected);
    // Paging after an anchor inside the window.
    let q = ArchiveQuery { after_id: Some(expected[10].clone()), ..q };
    let page = store.archive_query("alice", &q).await.unwrap();
    assert_eq!(page.items.first().map(|e| &e.stanza_id), expected.get(11));
}

#[tokio::test]
async fn retention_purges_only_old_messages_of_every_owner_in_batches() {
    let (dir, store) = common::fresh();
    for (seed, owner) in [(1, "alice"), (2, "bob")] {
        store.account_create(owner, &common::credentials(seed)).await.unwrap();
    }
    // 6,000 messages, so one purge takes more than one batch; queued together they are
    // group committed.
    let writes: Vec<_> = (0..6_000)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.archive_append(["alice", "bob"][n % 2], &entry(n)).await })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    let cutoff = entry(5_600).timestamp_ms;
    let commits = store.commit_count();
    assert_eq!(store.archive_purge_before(cutoff).await.unwrap(), 5_600);
    assert!(store.commit_count() >= commits + 2, "one transaction per batch");
    assert_eq!(store.archive_count("alice").await.unwrap() + store.archive_count("bob").await.unwrap(), 400);
    let left = store.archive_query("alice", &query(1000)).await.unwrap();
    assert_eq!(left.items.len(), 200);
    assert!(left.items.iter().all(|e| e.timestamp_ms >= cutoff));
    assert_eq!(store.archive_purge_before(cutoff).await.unwrap(), 0);

    // The full-text index lost the purged messages too.
    let search = ArchiveQuery { text: Some("hello".into()), ..query(1000) };
    let found = store.archive_query("alice", &search).await.unwrap();
    assert!(found.items.iter().all(|e| e.timestamp_ms >= cutoff));
    assert_eq!(fts_matches(&common::db_path(&dir), "hello"), 40);
}

/// Rows the FTS index itself (not the archive) has for `word`.
fn fts_matches(path: &std::path::Path, word: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM archive_fts WHERE archive_fts MATCH ?1", [word], |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn preferences_default_to_always_and_round_trip() {
    let (_dir, store, _) = archive_of(0).await;
    assert_eq!(store.archive_prefs("alice").await.unwrap(), ArchivePrefs::default());
    assert_eq!(store.archive_prefs("alice").await.unwrap().default, ArchiveDefault::Always);

    let prefs = ArchivePrefs {
        default: ArchiveDefault::Roster,
        always: vec!["romeo@montague.lit".into(), "juliet@capulet.lit".into(), "romeo@montague.lit".into()],
        never: vec!["montague.lit".into()],
    };
    store.archive_set_prefs("alice", &prefs).await.unwrap();
    let stored = store.archive_prefs("alice").await.unwrap();
    let sorted = ArchivePrefs {
        default: ArchiveDefault::Roster,
        always: vec!["juliet@capulet.lit".into(), "romeo@montague.lit".into()],
        never: vec!["montague.lit".into()],
    };
    assert_eq!(stored, sorted);
    assert_eq!(store.archive_prefs("mallory").await.unwrap(), ArchivePrefs::default());

    // Setting replaces everything.
    let never = ArchivePrefs { default: ArchiveDefault::Never, ..ArchivePrefs::default() };
    store.archive_set_prefs("alice", &never).await.unwrap();
    assert_eq!(store.archive_prefs("alice").await.unwrap(), never);
    let ghost = store.archive_set_prefs("ghost", &never).await;
    assert!(matches!(ghost, Err(StoreError::NoSuchAccount)), "{ghost:?}");
}

#[tokio::test]
async fn removing_an_account_removes_its_archive_preferences_and_blocklist() {
    let (dir, store, _) = archive_of(30).await;
    let prefs = ArchivePrefs { default: ArchiveDefault::Never, always: vec!["a@b".into()], never: vec![] };
    store.archive_set_prefs("alice", &prefs).await.unwrap();
    store.block("alice", &["spam.example".into()]).await.unwrap();
    assert_eq!(store.archive_index_pending().await.unwrap(), 33);
    let hellos_before = fts_matches(&common::db_path(&dir), "hello");

    assert!(store.account_remove("alice").await.unwrap());
    store.account_create("alice", &common::credentials(9)).await.unwrap();
    assert_eq!(store.archive_count("alice").await.unwrap(), 0);
    assert_eq!(store.archive_get("alice", "id-0001").await.unwrap(), None);
    assert_eq!(store.archive_prefs("alice").await.unwrap(), ArchivePrefs::default());
    assert_eq!(store.blocklist("alice").await.unwrap(), Vec::<String>::new());
    // alice's three "hello"s left the search index; mallory's stay.
    assert_eq!(fts_matches(&common::db_path(&dir), "hello"), hellos_before - 3);
    assert_eq!(store.archive_count("mallory").await.unwrap(), 3);
}

fn fts_pending(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT count(*) FROM archive WHERE seq > (SELECT through FROM archive_fts_state) AND body IS NOT NULL",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// FTS5's own consistency check of an external-content index against its table.
fn fts_integrity_check(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("INSERT INTO archive_fts (archive_fts, rank) VALUES ('integrity-check', 1)").unwrap();
}

#[tokio::test]
async fn full_text_index_is_kept_in_batches_and_searches_see_every_committed_message() {
    let (dir, store, _) = archive_of(0).await;
    let path = common::db_path(&dir);
    // Below the batch size, rows wait for the index...
    for n in 0..10 {
        store.archive_append("alice", &entry(n)).await.unwrap();
    }
    assert_eq!(fts_pending(&path), 13);
    // ...yet a search finds them: it indexes the backlog first.
    let mut search = query(100);
    search.text = Some("hello".into());
    let found = store.archive_query("alice", &search).await.unwrap();
    assert_eq!(found.items.len(), 1, "{found:?}");
    assert_eq!(fts_pending(&path), 0);
    fts_integrity_check(&path);

    // Past the batch size an append indexes the backlog in its own group commit.
    for n in 10..1_100 {
        store.archive_append("alice", &entry(n)).await.unwrap();
    }
    assert!(fts_pending(&path) < 1_024, "{} rows pending", fts_pending(&path));
    store.archive_index_pending().await.unwrap();
    assert_eq!(fts_pending(&path), 0);
    fts_integrity_check(&path);
}

#[tokio::test]
async fn deleting_rows_not_yet_indexed_leaves_the_index_intact() {
    let (dir, store, _) = archive_of(20).await;
    let path = common::db_path(&dir);
    // Half indexed, half pending, then everything purged.
    store.archive_index_pending().await.unwrap();
    for n in 20..40 {
        store.archive_append("alice", &entry(n)).await.unwrap();
    }
    assert_eq!(fts_pending(&path), 20);
    assert_eq!(store.archive_purge_before(i64::MAX).await.unwrap(), 43);
    assert_eq!(fts_pending(&path), 0);
    assert_eq!(fts_matches(&path, "hello"), 0);
    fts_integrity_check(&path);
    // And an account removal with pending rows.
    store.archive_append("mallory", &entry(77)).await.unwrap();
    assert!(store.account_remove("mallory").await.unwrap());
    assert_eq!(fts_pending(&path), 0);
    fts_integrity_check(&path);
}
