//! XEP-0124 BOSH with XEP-0206 (XMPP over BOSH) at `/http-bind`, for clients that cannot use WebSocket.
//!
//! A request without `sid` creates a session: a client session task (`c2s::run_framed`) on a [`Link`] transport.
//! Every request is parsed here into stream events and handed to its session's bounded queue with a oneshot for
//! the answer; the session task decides when to answer (`link.rs`), so only it produces its client's output.

mod body;
mod link;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use drupe_proto::xml::StreamEvent;
use tokio::sync::{mpsc, oneshot};

pub use link::{Link, Registry};

use self::body::Body;
use self::link::{Params, HOLD, REQUESTS};
use super::{ConnInfo, Http, CORS_ANY};
use crate::c2s::{self, transport::Transport};
use crate::context::random_token;

pub const PATH: &str = "/http-bind";
/// Requests queued for one session beyond those it holds (a well-behaved client has at most `requests` open).
const QUEUE: usize = 4;
/// Extra time an HTTP request waits for its answer beyond `wait` before it gives up.
const ANSWER_SLACK: Duration = Duration::from_secs(10);

/// One request handed to a session.
pub struct Request {
    pub rid: u64,
    pub events: Vec<StreamEvent>,
    pub reply: oneshot::Sender<String>,
}

pub fn routes(http: Arc<Http>) -> Router {
    Router::new().route(PATH, get(info).post(request).options(preflight)).with_state(http)
}

fn xml(body: String) -> Response {
    (
        [
            (CONTENT_TYPE, "text/xml; charset=utf-8"),
            CORS_ANY,
            (ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"),
            (ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
        ],
        body,
    )
        .into_response()
}

async fn preflight() -> Response {
    xml(String::new())
}

async fn info() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "XMPP over BOSH (XEP-0206): POST <body/> here.\n").into_response()
}

async fn request(
    State(http): State<Arc<Http>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    data: Bytes,
) -> Response {
    let l = &http.ctx.config.limits;
    let limits = l.reader(true);
    if data.len() > l.max_stanza_bytes {
        return xml(body::terminate("policy-violation"));
    }
    let Ok(parsed) = Body::parse(&data, limits) else { return xml(body::terminate("bad-request")) };
    let Some(rid) = parsed.element.attr("rid").and_then(|r| r.parse::<u64>().ok()) else {
        return xml(body::terminate("bad-request"));
    };
    let (reply, answer) = oneshot::channel();
    let mut wait = http.ctx.config.http.bosh_max_wait_secs;
    let sent = match parsed.element.attr("sid") {
        None => create(&http, &parsed, rid, conn, &headers, reply, &mut wait),
        Some(sid) => {
            let tx = http.bosh.lock().unwrap_or_else(|e| e.into_inner()).get(sid).cloned();
            let Some(tx) = tx else { return xml(body::terminate("item-not-found")) };
            let mut events = parsed.stanzas();
            if parsed.element.attr("type") == Some("terminate") {
                events.push(StreamEvent::Close);
            } else if parsed.restart() {
                events = vec![link::open_event(parsed.element.attr("to"))];
            }
            tx.try_send(Request { rid, events, reply }).map_err(|_| "policy-violation")
        }
    };
    if let Err(condition) = sent {
        return xml(body::terminate(condition));
    }
    match tokio::time::timeout(Duration::from_secs(wait) + ANSWER_SLACK, answer).await {
        Ok(Ok(body)) => xml(body),
        // The session ended without answering (dropped, replaced, shut down).
        _ => xml(body::terminate("remote-connection-failed")),
    }
}

/// Session creation (XEP-0124 §7, XEP-0206 §4): starts a client session and queues the stream opening.
fn create(
    http: &Arc<Http>,
    parsed: &Body,
    rid: u64,
    conn: ConnInfo,
    headers: &HeaderMap,
    reply: oneshot::Sender<String>,
    wait: &mut u64,
) -> Result<(), &'static str> {
    let ctx = &http.ctx;
    let to = parsed.element.attr("to");
    if !to.is_some_and(|to| to.eq_ignore_ascii_case(ctx.domain())) {
        return Err("host-unknown");
    }
    let requested_wait = parsed.element.attr("wait").and_then(|w| w.parse::<u64>().ok());
    *wait = requested_wait.unwrap_or(u64::MAX).clamp(1, ctx.config.http.bosh_max_wait_secs);
    let permit = http.permits.clone().try_acquire_owned().map_err(|_| "policy-violation")?;
    let sid = random_token(24);
    let inactivity = ctx.config.http.bosh_inactivity_secs;
    let creation_attrs = format!(
        " xmlns:xmpp='urn:xmpp:xbosh' xmlns:stream='http://etherx.jabber.org/streams' sid='{sid}' wait='{wait}' \
         hold='{HOLD}' requests='{REQUESTS}' polling='1' inactivity='{inactivity}' ver='1.11' from='{}' \
         xmpp:version='1.0' xmpp:restartlogic='true' secure='true'",
        ctx.domain(),
    );
    let params = Params {
        sid: sid.clone(),
        secure: conn.secure,
        wait: Duration::from_secs(*wait),
        inactivity: Duration::from_secs(inactivity),
        max_buffered: ctx.config.http.bosh_max_buffered_bytes,
        rid,
        creation_attrs,
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let opening = Request { rid, events: vec![link::open_event(to)], reply };
    tx.try_send(opening).map_err(|_| "internal-server-error")?;
    http.bosh.lock().unwrap_or_else(|e| e.into_inner()).insert(sid, tx);
    let link = Link::new(params, rx, http.bosh.clone(), permit);
    let peer = conn.client(headers);
    let ctx2 = ctx.clone();
    ctx.tracker.spawn(c2s::run_framed(Transport::Bosh(Box::new(link)), peer, ctx2));
    Ok(())
}
