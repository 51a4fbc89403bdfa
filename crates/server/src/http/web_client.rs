//! The web client at `/`: an index page generated here that boots Converse.js configured for this server (the
//! RFC 7395 WebSocket endpoint, the locked domain; group chat and upload services are found by disco), and
//! Converse's own files served from `http.web_client_dir` under `/converse/<version>/`. When those files are
//! missing (`npm ci --prefix web` not run), `/` answers with a page saying how to install them.
//!
//! Nothing is fetched from elsewhere: every script, style, font, sound and chunk comes from this listener.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::context::Context;

/// The file whose presence tells that the client is installed, and whose size and time version the asset URLs.
const ENTRY_SCRIPT: &str = "converse.min.js";
/// Versioned asset URLs change whenever the installed files do, so browsers may keep them for a year.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

struct WebClient {
    dir: PathBuf,
    domain: String,
    /// Converse sends room searches (as you type a room name) to `muc_search_service`, by default a public
    /// directory on another server; pointing it at our own group chat service keeps them here (it answers with an
    /// error, and Converse then offers no completions). An empty value would drop the room name input (Converse 14).
    muc_service: String,
    public_url: String,
}

pub fn routes(ctx: Arc<Context>) -> Router {
    let http = &ctx.config.http;
    let client = Arc::new(WebClient {
        dir: PathBuf::from(&http.web_client_dir),
        domain: ctx.config.domain.clone(),
        muc_service: format!("{}.{}", ctx.config.muc.subdomain, ctx.config.domain),
        public_url: http.public_url.trim_end_matches('/').to_owned(),
    });
    router(client)
}

fn router(client: Arc<WebClient>) -> Router {
    Router::new().route("/", get(index)).route("/converse/{version}/{*path}", get(asset)).with_state(client)
}

async fn index(State(client): State<Arc<WebClient>>) -> Response {
    let html = match tokio::fs::metadata(client.dir.join(ENTRY_SCRIPT)).await {
        Ok(meta) if meta.is_file() => index_page(&client, &version_of(&meta)),
        _ => missing_page(&client.dir),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        html,
    )
        .into_response()
}

