//! XEP-0363 HTTP File Upload, the HTTP side: `PUT /upload/<slot>/<filename>?e=…&s=…` stores the body of a granted
//! slot, `GET`/`HEAD` serve it back (with ranges for media players), `OPTIONS` answers browsers' CORS preflight.
//! The slot IQ and the signing key are `modules/upload.rs`.
//!
//! A PUT streams the body into `data_dir/upload/tmp/` (never whole in memory), checks it has exactly the slot's
//! size, syncs it and only then renames it into `data_dir/upload/<slot>` and marks the slot complete: a file is
//! served whole or not at all. Any failure (client gone, too long, disk full) removes the partial file.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::context::Context;
use crate::modules::upload::{dir, encode_segment, file_path, valid_slot};

/// Write buffer of one upload: bodies arrive in small frames; the file is written in blocks of this size.
const WRITE_BUFFER: usize = 256 * 1024;
/// Read block of one download.
const READ_BUFFER: usize = 64 * 1024;

struct Uploads {
    ctx: Arc<Context>,
    /// Slots with a PUT in progress: a second PUT to the same slot is refused (409) rather than racing it.
    in_flight: Mutex<HashSet<String>>,
}

/// The upload routes, merged into the HTTP listener's router.
pub fn routes(ctx: Arc<Context>) -> Router {
    let state = Arc::new(Uploads { ctx, in_flight: Mutex::new(HashSet::new()) });
    Router::new()
        .route("/upload/{slot}/{name}", get(download).put(upload).options(preflight))
        // The size limit is the slot's, enforced while streaming.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// CORS (Converse.js and other web clients upload from another origin): anyone may PUT to a URL they were given
/// and read a file they know the URL of; nothing is credentialed.
fn cors(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, PUT, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Range"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, ETag, Accept-Ranges"),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
}

fn status(code: StatusCode) -> Response {
    let mut r = code.into_response();
    cors(r.headers_mut());
    r
}

