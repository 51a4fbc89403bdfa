//! XEP-0363 HTTP File Upload, the XMPP side: the service at `<upload.subdomain>.<domain>` (found through disco#items
//! on the server), its disco#info with the max-file-size form, slot requests, and the hourly purge of expired
//! files. The HTTP side (PUT/GET on the HTTPS listener) is `http/upload.rs`.
//!
//! A slot is a random 128-bit id. The PUT URL carries `e` (expiry, unix seconds) and `s`, an HMAC-SHA-256 over
//! (slot, filename, size, content type, expiry) under `data_dir/upload.key`: an altered URL, or one past its
//! expiry, is refused. The GET URL is the slot id and the filename, nothing else: unguessable, never listed.
//! Accounting (quota, bytes per day) is the store's `upload_files` rows, checked and granted in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use drupe_proto::error::{Condition, ErrorType, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{dataform, ns, stanza};
use drupe_store::{SlotGrant, SlotRequest};

use super::{now_ms, store_failure};
use crate::c2s::Session;
use crate::context::Context;

pub const NS: &str = "urn:xmpp:http:upload:0";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const DAY_MS: i64 = 86_400_000;
/// Longest filename accepted, in bytes (most file systems' limit).
const MAX_FILENAME: usize = 255;

/// The upload service: its address and the key its PUT URLs are signed with (`None`: upload is off).
pub struct Upload {
    pub domain: String,
    key: Option<ring::hmac::Key>,
}

impl Upload {
    /// Reads or creates `data_dir/upload.key` when upload is enabled. A key that cannot be read turns upload off
    /// with one error in the log, rather than the whole server.
    pub fn new(config: &crate::config::Config) -> Upload {
        let domain = format!("{}.{}", config.upload.subdomain, config.domain);
        let key = config.upload.enabled.then(|| config.data_dir.join("upload.key")).and_then(|path| {
            match crate::c2s::fast::load_or_create_key(&path) {
                Ok(key) => Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key)),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "upload key unusable: upload disabled");
                    None
                }
            }
        });
        Upload { domain, key }
    }

    fn message(slot: &str, filename: &str, size: u64, content_type: &str, expires: i64) -> Vec<u8> {
        format!("drupe-upload\0{slot}\0{filename}\0{size}\0{content_type}\0{expires}").into_bytes()
    }

    /// The `s` parameter of a PUT URL.
    pub fn sign(&self, slot: &str, filename: &str, size: u64, content_type: &str, expires: i64) -> Option<String> {
        let key = self.key.as_ref()?;
        Some(B64.encode(ring::hmac::sign(key, &Upload::message(slot, filename, size, content_type, expires))))
    }

    /// Checks a PUT URL's signature (constant time).
    pub fn verify(&self, file: &drupe_store::UploadFile, expires: i64, signature: &str) -> bool {
        let (Some(key), Ok(tag)) = (self.key.as_ref(), B64.decode(signature)) else { return false };
        let msg = Upload::message(&file.slot, &file.filename, file.size, &file.content_type, expires);
        ring::hmac::verify(key, &msg, &tag).is_ok()
    }
}

/// Where uploaded files live: `data_dir/upload/<slot>`.
pub fn dir(ctx: &Context) -> PathBuf {
    ctx.config.data_dir.join("upload")
}

/// The stored file of `slot` (slot ids are `[A-Za-z0-9]` only, checked by [`valid_slot`]).
pub fn file_path(dir: &Path, slot: &str) -> PathBuf {
    dir.join(slot)
}

