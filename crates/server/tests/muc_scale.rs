//! XEP-0045 at size: 200 occupants join one room at once, and every groupchat message reaches all of them.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::muc::{is_groupchat, occupant, room};
use common::{ns, Client, Element, TestServer};
use tokio::task::JoinSet;
use tokio::time::Instant;

const OCCUPANTS: usize = 200;
/// Concurrent logins and joins (each login is TLS plus a PBKDF2 check: two cores are shared).
const AT_ONCE: usize = 25;
const BOUND: Duration = Duration::from_secs(30);

/// Runs `step` for every client index, `AT_ONCE` at a time, and returns the clients in index order.
async fn in_batches<T, F, Fut>(inputs: Vec<(usize, Option<Client>)>, step: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Option<Client>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut done: Vec<(usize, T)> = Vec::with_capacity(inputs.len());
    let mut tasks = JoinSet::new();
    for (i, input) in inputs {
        if tasks.len() >= AT_ONCE {
            done.push(tasks.join_next().await.expect("a task").expect("task succeeded"));
        }
        let fut = step(i, input);
        tasks.spawn(async move { (i, fut.await) });
    }
    while let Some(r) = tasks.join_next().await {
        done.push(r.expect("task succeeded"));
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}

/// A presence from an occupant of the crowd room (not the echo of the client's own initial presence).
fn is_room_presence(el: &Element) -> bool {
    el.is("presence", ns::CLIENT) && el.attr("from").is_some_and(|f| f.starts_with(&format!("{}/", room("crowd"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_occupants_each_get_every_message() {
    let started = Instant::now();
    // Everyone enters at once, so whoever comes first creates the room: as an instant room (XEP-0045 §10.1.2),
    // not one locked until configured.
    let server = Arc::new(TestServer::start_with(|c| c.muc.lock_new_rooms = false).await);

    let inputs = (0..OCCUPANTS).map(|i| (i, None)).collect();
    let clients = in_batches(inputs, |i, _| {
        let server = server.clone();
        async move { server.login(&format!("user{i}")).await }
    })
    .await;
    let logged_in = started.elapsed();

    // Everyone joins concurrently; each join completes with the subject message.
    let inputs = clients.into_iter().enumerate().map(|(i, c)| (i, Some(c))).collect();
    let (mut clients, mut seen): (Vec<Client>, Vec<HashSet<String>>) = in_batches(inputs, |i, c| async move {
        let mut c = c.expect("a client");
        let got = c.join("crowd", &format!("n{i}")).await;
        let froms = got.iter().filter(|el| is_room_presence(el)).filter_map(|p| p.attr("from"));
        let froms: Vec<String> = froms.map(str::to_owned).collect();
        let seen: HashSet<String> = froms.iter().cloned().collect();
        assert_eq!(seen.len(), froms.len(), "n{i}: a presence twice in its join: {froms:?}");
        (c, seen)
    })
    .await
    .into_iter()
    .unzip();
    let joined = started.elapsed();

    for sender in [0, OCCUPANTS / 2, OCCUPANTS - 1] {
        let body = format!("from n{sender}");
        let c = &mut clients[sender];
        c.send(format!("<message type='groupchat' to='{}'><body>{body}</body></message>", room("crowd"))).await;
        let from = occupant("crowd", &format!("n{sender}"));
        for (i, c) in clients.iter_mut().enumerate() {
            let m = c.expect_within(BOUND, |el| is_groupchat(el, &from, &body)).await;
            assert_eq!(m.attr("to"), Some(c.jid.as_str()), "occupant {i}: {}", m.to_xml());
        }
    }
    let delivered = started.elapsed();

    // However the joins interleaved, everyone saw every occupant's presence exactly once: those before its own
    // in its join, the later joiners' since (still waiting in its inbox).
    let everyone: HashSet<String> = (0..OCCUPANTS).map(|i| occupant("crowd", &format!("n{i}"))).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let later = c.collect(Duration::from_millis(20)).await;
        let later: Vec<_> = later.iter().filter(|el| is_room_presence(el)).collect();
        assert!(later.iter().all(|p| p.attr("type").is_none()), "occupant {i}: only arrivals expected");
        for p in later {
            let from = p.attr("from").unwrap_or_default().to_owned();
            assert!(seen[i].insert(from), "occupant {i}: a second presence {}", p.to_xml());
        }
        assert_eq!(seen[i], everyone, "occupant {i} saw a different set of occupants");
    }
    eprintln!("{OCCUPANTS} occupants: logged in {logged_in:?}, joined {joined:?}, 3 messages delivered {delivered:?}");
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}