async fn preflight() -> Response {
    status(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct PutParams {
    e: Option<i64>,
    s: Option<String>,
}

/// Removes the partial file unless the upload completed (also when the request is dropped mid-body).
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Frees the slot for another PUT when this one ends, however it ends.
struct InFlight<'a>(&'a Uploads, String);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// Disk full or over a file system quota: 507, the client may retry later; anything else is ours: 500.
fn io_status(e: &std::io::Error) -> StatusCode {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
        || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
    {
        tracing::warn!(error = %e, "upload refused: no space left");
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        tracing::error!(error = %e, "upload write failed");
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

async fn upload(
    State(st): State<Arc<Uploads>>,
    Path((slot, name)): Path<(String, String)>,
    Query(params): Query<PutParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctx = &st.ctx;
    if !valid_slot(&slot) {
        return status(StatusCode::FORBIDDEN);
    }
    let file = match ctx.store.upload_file(&slot).await {
        Ok(Some(f)) if f.filename == name => f,
        Ok(_) => return status(StatusCode::FORBIDDEN),
        Err(e) => {
            tracing::error!(error = %e, "store error");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let (Some(expires), Some(sig)) = (params.e, params.s.as_deref()) else { return status(StatusCode::FORBIDDEN) };
    let now = crate::modules::now_ms() / 1000;
    if !ctx.upload.verify(&file, expires, sig) || expires < now {
        return status(StatusCode::FORBIDDEN);
    }
    if file.complete {
        return status(StatusCode::CONFLICT);
    }
    // XEP-0363 §5: the body is exactly the announced size.
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match length {
        None => return status(StatusCode::LENGTH_REQUIRED),
        Some(n) if n > file.size => return status(StatusCode::PAYLOAD_TOO_LARGE),
        Some(n) if n != file.size => return status(StatusCode::BAD_REQUEST),
        Some(_) => {}
    }
    if !st.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(slot.clone()) {
        return status(StatusCode::CONFLICT);
    }
    let _in_flight = InFlight(&st, slot.clone());
    // A URL used just before it expires still gets the slot's lifetime to finish.
    let ttl = std::time::Duration::from_secs(ctx.config.upload.slot_ttl_secs);
    match tokio::time::timeout(ttl, receive(ctx, &file, body)).await {
        Ok(code) => status(code),
        Err(_) => status(StatusCode::REQUEST_TIMEOUT),
    }
}

/// Streams the body to a temporary file, then puts it in place; the status to answer.
async fn receive(ctx: &Context, file: &drupe_store::UploadFile, body: Body) -> StatusCode {
    let dir = dir(ctx);
    let tmp_dir = dir.join("tmp");
    if let Err(e) = tokio::fs::create_dir_all(&tmp_dir).await {
        return io_status(&e);
    }
    let mut partial =
        Partial { path: tmp_dir.join(format!("{}.{}.part", file.slot, crate::context::random_token(8))), keep: false };
    let out = match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&partial.path).await {
        Ok(f) => f,
        Err(e) => return io_status(&e),
    };
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, out);
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client went away or sent a broken body.
            return StatusCode::BAD_REQUEST;
        };
        written += chunk.len() as u64;
        if written > file.size {
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        if let Err(e) = out.write_all(&chunk).await {
            return io_status(&e);
        }
    }
    if written != file.size {
        return StatusCode::BAD_REQUEST;
    }
    if let Err(e) = out.flush().await {
        return io_status(&e);
    }
    let out = out.into_inner();
    if let Err(e) = out.sync_all().await {
        return io_status(&e);
    }
    drop(out);
    let target = file_path(&dir, &file.slot);
    if let Err(e) = tokio::fs::rename(&partial.path, &target).await {
        return io_status(&e);
    }
    partial.keep = true;
    // The rename itself is durable once the directory is synced (before the slot is marked complete).
    if let Ok(d) = tokio::fs::File::open(&dir).await {
        let _ = d.sync_all().await;
    }
    match ctx.store.upload_complete(&file.slot).await {
        Ok(true) => {
            tracing::debug!(slot = %file.slot, bytes = written, "upload stored");
            StatusCode::CREATED
        }
        // Purged while it was uploading.
        Ok(false) => {
            let _ = tokio::fs::remove_file(&target).await;
            StatusCode::GONE
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&target).await;
            tracing::error!(error = %e, "store error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of `len` bytes: `Some(Ok((start, end)))` (inclusive),
/// `Some(Err(()))` when unsatisfiable, `None` when absent or not one range we serve (then the whole file goes).
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() { u64::MAX } else { b.parse().ok()? };
        if end < start {
            return None;
        }
        if start >= len {
            return Some(Err(()));
        }
        (start, end.min(len - 1))
    };
    Some(Ok(range))
}

/// Shown in the browser (images, audio, video) or offered as a download (everything else, SVG included: it can
/// carry script).
fn inline(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    (ct.starts_with("image/") && !ct.starts_with("image/svg")) || ct.starts_with("audio/") || ct.starts_with("video/")
}

async fn download(
    State(st): State<Arc<Uploads>>,
    method: Method,
    Path((slot, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = &st.ctx;
    if !valid_slot(&slot) {
        return status(StatusCode::NOT_FOUND);
    }
    let file = match ctx.store.upload_file(&slot).await {
        Ok(Some(f)) if f.complete && f.filename == name => f,
        Ok(_) => return status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "store error");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let mut data = match tokio::fs::File::open(file_path(&dir(ctx), &slot)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "cannot open upload");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let len = match data.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let etag = format!("\"{slot}\"");
    let mut out = HeaderMap::new();
    cors(&mut out);
    out.insert(header::ETAG, HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
    }) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    let content_type =
        HeaderValue::from_str(&file.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    out.insert(header::CONTENT_TYPE, content_type);
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline(&file.content_type) { "inline" } else { "attachment" },
        encode_segment(&file.filename)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        out.insert(header::CONTENT_DISPOSITION, v);
    }
    // A range applies only to the representation it was asked against (If-Range).
    let if_range_ok = headers.get(header::IF_RANGE).is_none_or(|v| v.to_str().ok() == Some(etag.as_str()));
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_ok)
        .and_then(|v| parse_range(v, len));
    let (code, start, count) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Err(())) => {
            out.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            return (StatusCode::RANGE_NOT_SATISFIABLE, out).into_response();
        }
        Some(Ok((a, b))) => {
            let v = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")).expect("ascii");
            out.insert(header::CONTENT_RANGE, v);
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
    };
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if method == Method::HEAD {
        return (code, out).into_response();
    }
    if start > 0 && data.seek(SeekFrom::Start(start)).await.is_err() {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    }
    use tokio::io::AsyncReadExt;
    let stream = tokio_util::io::ReaderStream::with_capacity(data.take(count), READ_BUFFER);
    (code, out, Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=900-", 1000), Some(Ok((900, 999))));
        assert_eq!(parse_range("bytes=-100", 1000), Some(Ok((900, 999))));
        assert_eq!(parse_range("bytes=500-5000", 1000), Some(Ok((500, 999))));
        assert_eq!(parse_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=9-3", 1000), None);
    }

    #[test]
    fn a_full_disk_is_507_and_other_write_errors_500() {
        let full = std::io::Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(io_status(&full), StatusCode::INSUFFICIENT_STORAGE);
        let quota = std::io::Error::from_raw_os_error(122); // EDQUOT
        assert_eq!(io_status(&quota), StatusCode::INSUFFICIENT_STORAGE);
        let other = std::io::Error::from_raw_os_error(5); // EIO
        assert_eq!(io_status(&other), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn only_media_is_inline() {
        assert!(inline("image/png"));
        assert!(inline("video/mp4"));
        assert!(!inline("image/svg+xml"));
        assert!(!inline("text/html"));
        assert!(!inline("application/octet-stream"));
    }
}