/// One of Converse's files. The version segment only busts caches; whatever it says, the installed file is served.
async fn asset(
    State(client): State<Arc<WebClient>>,
    UrlPath((_version, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(file) = resolve(&client.dir, &path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // A gzip copy beside the file (made by scripts/web-setup) is sent to browsers that accept it.
    let gzipped = match accepts_gzip(&headers) {
        true => resolve(&client.dir, &format!("{path}.gz")).await,
        false => None,
    };
    let body_file = gzipped.as_ref().unwrap_or(&file);
    let Ok(meta) = tokio::fs::metadata(body_file).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}{}\"", version_of(&meta), if gzipped.is_some() { "-gz" } else { "" });
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE)),
        (header::ETAG, etag.clone()),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let Ok(body) = tokio::fs::read(body_file).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = HeaderValue::from_static(content_type(&file));
    match gzipped {
        Some(_) => (
            common,
            [(header::CONTENT_TYPE, content_type), (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
            body,
        )
            .into_response(),
        None => (common, [(header::CONTENT_TYPE, content_type)], body).into_response(),
    }
}

/// `Accept-Encoding` lists gzip without `q=0` (RFC 9110 §12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0") || p == "q=0.0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// Maps a URL path to a regular file inside `root`, or `None`. Only plain names are accepted (no `..`, no
/// absolute parts, no hidden files), and the resolved path must still lie inside the resolved root, so neither the
/// URL nor a symbolic link can reach outside the directory.
async fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for part in url_path.split('/') {
        let plain = !part.is_empty()
            && !part.starts_with('.')
            && !part.contains(['\\', '\0', ':'])
            && matches!(Path::new(part).components().next(), Some(Component::Normal(_)));
        if !plain {
            return None;
        }
        relative.push(part);
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(root.join(&relative)).await.ok()?;
    (file.starts_with(&root) && tokio::fs::metadata(&file).await.ok()?.is_file()).then_some(file)
}

/// Size and modification time: changes whenever `npm ci` reinstalls the file.
fn version_of(meta: &std::fs::Metadata) -> String {
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    format!("{:x}-{:x}", meta.len(), mtime)
}

fn content_type(file: &Path) -> &'static str {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The page that boots Converse. The WebSocket URL comes from `http.public_url` when set, else from the address
/// the browser used for this page (so it works on the TLS and the plain listener, and behind a proxy).
fn index_page(client: &WebClient, version: &str) -> String {
    let domain = html_escape(&client.domain);
    let assets = format!("converse/{version}/");
    let settings = format!(
        "{{\"domain\":{},\"muc_service\":{},\"public_url\":{},\"assets\":{}}}",
        js_string(&client.domain),
        js_string(&client.muc_service),
        js_string(&client.public_url),
        js_string(&assets)
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{domain} · drupe</title>
<link rel="icon" href="{assets}images/favicon.ico">
<link rel="stylesheet" href="{assets}converse.min.css">
<script type="module" src="{assets}converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat client needs JavaScript.</noscript>
<script type="module">
  const drupe = {settings};
  const base = drupe.public_url ? new URL(drupe.public_url + "/") : new URL("./", location.href);
  const ws = new URL("xmpp-websocket", base);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  // Converse's fullscreen footer shows sponsor logos loaded from its website; an element defined first wins over
  // Converse's own (it skips names already defined), so this page fetches nothing from elsewhere.
  customElements.define("converse-footer", class extends HTMLElement {{
    connectedCallback() {{
      this.innerHTML = '<p class="text-center subdued py-3">Converse.js, served by drupe</p>';
    }}
  }});
  converse.initialize({{
    assets_path: new URL(drupe.assets, location.href).href,
    websocket_url: ws.href,
    discover_connection_methods: false,
    locked_domain: drupe.domain,
    authentication: "login",
    allow_registration: false,
    view_mode: "fullscreen",
    muc_nickname_from_jid: true,
    muc_search_service: drupe.muc_service,
    use_system_emojis: true,
    show_images_inline: true,
    auto_reconnect: true,
    loglevel: "warn"
  }});
  window.drupe = {{ websocket_url: ws.href }};
</script>
</body>
</html>
"#
    )
}

fn missing_page(dir: &Path) -> String {
    // A relative directory is relative to drupe's working directory: show where that is.
    let full = std::env::current_dir().map(|cwd| cwd.join(dir)).unwrap_or_else(|_| dir.to_path_buf());
    let dir = html_escape(&full.display().to_string());
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>drupe: web client not installed</title></head>
<body>
<h1>The web client is not installed</h1>
<p>drupe serves the Converse.js web client from <code>{dir}</code> (config <code>[http] web_client_dir</code>),
and that directory has no <code>{ENTRY_SCRIPT}</code>.</p>
<p>Install it from the drupe source directory with</p>
<pre>bash scripts/web-setup</pre>
<p>(which runs <code>npm ci --prefix web</code> and adds gzip copies), then run drupe from that directory or set
<code>web_client_dir</code> to the absolute path of <code>web/node_modules/converse.js/dist</code>, and reload this
page. XMPP clients can connect meanwhile.</p>
</body>
</html>
"#
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JavaScript string literal that is also safe inside a `<script>` element (no `</script>` can appear).
fn js_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolve_stays_inside_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("dist");
        std::fs::create_dir_all(root.join("sounds")).unwrap();
        std::fs::write(root.join("converse.min.js"), "x").unwrap();
        std::fs::write(root.join("sounds/msg.mp3"), "x").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("link.txt")).unwrap();

        assert!(resolve(&root, "converse.min.js").await.is_some());
        assert!(resolve(&root, "sounds/msg.mp3").await.is_some());
        for bad in ["../secret.txt", "sounds/../../secret.txt", "/etc/passwd", "", "sounds", "sounds/", ".x", "a\\b"] {
            assert!(resolve(&root, bad).await.is_none(), "{bad:?} must not resolve");
        }
        #[cfg(unix)]
        assert!(resolve(&root, "link.txt").await.is_none(), "a symlink out of the directory must not resolve");
    }

    fn client(dir: &Path) -> Arc<WebClient> {
        Arc::new(WebClient {
            dir: dir.to_path_buf(),
            domain: "chat.example".into(),
            muc_service: "conference.chat.example".into(),
            public_url: String::new(),
        })
    }

    /// GET `uri` with these request headers: status, headers, body.
    async fn get(
        client: &Arc<WebClient>,
        uri: &str,
        headers: &[(header::HeaderName, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        use tower::ServiceExt;
        let mut request = axum::http::Request::get(uri);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = router(client.clone()).oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn index_boots_converse_from_versioned_local_urls() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("converse.min.js"), "export default 1;").unwrap();
        std::fs::write(tmp.path().join("converse.min.css"), "body{}").unwrap();
        let client = client(tmp.path());

        let (status, headers, html) = get(&client, "/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let version = version_of(&std::fs::metadata(tmp.path().join("converse.min.js")).unwrap());
        assert!(
            html.contains(&format!(r#"<script type="module" src="converse/{version}/converse.min.js">"#)),
            "{html}"
        );
        assert!(html.contains(r#""domain":"chat.example""#), "{html}");
        assert!(html.contains("locked_domain: drupe.domain"), "{html}");
        assert!(html.contains(r#"new URL("xmpp-websocket", base)"#), "{html}");
        assert!(!html.contains("muc_domain"), "the group chat service is found by disco: {html}");
        assert!(!html.contains("//cdn") && !html.contains("https://"), "nothing from elsewhere: {html}");

        let (status, headers, body) = get(&client, &format!("/converse/{version}/converse.min.js"), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "export default 1;");
        assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], ASSET_CACHE);
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let (status, _, body) = get(&client, "/converse/old/converse.min.js", &[(header::IF_NONE_MATCH, &etag)]).await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
        let (_, headers, _) = get(&client, "/converse/x/converse.min.css", &[]).await;
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");

        // With a gzip copy beside it, browsers that accept gzip get that one.
        std::fs::write(tmp.path().join("converse.min.js.gz"), "gzipped bytes").unwrap();
        let (status, headers, body) =
            get(&client, "/converse/x/converse.min.js", &[(header::ACCEPT_ENCODING, "gzip, deflate, br")]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "gzipped bytes"));
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_ne!(headers[header::ETAG], etag.as_str());
        let (_, headers, body) =
            get(&client, "/converse/x/converse.min.js", &[(header::ACCEPT_ENCODING, "gzip;q=0, br")]).await;
        assert_eq!((body.as_str(), headers.get(header::CONTENT_ENCODING)), ("export default 1;", None));

        for missing in ["/converse/x/nope.js", "/converse/x/..%2F..%2Fetc%2Fpasswd", "/converse/x/%2e%2e/secret"] {
            assert_eq!(get(&client, missing, &[]).await.0, StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[tokio::test]
    async fn without_the_files_the_index_says_how_to_install_them() {
        let tmp = tempfile::tempdir().unwrap();
        let client = client(&tmp.path().join("not-installed"));
        let (status, headers, html) = get(&client, "/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(html.contains("npm ci --prefix web"), "{html}");
        assert!(html.contains("web_client_dir"), "{html}");
        assert!(!html.contains("converse.initialize"), "{html}");
    }

    #[test]
    fn js_strings_cannot_close_the_script() {
        assert_eq!(js_string("a\"b\\</script>"), "\"a\\\"b\\\\\\u003c/script\\u003e\"");
        assert_eq!(content_type(Path::new("x/curve25519_compiled.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("converse.MIN.JS")), "text/javascript; charset=utf-8");
    }
}