pub fn valid_slot(slot: &str) -> bool {
    slot.len() == 22 && slot.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The base URL files are served under, when an HTTP listener runs (`Server::start` resolves `http.public_url`
/// from the bound port when it is not configured).
pub fn base_url(ctx: &Context) -> Option<String> {
    let url = &ctx.config.http.public_url;
    (!url.is_empty()).then(|| url.trim_end_matches('/').to_owned())
}

/// Whether the service is offered: enabled, with a key and an HTTPS listener to upload to.
pub fn offered(ctx: &Context) -> bool {
    ctx.upload.key.is_some() && base_url(ctx).is_some()
}

/// RFC 3986 percent-encoding of one path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A filename we can serve back: one path segment, no control characters (XEP-0363 §4 leaves it to the server).
pub fn valid_filename(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FILENAME
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A content type we can repeat in a header: `type/subtype` with optional parameters, printable ASCII.
fn valid_content_type(ct: &str) -> bool {
    ct.len() <= 255 && ct.contains('/') && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Stanzas addressed to the upload service.
pub async fn from_client(s: &mut Session, el: Element) {
    if !offered(&s.ctx) {
        if el.name() != "presence" {
            s.send_error(&el, Condition::ServiceUnavailable);
        }
        return;
    }
    match (el.name(), el.attr("type").unwrap_or_default()) {
        ("iq", "get" | "set") => {}
        ("iq", _) | ("presence", _) => return,
        _ => return s.send_error(&el, Condition::ServiceUnavailable),
    }
    let Some(payload) = el.first_child().filter(|_| el.children().count() == 1 && el.attr("id").is_some()) else {
        return s.send_error(&el, Condition::BadRequest);
    };
    let get = el.attr("type") == Some("get");
    match (payload.ns(), payload.name()) {
        (ns::DISCO_INFO, "query") if get => info(s, &el),
        (ns::DISCO_ITEMS, "query") if get => {
            s.send(&stanza::iq_result(&el, Some(Element::new("query", ns::DISCO_ITEMS))))
        }
        (NS, "request") if get => request_slot(s, &el).await,
        _ => s.send_error(&el, Condition::ServiceUnavailable),
    }
}

fn info(s: &mut Session, iq: &Element) {
    if iq.first_child().is_some_and(|q| q.attr("node").is_some()) {
        return s.send_error(iq, Condition::ItemNotFound);
    }
    let mut form = dataform::form("result", NS);
    form.push(
        Element::new("field", dataform::NS)
            .with_attr("var", "max-file-size")
            .with_child(Element::new("value", dataform::NS).with_text(s.ctx.config.upload.max_file_bytes.to_string())),
    );
    let query = Element::new("query", ns::DISCO_INFO)
        .with_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "store")
                .with_attr("type", "file")
                .with_attr("name", "HTTP File Upload"),
        )
        .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", ns::DISCO_INFO))
        .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", NS))
        .with_child(form);
    s.send(&stanza::iq_result(iq, Some(query)));
}

/// An error reply with an application-specific child inside `<error/>` (XEP-0363 §5).
fn send_error_with(s: &mut Session, iq: &Element, error: StanzaError, extra: Option<Element>) {
    let mut reply = stanza::error_reply(iq, &error);
    if let (Some(extra), Some(e)) = (extra, reply.child_mut("error", ns::CLIENT)) {
        e.push(extra);
    }
    if let Some(jid) = &s.jid {
        reply.set_attr("to", jid.to_string());
    }
    s.send(&reply);
}

/// XEP-0363 §4: a slot for (filename, size, content type), or why not.
async fn request_slot(s: &mut Session, iq: &Element) {
    let Some(req) = iq.child("request", NS) else { return };
    let Some(user) = s.user.clone() else { return };
    let cfg = s.ctx.config.upload.clone();
    let filename = req.attr("filename").unwrap_or_default().to_owned();
    if !valid_filename(&filename) {
        return s.send_error(iq, StanzaError::new(Condition::BadRequest).with_text("Invalid filename"));
    }
    let Some(size) = req.attr("size").and_then(|v| v.parse::<u64>().ok()) else {
        return s.send_error(iq, StanzaError::new(Condition::BadRequest).with_text("Missing or invalid size"));
    };
    let content_type = match req.attr("content-type").map(str::trim) {
        None | Some("") => "application/octet-stream".to_owned(),
        Some(ct) if valid_content_type(ct) => ct.to_owned(),
        Some(_) => return s.send_error(iq, StanzaError::new(Condition::BadRequest).with_text("Invalid content-type")),
    };
    if size > cfg.max_file_bytes {
        let text = format!("File too large. The maximum file size is {} bytes", cfg.max_file_bytes);
        let extra = Element::new("file-too-large", NS)
            .with_child(Element::new("max-file-size", NS).with_text(cfg.max_file_bytes.to_string()));
        return send_error_with(s, iq, StanzaError::new(Condition::NotAcceptable).with_text(text), Some(extra));
    }
    let now = now_ms();
    let slot = crate::context::random_token(22);
    let request = SlotRequest {
        slot: slot.clone(),
        owner: user,
        filename: filename.clone(),
        size,
        content_type: content_type.clone(),
        now_ms: now,
        quota_bytes: cfg.quota_bytes,
        daily_bytes: cfg.daily_bytes,
        pending_since_ms: now - ttl_ms(cfg.slot_ttl_secs),
        day_since_ms: now - DAY_MS,
    };
    let refusal = |text: String| {
        StanzaError { kind: ErrorType::Wait, ..StanzaError::new(Condition::ResourceConstraint) }.with_text(text)
    };
    match s.ctx.store.upload_slot_grant(&request).await {
        Ok(SlotGrant::Granted) => {}
        Ok(SlotGrant::OverQuota { used }) => {
            let text = format!("Quota reached: {used} of {} bytes in use", cfg.quota_bytes);
            return s.send_error(iq, refusal(text));
        }
        Ok(SlotGrant::OverDaily { used }) => {
            let text = format!("Daily upload limit reached: {used} of {} bytes today", cfg.daily_bytes);
            return s.send_error(iq, refusal(text));
        }
        Err(e) => return s.send_error(iq, store_failure(e)),
    }
    let Some(base) = base_url(&s.ctx) else {
        return s.send_error(iq, Condition::ServiceUnavailable);
    };
    let expires = now / 1000 + i64::try_from(cfg.slot_ttl_secs).unwrap_or(i64::MAX / 2_000);
    let Some(sig) = s.ctx.upload.sign(&slot, &filename, size, &content_type, expires) else {
        return s.send_error(iq, Condition::ServiceUnavailable);
    };
    let get_url = format!("{base}/upload/{slot}/{}", encode_segment(&filename));
    let put_url = format!("{get_url}?e={expires}&s={sig}");
    let result = Element::new("slot", NS)
        .with_child(Element::new("put", NS).with_attr("url", put_url))
        .with_child(Element::new("get", NS).with_attr("url", get_url));
    s.send(&stanza::iq_result(iq, Some(result)));
}

fn ttl_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 2_000).saturating_mul(1000)
}

