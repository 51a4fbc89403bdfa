//! XEP-0156 discovery of the WebSocket (RFC 7395 §4) and BOSH endpoints: `/.well-known/host-meta` (XRD, RFC 6415)
//! and `/.well-known/host-meta.json` (JRD), both readable from any origin.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use drupe_proto::xml::escape_attr;

use super::{Http, CORS_ANY};

pub const NS_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";
pub const NS_XBOSH: &str = "urn:xmpp:alt-connections:xbosh";

/// The advertised endpoints: (link relation, URL).
fn links(public_url: &str) -> [(&'static str, String); 2] {
    let ws_base = match public_url.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", public_url.strip_prefix("http://").unwrap_or(public_url)),
    };
    [
        (NS_WEBSOCKET, format!("{ws_base}{}", super::websocket::PATH)),
        (NS_XBOSH, format!("{public_url}{}", super::bosh::PATH)),
    ]
}

fn xrd(public_url: &str) -> String {
    let mut out =
        b"<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n".to_vec();
    for (rel, href) in links(public_url) {
        out.extend_from_slice(b"  <Link rel='");
        escape_attr(&mut out, rel);
        out.extend_from_slice(b"' href='");
        escape_attr(&mut out, &href);
        out.extend_from_slice(b"'/>\n");
    }
    out.extend_from_slice(b"</XRD>\n");
    String::from_utf8_lossy(&out).into_owned()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn jrd(public_url: &str) -> String {
    let links: Vec<String> = links(public_url)
        .iter()
        .map(|(rel, href)| format!("{{\"rel\":{},\"href\":{}}}", json_string(rel), json_string(href)))
        .collect();
    format!("{{\"links\":[{}]}}\n", links.join(","))
}

/// The two documents, rendered once at start.
struct Documents {
    xrd: String,
    jrd: String,
}

pub fn routes(http: Arc<Http>) -> Router {
    let url = http.ctx.config.http.public_url.trim_end_matches('/').to_owned();
    let docs = Arc::new(Documents { xrd: xrd(&url), jrd: jrd(&url) });
    Router::new()
        .route("/.well-known/host-meta", get(host_meta))
        .route("/.well-known/host-meta.json", get(host_meta_json))
        .with_state(docs)
}

async fn host_meta(State(docs): State<Arc<Documents>>) -> Response {
    ([(CONTENT_TYPE, "application/xrd+xml"), CORS_ANY], docs.xrd.clone()).into_response()
}

async fn host_meta_json(State(docs): State<Arc<Documents>>) -> Response {
    ([(CONTENT_TYPE, "application/json"), CORS_ANY], docs.jrd.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_websocket_and_bosh_under_the_public_url() {
        let x = xrd("https://chat.example:5443");
        assert!(x.contains(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://chat.example:5443/xmpp-websocket'/>"
        ));
        let bosh = "<Link rel='urn:xmpp:alt-connections:xbosh' href='https://chat.example:5443/http-bind'/>";
        assert!(x.contains(bosh), "{x}");
        let j = jrd("http://proxy.example");
        assert_eq!(
            j,
            "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"ws://proxy.example/xmpp-websocket\"},\
             {\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"http://proxy.example/http-bind\"}]}\n"
        );
    }
}
