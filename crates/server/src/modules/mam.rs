//! XEP-0313 Message Archive Management for accounts, with XEP-0359 stanza ids, XEP-0441 preferences, XEP-0059
//! paging and XEP-0431 full-text search.
//!
//! Every archivable 1:1 message is written to the recipient's archive (and the sender's) in one group commit, and the
//! sending session counts the message as handled only once it is committed: the archive is as durable as an
//! acknowledgement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drupe_proto::delay::{format_datetime, parse_datetime};
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{dataform, ns, rsm, stanza, Jid};
use drupe_store::{ArchiveDefault, ArchiveEntry, ArchivePrefs, ArchiveQuery};

use super::{now_ms, store_failure};
use crate::c2s::Session;
use crate::context::{time_ordered_id_at, Context};

pub const NS: &str = "urn:xmpp:mam:2";
pub const NS_EXTENDED: &str = "urn:xmpp:mam:2#extended";
pub const SID: &str = "urn:xmpp:sid:0";
pub const FULLTEXT: &str = "urn:xmpp:fulltext:0";
const FORWARD: &str = "urn:xmpp:forward:0";
const RETRACT: &str = "urn:xmpp:message-retract:1";
const CORRECT: &str = "urn:xmpp:message-correct:0";
const FULLTEXT_FIELD: &str = "{urn:xmpp:fulltext:0}fulltext";

/// XEP-0441 preferences, cached per account after first use (replaced on every change).
#[derive(Default)]
pub struct PrefsCache(Mutex<HashMap<String, Arc<ArchivePrefs>>>);

impl PrefsCache {
    fn get(&self, user: &str) -> Option<Arc<ArchivePrefs>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(user).cloned()
    }

    fn put(&self, user: &str, prefs: ArchivePrefs) -> Arc<ArchivePrefs> {
        let prefs = Arc::new(prefs);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(user.to_owned(), prefs.clone());
        prefs
    }
}

async fn prefs(ctx: &Context, user: &str) -> Result<Arc<ArchivePrefs>, StanzaError> {
    if let Some(p) = ctx.mam_prefs.get(user) {
        return Ok(p);
    }
    let p = ctx.store.archive_prefs(user).await.map_err(store_failure)?;
    Ok(ctx.mam_prefs.put(user, p))
}

/// Messages worth keeping: chat/normal with a body, a retraction or a correction (XEP-0313 §5.1.1).
pub fn archivable(el: &Element) -> bool {
    const HINTS: &str = "urn:xmpp:hints";
    matches!(el.attr("type").unwrap_or("normal"), "chat" | "normal")
        && (el.child("body", ns::CLIENT).is_some()
            || el.child("retract", RETRACT).is_some()
            || el.child("replace", CORRECT).is_some()
            // XEP-0334: e.g. XEP-0353 call proposals, which clients read back to show missed calls.
            || el.child("store", HINTS).is_some())
        && el.child("no-store", HINTS).is_none()
}

/// Whether `owner`'s preferences keep messages exchanged with `with` (a bare JID).
async fn wanted(ctx: &Context, owner: &str, with: &str) -> Result<bool, StanzaError> {
    let p = prefs(ctx, owner).await?;
    if p.never.iter().any(|j| j == with) {
        return Ok(false);
    }
    if p.always.iter().any(|j| j == with) {
        return Ok(true);
    }
    Ok(match p.default {
        ArchiveDefault::Always => true,
        ArchiveDefault::Never => false,
        ArchiveDefault::Roster => ctx.store.roster_item(owner, with).await.map_err(store_failure)?.is_some(),
    })
}

fn bare_of(attr: Option<&str>) -> Option<String> {
    attr.and_then(|j| Jid::new(j).ok()).map(|j| j.to_bare().to_string())
}

/// An archive entry prepared (id assigned) but not yet written. One pointer: it is held across the awaits of the
/// message path, whose futures every message allocates, and `Option<ArchiveWrite>` then takes 8 bytes, not 160.
pub struct ArchiveWrite(Box<(String, ArchiveEntry)>);

/// Prepares the recipient's archive entry for a message `owner` receives and stamps the XEP-0359 `<stanza-id/>`
/// the recipient will see. `None` when the message is not to be archived.
pub async fn prepare_incoming(
    ctx: &Context,
    owner: &str,
    el: &mut Element,
) -> Result<Option<ArchiveWrite>, StanzaError> {
    let owner_bare = format!("{owner}@{}", ctx.domain());
    // Nobody else may claim an id in our name (XEP-0359 §3.3).
    el.remove_children(|c| c.is("stanza-id", SID) && c.attr("by") == Some(owner_bare.as_str()));
    if !ctx.config.archive.enabled || !archivable(el) {
        return Ok(None);
    }
    let Some(with) = bare_of(el.attr("from")) else { return Ok(None) };
    if !wanted(ctx, owner, &with).await? {
        return Ok(None);
    }
    let entry = entry(&with, false, el);
    el.push(Element::new("stanza-id", SID).with_attr("id", entry.stanza_id.as_str()).with_attr("by", owner_bare));
    Ok(Some(ArchiveWrite(Box::new((owner.to_owned(), entry)))))
}