/// Removes expired files (older than `upload.expire_days`) and lapsed slots (never uploaded within
/// `upload.slot_ttl_secs`), hourly from start. The file goes first, then its row: a crash in between leaves a row
/// without a file (a 404), never a file nobody accounts for.
pub async fn purge(ctx: Arc<Context>) {
    if !ctx.config.upload.enabled {
        return;
    }
    crate::context::every(&ctx, std::time::Duration::from_secs(3600), || async {
        match purge_once(&ctx, now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "upload expiry"),
            Err(e) => tracing::error!(error = %e, "upload expiry failed"),
        }
    })
    .await
}

/// One purge pass at `now`; returns how many entries were removed.
pub async fn purge_once(ctx: &Context, now: i64) -> Result<usize, drupe_store::StoreError> {
    let cfg = &ctx.config.upload;
    let files_before = (cfg.expire_days > 0)
        .then(|| now - i64::try_from(cfg.expire_days).unwrap_or(i64::MAX / DAY_MS).saturating_mul(DAY_MS));
    // A slot whose PUT URL has expired can still be mid-upload: give it the TTL once more before dropping it.
    let slots_before = now - ttl_ms(cfg.slot_ttl_secs).saturating_mul(2);
    let dir = dir(ctx);
    remove_stale_partials(&dir.join("tmp"), ttl_ms(cfg.slot_ttl_secs).saturating_mul(2)).await;
    let mut total = 0;
    loop {
        let expired = ctx.store.upload_expired(files_before, slots_before, 256).await?;
        if expired.is_empty() {
            return Ok(total);
        }
        let mut ids = Vec::with_capacity(expired.len());
        for f in expired {
            if valid_slot(&f.slot) {
                match tokio::fs::remove_file(file_path(&dir, &f.slot)).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::error!(slot = %f.slot, error = %e, "cannot remove expired upload");
                        continue;
                    }
                }
            }
            ids.push(f.slot);
        }
        if ids.is_empty() {
            return Ok(total);
        }
        total += ctx.store.upload_remove(&ids).await?;
    }
}

/// Partial uploads a crash left behind (a running PUT never outlives the slot TTL, `http/upload.rs`).
async fn remove_stale_partials(tmp: &Path, older_than_ms: i64) {
    let Ok(mut entries) = tokio::fs::read_dir(tmp).await else { return };
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_millis(older_than_ms.max(0) as u64);
    while let Ok(Some(entry)) = entries.next_entry().await {
        let stale = entry.metadata().await.and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
        if stale {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_one_segment_without_controls() {
        for ok in ["a.jpg", "très cool.jpg", "x..y", "100%.txt"] {
            assert!(valid_filename(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "a\nb", &"x".repeat(256)] {
            assert!(!valid_filename(bad), "{bad:?}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("très cool.jpg"), "tr%C3%A8s%20cool.jpg");
        assert_eq!(encode_segment("a?b#c&d"), "a%3Fb%23c%26d");
    }

    #[test]
    fn content_types_must_be_printable() {
        assert!(valid_content_type("image/jpeg"));
        assert!(valid_content_type("text/plain; charset=utf-8"));
        assert!(!valid_content_type("text/plain\r\nX-Evil: 1"));
        assert!(!valid_content_type("nothing"));
    }
}
