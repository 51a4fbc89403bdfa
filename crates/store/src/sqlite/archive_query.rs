//! SQLite SQL for MAM queries (XEP-0313 §4) with RSM paging (XEP-0059) and full-text
//! search (XEP-0431).
//!
//! Every query is one of a few fixed statements, chosen by which filter should drive the
//! index scan (a [`Shape`]); the other filters are bound as always-present ranges whose
//! defaults match everything. A per-owner shape reads the index tables, then the tail past the
//! owner's watermark (archive_index.rs). `CROSS JOIN` pins each plan's order, and the test at
//! the bottom checks the plans with `EXPLAIN QUERY PLAN`. RSM anchors, time bounds and the stanza-ids of
//! an `ids` filter become `seq` bounds or values (archive_order.rs).

use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{Connection, Statement, ToSql};

use super::archive::{entry_columns, entry_from_row};
use super::archive_index::watermark;
use super::archive_order::{anchor, find, seq_boundary};
use super::SqliteStore;
use crate::{ArchivePage, ArchiveQuery, StoreError};

/// The statements of one shape: a page each way and the count of all that matches.
struct Sql {
    forward: &'static str,
    backward: &'static str,
    count: &'static str,
}

/// Builds a shape's statements from its `FROM ... WHERE ...` and the `seq` column to order
/// and bound by. Parameters: `:owner :with :start :end :after :before :text :ids :limit`.
macro_rules! shape {
    ($from_where:literal, $seq:literal) => {
        Sql {
            forward: concat!("SELECT ", entry_columns!(), " ", $from_where, shape!(@bounds $seq),
                " ORDER BY ", $seq, " LIMIT :limit"),
            backward: concat!("SELECT ", entry_columns!(), " ", $from_where, shape!(@bounds $seq),
                " ORDER BY ", $seq, " DESC LIMIT :limit"),
            count: concat!("SELECT count(*) ", $from_where, shape!(@bounds $seq)),
        }
    };
    (@bounds $seq:literal) => {
        concat!(" AND a.timestamp_ms BETWEEN :start AND :end AND ", $seq, " > :after AND ", $seq, " < :before")
    };
}

/// Which index drives a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// (owner, seq): the whole archive, in order.
    Owner,
    /// (owner, with_jid, seq): one conversation, in order.
    With,
    /// The FTS index, whose rowids are `seq`: matches in order. CROSS JOIN keeps it the
    /// outer loop (else SQLite runs the MATCH once per archive row).
    Text,
    /// The rowids of a handful of stanza-ids, sorted.
    Ids,
}

impl Shape {
    fn of(query: &ArchiveQuery, text: Option<&str>) -> Shape {
        if !query.ids.is_empty() {
            Shape::Ids
        } else if text.is_some() {
            Shape::Text
        } else if query.with.is_some() {
            Shape::With
        } else {
            Shape::Owner
        }
    }

    /// The statements of each part of the archive the shape reads, in `seq` order: every row of a part comes
    /// before every row of the next. The per-owner shapes read the index tables up to the owner's watermark, then
    /// the tail past it (`:tail`, archive_index.rs).
    fn sql(self) -> &'static [Sql] {
        const OWNER: [Sql; 2] = [
            shape!("FROM archive_owner_index i CROSS JOIN archive a ON a.seq = i.seq WHERE i.owner = :owner", "i.seq"),
            shape!("FROM archive a WHERE a.seq > :tail AND a.owner = :owner", "a.seq"),
        ];
        const WITH: [Sql; 2] = [
            shape!(
                "FROM archive_with_index i CROSS JOIN archive a ON a.seq = i.seq
                 WHERE i.owner = :owner AND i.with_jid = :with",
                "i.seq"
            ),
            shape!("FROM archive a WHERE a.seq > :tail AND a.owner = :owner AND a.with_jid = :with", "a.seq"),
        ];
        const TEXT: [Sql; 1] = [shape!(
            "FROM archive_fts CROSS JOIN archive a ON a.seq = archive_fts.rowid
             WHERE archive_fts MATCH :text AND a.owner = :owner AND (:with IS NULL OR a.with_jid = :with)",
            "archive_fts.rowid"
        )];
        const IDS: [Sql; 1] = [shape!(
            "FROM archive a
             WHERE a.seq IN rarray(:ids) AND a.owner = :owner
               AND (:with IS NULL OR a.with_jid = :with)
               AND (:text IS NULL OR a.seq IN (SELECT rowid FROM archive_fts WHERE archive_fts MATCH :text))",
            "a.seq"
        )];
        match self {
            Shape::Owner => &OWNER,
            Shape::With => &WITH,
            Shape::Text => &TEXT,
            Shape::Ids => &IDS,
        }
    }
}

/// The FTS5 query for a user's search text: every word must appear. Each word is quoted
/// as an FTS5 string, so the user's text is never FTS5 syntax (`AND`, `*`, `"`, `:`).
/// `None` for text without words: no text filter.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text.split_whitespace().map(|word| format!("\"{}\"", word.replace('"', "\"\""))).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl SqliteStore {
    pub(crate) async fn archive_query(&self, owner: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
        if query.text.is_some() {
            // A search sees every committed message: index the backlog first.
            self.archive_index_pending().await?;
        }
        let owner = owner.to_owned();
        let query = query.clone();
        self.read(move |conn| {
            // One read transaction: the anchors, the page and the count see one snapshot.
            let tx = conn.unchecked_transaction()?;
            let page = query_page(&tx, &owner, &query)?;
            tx.finish()?;
            Ok(page)
        })
        .await
    }
}

