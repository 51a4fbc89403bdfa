//! How the archive finds rows by time and by stanza-id without an index of its own for either.
//!
//! Every archived row costs one B-tree insert per index, and with one index page per active owner each insert
//! dirties its own page: the write-ahead log then carries a whole page per index per row. Two of the five
//! indexes, `(owner, stanza_id)` and `(owner, timestamp_ms)`, are gone since migration 8; what they answered
//! comes from the order of `seq` instead:
//!
//! - Appends keep `timestamp_ms` non-decreasing in `seq` (an append never stamps a row earlier than the last
//!   one), so a time is a `seq` boundary, found by binary search over the rowid ([`seq_boundary`]: a few dozen
//!   lookups of the table's own B-tree, whatever its size). Queries turn time bounds into `seq` bounds and keep
//!   the exact time filter on top.
//! - Our stanza-ids begin with the time they were made (8 base-62 digits of Unix milliseconds, see
//!   [`stanza_id_millis`]), which is the row's timestamp, so an RSM anchor is looked up in the owner's rows of a
//!   short `seq` window around it ([`anchor`]), then of a day around it (a clock stepped back), through
//!   `(owner, seq)` (archive_index.rs). Ids of any other shape are found by scanning the owner's rows.
//!
//! Rows archived before migration 8 may break the order where the clock stepped back; a time filter then
//! misses at most those rows at its edges.

use rusqlite::{params, Connection, OptionalExtension};

use super::archive_index::watermark;
use crate::StoreError;

/// Migration 8: the stanza-id and time indexes are replaced by `seq` order (see the module doc).
pub(super) const MIGRATION: &str = r#"
    DROP INDEX archive_by_stanza_id;
    DROP INDEX archive_by_time;
"#;

/// How far around its id's time an anchor is looked for first, then (a clock stepped back) second.
const ANCHOR_WINDOWS_MS: [i64; 2] = [2_000, 86_400_000];

/// The Unix time in milliseconds a stanza-id of ours begins with; `None` for ids of another shape.
pub fn stanza_id_millis(id: &str) -> Option<i64> {
    let digits = id.as_bytes().get(..8)?;
    if id.len() != 20 {
        return None;
    }
    digits.iter().try_fold(0i64, |ms, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        ms.checked_mul(62)?.checked_add(i64::from(digit))
    })
}

/// The smallest `seq` from which every row is at or after `ms`: rows before it are earlier, rows from it on
/// are at `ms` or later (one past the last row when none is). Binary search over the rowid.
pub(super) fn seq_boundary(conn: &Connection, ms: i64) -> Result<i64, StoreError> {
    let (first, last): (Option<i64>, Option<i64>) =
        conn.prepare_cached("SELECT min(seq), max(seq) FROM archive")?.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(first), Some(last)) = (first, last) else { return Ok(0) };
    let mut at_or_after =
        conn.prepare_cached("SELECT timestamp_ms FROM archive WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    // Invariant: the answer is in [lo, hi]; `last + 1` stands for "no row is late enough".
    let (mut lo, mut hi) = (first, last + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let ts: Option<i64> = at_or_after.query_row(params![mid], |r| r.get(0)).optional()?;
        if ts.is_none_or(|ts| ts >= ms) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

/// The `seq` of the owner's row with this stanza-id; [`StoreError::NotFound`] if there is none.
pub(super) fn anchor(conn: &Connection, owner: &str, stanza_id: &str) -> Result<i64, StoreError> {
    find(conn, owner, stanza_id)?.ok_or(StoreError::NotFound)
}

/// [`anchor`], with `None` for a missing id.
pub(super) fn find(conn: &Connection, owner: &str, stanza_id: &str) -> Result<Option<i64>, StoreError> {
    // The owner's rows through the index table up to its watermark, and the tail past it (archive_index.rs).
    let mut within = conn.prepare_cached(
        "SELECT i.seq FROM archive_owner_index i CROSS JOIN archive a ON a.seq = i.seq
         WHERE i.owner = ?1 AND i.seq >= ?2 AND i.seq < ?3 AND a.stanza_id = ?4
         UNION ALL
         SELECT seq FROM archive WHERE seq > ?5 AND seq >= ?2 AND seq < ?3 AND owner = ?1 AND stanza_id = ?4
         LIMIT 1",
    )?;
    let tail = watermark(conn, owner)?;
    let Some(ms) = stanza_id_millis(stanza_id) else {
        return Ok(within.query_row(params![owner, i64::MIN, i64::MAX, stanza_id, tail], |r| r.get(0)).optional()?);
    };
    for window in ANCHOR_WINDOWS_MS {
        let from = seq_boundary(conn, ms.saturating_sub(window))?;
        let to = seq_boundary(conn, ms.saturating_add(window).saturating_add(1))?;
        if let Some(seq) = within.query_row(params![owner, from, to, stanza_id, tail], |r| r.get(0)).optional()? {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_an_id_is_read_back() {
        let ms: i64 = 1_764_000_000_123;
        let mut digits = [0u8; 8];
        let mut rest = ms;
        for d in digits.iter_mut().rev() {
            *d = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[(rest % 62) as usize];
            rest /= 62;
        }
        let id = format!("{}abcdefABCDEF", String::from_utf8_lossy(&digits));
        assert_eq!(stanza_id_millis(&id), Some(ms));
        assert_eq!(stanza_id_millis("id-0001"), None);
        assert_eq!(stanza_id_millis("0000000-abcdefABCDEF"), None);
        assert_eq!(stanza_id_millis(""), None);
        assert_eq!(stanza_id_millis("é0000000abcdefABCDEF"), None);
    }

    #[test]
    fn a_time_is_a_seq_boundary() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        assert_eq!(seq_boundary(&conn, 5).unwrap(), 0);
        // seq 10, 12, 14, ... (gaps) at times 100, 110, 110, 130, ...
        let times = [100, 110, 110, 130, 150, 150, 150, 200];
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        for (i, ts) in times.iter().enumerate() {
            conn.execute(
                "INSERT INTO archive (seq, owner, stanza_id, with_jid, outgoing, timestamp_ms, stanza)
                 VALUES (?1, 'a', ?2, 'b', 0, ?3, '<m/>')",
                params![10 + 2 * i as i64, format!("id{i}"), ts],
            )
            .unwrap();
        }
        let rows: Vec<(i64, i64)> = times.iter().enumerate().map(|(i, &ts)| (10 + 2 * i as i64, ts)).collect();
        for ms in [0, 100, 101, 110, 111, 149, 150, 151, 200, 201, 10_000] {
            let boundary = seq_boundary(&conn, ms).unwrap();
            for &(seq, ts) in &rows {
                assert_eq!(seq >= boundary, ts >= ms, "time {ms}: boundary {boundary}, row {seq} at {ts}");
            }
        }
        assert_eq!(seq_boundary(&conn, 201).unwrap(), 25, "past the last row");
    }
}
