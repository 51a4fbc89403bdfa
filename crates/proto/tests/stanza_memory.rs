//! What a stanza may make the reader hold in memory, whatever its shape: measured with a counting allocator.
//!
//! The first case is the probe that found the problem: before STARTTLS, `<message xmlns='urn:nnn…'>` with an
//! 8,000-byte namespace and 60,000 empty `<a/>` children (248 KB, under the 256 KiB stanza limit) made the server
//! hold 470 MB, because every child owned a copy of the namespace. The others vary the shape: wide, deep, many
//! attributes, many prefixes, text between elements. Each must either be refused with `policy-violation` or be
//! read, and in both cases the reader's peak memory stays within a small multiple of the stanza limit.
//!
//! One test function: the allocator counts every thread of this test binary.

// The only unsafe code in the workspace: a global allocator that forwards to the system's and counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use drupe_proto::error::StreamCondition;
use drupe_proto::xml::{Limits, StreamEvent, StreamReader};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams'>";

/// Feeds `stanza` in 4 KiB reads (as the server's reads come) and returns the outcome and the peak memory the
/// reading added, in bytes, including the stanza it returns.
fn read(limits: Limits, stanza: &[u8]) -> (Result<usize, StreamCondition>, usize) {
    let mut reader = StreamReader::new(limits);
    let mut events = Vec::new();
    reader.feed(HEADER, &mut events).unwrap();
    events.clear();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut outcome = Ok(0);
    for chunk in stanza.chunks(4096) {
        if let Err(e) = reader.feed(chunk, &mut events) {
            outcome = Err(e.condition);
            break;
        }
    }
    let peak = PEAK.load(Ordering::Relaxed) - base;
    if outcome.is_ok() {
        let stanzas = events.iter().filter(|e| matches!(e, StreamEvent::Stanza(_))).count();
        outcome = Ok(stanzas);
    }
    drop(events);
    (outcome, peak)
}

fn repeat(head: &str, child: &str, n: usize, tail: &str) -> Vec<u8> {
    let mut s = String::with_capacity(head.len() + child.len() * n + tail.len());
    s.push_str(head);
    for _ in 0..n {
        s.push_str(child);
    }
    s.push_str(tail);
    s.into_bytes()
}

#[test]
fn no_shape_of_stanza_holds_much_more_than_the_limit() {
    let long = "n".repeat(8000);
    let default = Limits::default();
    let limit = default.max_stanza_bytes;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // The probe, exactly.
        (
            "long namespace, 60,000 children",
            repeat(&format!("<message xmlns='urn:{long}'>"), "<a/>", 60_000, "</message>"),
        ),
        ("60,000 children", repeat("<message>", "<a/>", 60_000, "</message>")),
        (
            "a long prefix used by every child",
            repeat(&format!("<message xmlns:p='urn:{long}'>"), "<p:a/>", 50_000, "</message>"),
        ),
        (
            "five attributes on each of 8,000 children",
            repeat("<message>", "<a b='' c='' d='' e='' f=''/>", 8_000, "</message>"),
        ),
        ("text between 40,000 children", repeat("<message>", "x<a/>", 40_000, "</message>")),
        (
            "deep, long namespace at every level",
            repeat(
                "<message>",
                &format!("<a xmlns='urn:{}'>", "d".repeat(7000)),
                31,
                &format!("{}</message>", "</a>".repeat(31)),
            ),
        ),
        (
            "31 levels under a long namespace, then 20,000 children",
            repeat(
                &format!("<message xmlns='urn:{long}'>{}", "<a>".repeat(30)),
                "<b/>",
                20_000,
                &format!("{}</message>", "</a>".repeat(30)),
            ),
        ),
        (
            "many prefixes declared",
            repeat("<message>", "<a xmlns:p='urn:x' xmlns:q='urn:y' xmlns:r='urn:z'/>", 5_000, "</message>"),
        ),
    ];
    for (name, stanza) in &cases {
        let (outcome, peak) = read(default, stanza);
        assert!(stanza.len() < 320 * 1024, "{name}: the case itself is about the limit's size");
        // The probe held 1,970 times its bytes; now nothing holds more than twice the limit.
        assert!(peak <= 2 * limit, "{name}: {} bytes sent held {peak} bytes", stanza.len());
        assert!(outcome == Err(StreamCondition::PolicyViolation) || outcome == Ok(1), "{name}: {outcome:?}");
    }
    // The probe's stanza is refused (its elements are counted), not read.
    assert_eq!(read(default, &cases[0].1).0, Err(StreamCondition::PolicyViolation));

    // Within a larger limit the same shapes are read, and hold a small multiple of what was counted.
    let large = Limits { max_stanza_bytes: 16 * 1024 * 1024, ..default };
    for (name, stanza) in &cases[..5] {
        let (outcome, peak) = read(large, stanza);
        assert_eq!(outcome, Ok(1), "{name}");
        assert!(peak <= 2 * 16 * 1024 * 1024, "{name}: {peak}");
    }
    let (outcome, peak) = read(large, &cases[0].1);
    assert_eq!(outcome, Ok(1));
    // 60,000 elements sharing one namespace: about 160 bytes each, not 8,000.
    assert!(peak < 60_000 * 400, "the namespace was copied: {peak} bytes");

    elements_count_against_the_limit_beyond_their_bytes();
}

/// (Called from the one test: see the module doc.)
fn elements_count_against_the_limit_beyond_their_bytes() {
    let limits = Limits { max_stanza_bytes: 64 * 1024, ..Limits::default() };
    // 60 KB of text in one body: well within the limit.
    let text = format!("<message><body>{}</body></message>", "x".repeat(60_000));
    assert_eq!(read(limits, text.as_bytes()).0, Ok(1));
    // 2,000 empty children are 8 KB on the wire but about 250 KB in memory: refused.
    let wide = repeat("<message>", "<a/>", 2_000, "</message>");
    assert!(wide.len() < 10_000);
    assert_eq!(read(limits, &wide).0, Err(StreamCondition::PolicyViolation));
    // 200 are fine.
    assert_eq!(read(limits, &repeat("<message>", "<a/>", 200, "</message>")).0, Ok(1));
}
