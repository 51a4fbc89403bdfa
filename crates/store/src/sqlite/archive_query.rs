//! SQLite SQL for MAM queries (XEP-0313 §4) with RSM paging (XEP-0059) and full-text
//! search (XEP-0431).
//!
//! Every query is one of a few fixed statements, chosen by which filter should drive the
//! index scan (a [`Shape`]); the other filters are bound as always-present ranges whose
//! defaults match everything. `INDEXED BY` pins each shape's plan, and the test at the
//! bottom checks it with `EXPLAIN QUERY PLAN`. RSM anchors become `seq` bounds.

use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Statement, ToSql};

use super::archive::{entry_columns, entry_from_row};
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
    /// (owner, timestamp_ms): a time window, sorted by seq. Windows are usually short
    /// (a client catching up since it last synced), so sorting them is cheaper than
    /// scanning the archive in order from its start.
    Time,
    /// The FTS index, whose rowids are `seq`: matches in order. CROSS JOIN keeps it the
    /// outer loop (else SQLite runs the MATCH once per archive row).
    Text,
    /// (owner, stanza_id): a handful of ids, sorted by seq.
    Ids,
}

impl Shape {
    fn of(query: &ArchiveQuery, text: Option<&str>) -> Shape {
        if !query.ids.is_empty() {
            Shape::Ids
        } else if text.is_some() {
            Shape::Text
        } else if query.start_ms.is_some() || query.end_ms.is_some() {
            Shape::Time
        } else if query.with.is_some() {
            Shape::With
        } else {
            Shape::Owner
        }
    }

    fn sql(self) -> Sql {
        match self {
            Shape::Owner => shape!("FROM archive a INDEXED BY archive_by_owner WHERE a.owner = :owner", "a.seq"),
            Shape::With => shape!(
                "FROM archive a INDEXED BY archive_by_with WHERE a.owner = :owner AND a.with_jid = :with",
                "a.seq"
            ),
            Shape::Time => shape!(
                "FROM archive a INDEXED BY archive_by_time
                 WHERE a.owner = :owner AND (:with IS NULL OR a.with_jid = :with)",
                "a.seq"
            ),
            Shape::Text => shape!(
                "FROM archive_fts CROSS JOIN archive a ON a.seq = archive_fts.rowid
                 WHERE archive_fts MATCH :text AND a.owner = :owner AND (:with IS NULL OR a.with_jid = :with)",
                "archive_fts.rowid"
            ),
            Shape::Ids => shape!(
                "FROM archive a INDEXED BY archive_by_stanza_id
                 WHERE a.owner = :owner AND a.stanza_id IN rarray(:ids)
                   AND (:with IS NULL OR a.with_jid = :with)
                   AND (:text IS NULL OR a.seq IN (SELECT rowid FROM archive_fts WHERE archive_fts MATCH :text))",
                "a.seq"
            ),
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
    let after = match &query.after_id {
        Some(id) => anchor(conn, owner, id)?,
        None => i64::MIN,
    };
    let before = match &query.before_id {
        Some(Some(id)) => anchor(conn, owner, id)?,
        Some(None) | None => i64::MAX,
    };
    let text = query.text.as_deref().and_then(fts_query);
    let sql = Shape::of(query, text.as_deref()).sql();
    let ids: rusqlite::vtab::array::Array = Rc::new(query.ids.iter().cloned().map(Value::from).collect());
    // One more than asked: whether it comes back tells whether the page is the last.
    let limit = i64::try_from(query.max).unwrap_or(i64::MAX).saturating_add(1);
    let mut named: [(&str, &dyn ToSql); 9] = [
        (":owner", &owner),
        (":with", &query.with),
        (":start", &query.start_ms.unwrap_or(i64::MIN)),
        (":end", &query.end_ms.unwrap_or(i64::MAX)),
        (":after", &after),
        (":before", &before),
        (":text", &text),
        (":ids", &ids),
        (":limit", &limit),
    ];

    let mut statement = conn.prepare_cached(if query.is_backward() { sql.backward } else { sql.forward })?;
    bind(&mut statement, &named)?;
    let mut items = Vec::new();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        items.push(entry_from_row(row)?);
    }
    drop(rows);
    let complete = items.len() <= query.max;
    items.truncate(query.max);
    if query.is_backward() {
        // Taken newest first from the anchor; pages are always in archive order.
        items.reverse();
    }

    // The count ignores paging: bounds that hold for every row.
    named[4].1 = &i64::MIN;
    named[5].1 = &i64::MAX;
    let mut statement = conn.prepare_cached(sql.count)?;
    bind(&mut statement, &named)?;
    let count: i64 = statement.raw_query().next()?.map(|row| row.get(0)).transpose()?.unwrap_or_default();
    Ok(ArchivePage { items, complete, count: Some(u64::try_from(count).unwrap_or_default()) })
}

/// The `seq` of an RSM anchor; [`StoreError::NotFound`] if the owner has no such id.
fn anchor(conn: &Connection, owner: &str, stanza_id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM archive WHERE owner = ?1 AND stanza_id = ?2")?
        .query_row(params![owner, stanza_id], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
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
        for shape in [Shape::Owner, Shape::With, Shape::Time, Shape::Text, Shape::Ids] {
            let sql = shape.sql();
            for (statement, ordered) in [(sql.forward, true), (sql.backward, true), (sql.count, false)] {
                // Unbound parameters are NULL: enough to plan with.
                let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).unwrap();
                let mut rows = explain.raw_query();
                let mut plan = String::new();
                while let Some(row) = rows.next().unwrap() {
                    plan.push_str(&row.get::<_, String>(3).unwrap());
                    plan.push('\n');
                }
                assert!(
                    !plan.lines().any(|line| line == "SCAN a" || line.starts_with("SCAN a ")),
                    "{shape:?} scans the archive:\n{plan}"
                );
                let sorts = plan.contains("TEMP B-TREE");
                let may_sort = matches!(shape, Shape::Time | Shape::Ids);
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