fn query_page(conn: &Connection, owner: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
    let mut after = match &query.after_id {
        Some(id) => anchor(conn, owner, id)?,
        None => i64::MIN,
    };
    let mut before = match &query.before_id {
        Some(Some(id)) => anchor(conn, owner, id)?,
        Some(None) | None => i64::MAX,
    };
    // Time bounds as `seq` bounds, so that the scan starts and stops there (the exact time filter stays).
    if let Some(start) = query.start_ms {
        after = after.max(seq_boundary(conn, start)? - 1);
    }
    if let Some(end) = query.end_ms {
        before = before.min(seq_boundary(conn, end.saturating_add(1))?);
    }
    let mut seqs = Vec::with_capacity(query.ids.len());
    for id in &query.ids {
        if let Some(seq) = find(conn, owner, id)? {
            seqs.push(Value::from(seq));
        }
    }
    let text = query.text.as_deref().and_then(fts_query);
    let parts = Shape::of(query, text.as_deref()).sql();
    let tail = watermark(conn, owner)?;
    let ids: rusqlite::vtab::array::Array = Rc::new(seqs);
    // One more than asked: whether it comes back tells whether the page is the last.
    let wanted = i64::try_from(query.max).unwrap_or(i64::MAX).saturating_add(1);
    let mut named: [(&str, &dyn ToSql); 9] = [
        (":owner", &owner),
        (":with", &query.with),
        (":start", &query.start_ms.unwrap_or(i64::MIN)),
        (":end", &query.end_ms.unwrap_or(i64::MAX)),
        (":after", &after),
        (":before", &before),
        (":text", &text),
        (":ids", &ids),
        (":tail", &tail),
    ];

    // Part after part in the direction of paging, until the page is full.
    let mut items = Vec::new();
    let in_order: Vec<&Sql> = if query.is_backward() { parts.iter().rev().collect() } else { parts.iter().collect() };
    for part in in_order {
        let missing = wanted - items.len() as i64;
        if missing <= 0 {
            break;
        }
        let mut statement = conn.prepare_cached(if query.is_backward() { part.backward } else { part.forward })?;
        bind(&mut statement, &named)?;
        bind(&mut statement, &[(":limit", &missing)])?;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next()? {
            items.push(entry_from_row(row)?);
        }
    }
    let complete = items.len() <= query.max;
    items.truncate(query.max);
    if query.is_backward() {
        // Taken newest first from the anchor; pages are always in archive order.
        items.reverse();
    }

    // The count ignores paging: bounds that hold for every row.
    named[4].1 = &i64::MIN;
    named[5].1 = &i64::MAX;
    let mut count = 0i64;
    for part in parts {
        let mut statement = conn.prepare_cached(part.count)?;
        bind(&mut statement, &named)?;
        count += statement.raw_query().next()?.map(|row| row.get::<_, i64>(0)).transpose()?.unwrap_or_default();
    }
    Ok(ArchivePage { items, complete, count: Some(u64::try_from(count).unwrap_or_default()) })
}

/// Binds the parameters `statement` uses; each shape uses a subset of them.
fn bind(statement: &mut Statement<'_>, named: &[(&str, &dyn ToSql)]) -> Result<(), StoreError> {
    for (name, value) in named {
        if let Some(index) = statement.parameter_index(name)? {
            statement.raw_bind_parameter(index, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape's statements prepare (so `INDEXED BY` holds) and use their index: no
    /// full scan, and no sort where the index gives archive order.
    #[test]
    fn every_shape_is_an_index_scan() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        rusqlite::vtab::array::load_module(&conn).unwrap();
        for shape in [Shape::Owner, Shape::With, Shape::Text, Shape::Ids] {
            for (statement, ordered) in
                shape.sql().iter().flat_map(|sql| [(sql.forward, true), (sql.backward, true), (sql.count, false)])
            {
                // Unbound parameters are NULL: enough to plan with.
                let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).unwrap();
                let mut rows = explain.raw_query();
                let mut plan = String::new();
                while let Some(row) = rows.next().unwrap() {
                    plan.push_str(&row.get::<_, String>(3).unwrap());
                    plan.push('\n');
                }
                assert!(
                    !plan.lines().any(|line| ["SCAN a", "SCAN i"]
                        .iter()
                        .any(|scan| line.split(' ').take(2).eq(scan.split(' ')))),
                    "{shape:?} scans the archive:\n{plan}"
                );
                let sorts = plan.contains("TEMP B-TREE");
                let may_sort = shape == Shape::Ids;
                assert!(!(ordered && sorts && !may_sort), "{shape:?} sorts:\n{plan}");
            }
        }
    }

    #[test]
    fn search_text_is_quoted_word_by_word() {
        assert_eq!(fts_query("  hello wor\"ld  "), Some("\"hello\" \"wor\"\"ld\"".into()));
        assert_eq!(fts_query(" \t "), None);
    }
}
