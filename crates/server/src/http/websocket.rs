//! RFC 7395 XMPP over WebSocket at `/xmpp-websocket`: the handshake must offer the `xmpp` subprotocol (§3.3.1);
//! the upgraded socket becomes the transport of an ordinary client session (`c2s::run_framed`), which exchanges
//! one element per text message.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use sync_wrapper::SyncWrapper;

use super::{ConnInfo, Http};
use crate::c2s::{self, transport::Transport};

pub const PATH: &str = "/xmpp-websocket";
const SUBPROTOCOL: &str = "xmpp";
/// Room above `limits.max_stanza_bytes` before tungstenite itself refuses a message: anything between the two is
/// answered with a `<policy-violation/>` stream error rather than a bare WebSocket close.
const MESSAGE_SLACK: usize = 64 * 1024;
/// Initial read buffer of a WebSocket.
const READ_BUFFER: usize = 4 * 1024;
/// Output collected before tungstenite writes to the socket (each flush writes regardless).
const WRITE_BUFFER: usize = 16 * 1024;

pub fn routes(http: Arc<Http>) -> Router {
    Router::new().route(PATH, get(upgrade)).with_state(http)
}

async fn upgrade(
    State(http): State<Arc<Http>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        return (StatusCode::BAD_REQUEST, "the `xmpp` WebSocket subprotocol is required (RFC 7395 §3.3.1)\n")
            .into_response();
    }
    let Ok(permit) = http.permits.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let ctx = http.ctx.clone();
    let max_frame = ctx.config.limits.max_stanza_bytes;
    let peer = conn.client(&headers);
    // tungstenite reserves `read_buffer_size` per socket up front (128 KiB by default): a few KiB keep an idle
    // WebSocket session as small as a TCP one; larger messages grow the buffer while they are read.
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max_frame.saturating_add(MESSAGE_SLACK))
        .max_frame_size(max_frame.saturating_add(MESSAGE_SLACK))
        .on_upgrade(move |socket| {
            let transport =
                Transport::WebSocket { socket: Box::new(SyncWrapper::new(socket)), secure: conn.secure, max_frame };
            let tracker = ctx.tracker.clone();
            tracker.track_future(async move {
                c2s::run_framed(transport, peer, ctx).await;
                drop(permit);
            })
        })
}