/// Prepares the sender's archive entry for a message `owner` sends.
pub async fn prepare_outgoing(ctx: &Context, owner: &str, el: &Element) -> Result<Option<ArchiveWrite>, StanzaError> {
    if !ctx.config.archive.enabled || !archivable(el) {
        return Ok(None);
    }
    let Some(with) = bare_of(el.attr("to")) else { return Ok(None) };
    if !wanted(ctx, owner, &with).await? {
        return Ok(None);
    }
    Ok(Some(ArchiveWrite(Box::new((owner.to_owned(), entry(&with, true, el))))))
}

fn entry(with: &str, outgoing: bool, el: &Element) -> ArchiveEntry {
    // The id carries the entry's time: the store finds anchors by it.
    let now = now_ms();
    ArchiveEntry {
        stanza_id: time_ordered_id_at(now),
        with: with.to_owned(),
        outgoing,
        timestamp_ms: now,
        origin_id: el.child("origin-id", SID).and_then(|o| o.attr("id")).map(str::to_owned),
        body: el.child("body", ns::CLIENT).map(Element::text),
        stanza: el.to_xml(),
    }
}

/// Commits prepared entries (a message's recipient and sender copies) in one store write; `None` when there is
/// nothing to write. The future owns what it needs, so a session can keep it while it reads on (c2s/durable.rs),
/// and the entries move into the store's write at once: it holds no second copy of them.
pub fn write(
    ctx: &Context,
    writes: [Option<ArchiveWrite>; 2],
) -> Option<impl std::future::Future<Output = Result<(), StanzaError>> + Send + 'static> {
    let rows: Vec<_> = writes.into_iter().flatten().map(|w| *w.0).collect();
    if rows.is_empty() {
        return None;
    }
    let store = ctx.store.clone();
    Some(async move {
        let outcomes = store.archive_append_all(rows).await.map_err(store_failure)?;
        outcomes.into_iter().collect::<Result<(), _>>().map_err(store_failure)
    })
}

pub async fn handle(s: &mut Session, iq: &Element) {
    let Some(payload) = iq.first_child() else { return };
    let result = match (iq.attr("type"), payload.name()) {
        (Some("get"), "query") => {
            s.send(&stanza::iq_result(iq, Some(query_form())));
            Ok(())
        }
        (Some("set"), "query") => query(s, iq, payload).await,
        (Some("get"), "prefs") => get_prefs(s, iq).await,
        (Some("set"), "prefs") => set_prefs(s, iq, payload).await,
        _ => Err(StanzaError::new(Condition::BadRequest)),
    };
    if let Err(e) = result {
        s.send_error(iq, e);
    }
}

pub fn query_form() -> Element {
    let mut x = dataform::form("form", NS);
    for (var, kind) in [
        ("with", "jid-single"),
        ("start", "text-single"),
        ("end", "text-single"),
        ("before-id", "text-single"),
        ("after-id", "text-single"),
        ("ids", "list-multi"),
        (FULLTEXT_FIELD, "text-single"),
    ] {
        x.push(dataform::field(var, kind));
    }
    Element::new("query", NS).with_child(x)
}

