//! Graceful shutdown: every connection, bound or still negotiating, is told `<system-shutdown/>` and closed.

mod common;

use std::time::Duration;

use common::TestServer;

#[tokio::test]
async fn shutdown_sends_system_shutdown_to_every_connection() {
    // A long grace period, so that a shutdown waiting for it instead of ending sessions at once shows.
    let server = TestServer::start_with(|c| c.server.shutdown_grace_secs = 10).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login_scram("bob").await;
    let mut negotiating = server.connect().await;
    negotiating.open().await;
    let addr = server.addr();

    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await.expect("shutdown finishes");
    assert!(started.elapsed() < Duration::from_secs(5), "sessions should end at once, not at the grace period");

    alice.expect_stream_error("system-shutdown").await;
    bob.expect_stream_error("system-shutdown").await;
    negotiating.expect_stream_error("system-shutdown").await;

    // Nobody is listening any more.
    let refused = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await;
    assert!(!matches!(refused, Ok(Ok(_))), "the listener still accepts after shutdown");
}