fn bad(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

/// Builds the store query from the form and the RSM set (XEP-0313 §4).
pub fn parse_query(q: &Element, max_page: usize) -> Result<ArchiveQuery, StanzaError> {
    let mut query = ArchiveQuery { max: max_page, ..Default::default() };
    if let Some(x) = q.child("x", dataform::NS) {
        for (var, values) in dataform::fields(x) {
            let one = || values.first().cloned().unwrap_or_default();
            match var.as_str() {
                "FORM_TYPE" if one() != NS => return Err(bad("unknown FORM_TYPE")),
                "FORM_TYPE" => {}
                "with" => query.with = Some(Jid::new(&one()).map_err(|_| bad("bad with"))?.to_string()),
                "start" => query.start_ms = Some(parse_datetime(&one()).ok_or_else(|| bad("bad start"))?),
                "end" => query.end_ms = Some(parse_datetime(&one()).ok_or_else(|| bad("bad end"))?),
                "after-id" => query.after_id = Some(one()),
                "before-id" => query.before_id = Some(Some(one())),
                "ids" => query.ids = values,
                FULLTEXT_FIELD => query.text = Some(one()).filter(|t| !t.is_empty()),
                _ => return Err(StanzaError::new(Condition::FeatureNotImplemented).with_text(var)),
            }
        }
    }
    if let Some(set) = q.child("set", rsm::NS) {
        let r = rsm::Request::parse(set).map_err(|()| bad("bad RSM set"))?;
        if r.index.is_some() {
            return Err(StanzaError::new(Condition::FeatureNotImplemented).with_text("RSM index"));
        }
        if let Some(max) = r.max {
            query.max = max.min(max_page);
        }
        query.after_id = r.after.or(query.after_id);
        if r.before.is_some() {
            query.before_id = r.before;
        }
    }
    Ok(query)
}

async fn query(s: &mut Session, iq: &Element, q: &Element) -> Result<(), StanzaError> {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return Ok(()) };
    let query = parse_query(q, s.ctx.config.archive.max_page)?;
    let page = match s.ctx.store.archive_query(&user, &query).await {
        Ok(p) => p,
        Err(drupe_store::StoreError::NotFound) => return Err(StanzaError::new(Condition::ItemNotFound)),
        Err(e) => return Err(store_failure(e)),
    };
    let queryid = q.attr("queryid").map(str::to_owned);
    let me = jid.to_string();
    let owner = jid.to_bare().to_string();
    let mut items: Vec<_> = page.items.iter().collect();
    if q.child("flip-page", NS).is_some() {
        items.reverse();
    }
    for entry in &items {
        let Some(original) = Element::parse(&entry.stanza) else { continue };
        let mut result = Element::new("result", NS).with_attr("id", entry.stanza_id.as_str());
        if let Some(qid) = &queryid {
            result.set_attr("queryid", qid.as_str());
        }
        let forwarded = Element::new("forwarded", FORWARD)
            .with_child(Element::new("delay", ns::DELAY).with_attr("stamp", format_datetime(entry.timestamp_ms)))
            .with_child(original);
        let msg = Element::new("message", ns::CLIENT)
            .with_attr("to", me.as_str())
            .with_attr("from", owner.as_str())
            .with_child(result.with_child(forwarded));
        s.send(&msg);
    }
    let first = items.first().map(|e| (e.stanza_id.as_str(), None));
    let last = items.last().map(|e| e.stanza_id.as_str());
    let mut fin = Element::new("fin", NS).with_child(rsm::response(first, last, page.count));
    if page.complete {
        fin.set_attr("complete", "true");
    }
    s.send(&stanza::iq_result(iq, Some(fin)));
    Ok(())
}

fn jid_list(name: &str, jids: &[String]) -> Element {
    let mut el = Element::new(name, NS);
    for j in jids {
        el.push(Element::new("jid", NS).with_text(j.as_str()));
    }
    el
}

async fn get_prefs(s: &mut Session, iq: &Element) -> Result<(), StanzaError> {
    let Some(user) = s.user.clone() else { return Ok(()) };
    let p = prefs(&s.ctx, &user).await?;
    let default = match p.default {
        ArchiveDefault::Always => "always",
        ArchiveDefault::Never => "never",
        ArchiveDefault::Roster => "roster",
    };
    let el = Element::new("prefs", NS)
        .with_attr("default", default)
        .with_child(jid_list("always", &p.always))
        .with_child(jid_list("never", &p.never));
    s.send(&stanza::iq_result(iq, Some(el)));
    Ok(())
}

async fn set_prefs(s: &mut Session, iq: &Element, el: &Element) -> Result<(), StanzaError> {
    let Some(user) = s.user.clone() else { return Ok(()) };
    let default = match el.attr("default") {
        Some("always") => ArchiveDefault::Always,
        Some("never") => ArchiveDefault::Never,
        Some("roster") => ArchiveDefault::Roster,
        _ => return Err(bad("default must be always, never or roster")),
    };
    let list = |name: &str| -> Result<Vec<String>, StanzaError> {
        el.child(name, NS)
            .map(|l| {
                l.children()
                    .filter(|j| j.is("jid", NS))
                    .map(|j| Jid::new(j.text().trim()).map(|j| j.to_string()).map_err(|_| bad("bad jid")))
                    .collect()
            })
            .unwrap_or(Ok(Vec::new()))
    };
    let prefs = ArchivePrefs { default, always: list("always")?, never: list("never")? };
    s.ctx.store.archive_set_prefs(&user, &prefs).await.map_err(store_failure)?;
    s.ctx.mam_prefs.put(&user, prefs);
    get_prefs(s, iq).await
}

/// Keeps the per-owner indexes and the full-text index (XEP-0431) caught up with the archive, every second, until
/// shutdown. Appends start both in batches by themselves under load; this catches up a quiet server.
pub async fn index_upkeep(ctx: Arc<Context>) {
    crate::context::every(&ctx, std::time::Duration::from_secs(1), || async {
        if let Err(e) = ctx.store.archive_index_tail().await {
            tracing::warn!(error = %e, "archive index upkeep failed");
        }
        if let Err(e) = ctx.store.archive_index_pending().await {
            tracing::warn!(error = %e, "full-text index upkeep failed");
        }
    })
    .await
}

/// Deletes archive entries older than `archive.retention_days`, hourly, until shutdown.
pub async fn retention(ctx: Arc<Context>) {
    let days = ctx.config.archive.retention_days;
    if days == 0 {
        return;
    }
    crate::context::every(&ctx, std::time::Duration::from_secs(3600), || async {
        let cutoff = now_ms() - i64::try_from(days).unwrap_or(i64::MAX / 86_400_000) * 86_400_000;
        match ctx.store.archive_purge_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "archive retention"),
            Err(e) => tracing::error!(error = %e, "archive retention failed"),
        }
    })
    .await
}
