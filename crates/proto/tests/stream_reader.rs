//! The XML stream reader: bytes in, events out, for every split of the input, and the RFC 6120 stream error for
//! every kind of bad input.

use drupe_proto::error::StreamCondition;
use drupe_proto::ns;
use drupe_proto::xml::{Element, Limits, StreamEvent, StreamHeader, StreamReader};

const HEADER: &str = "<?xml version='1.0'?><stream:stream to='example.org' version='1.0' xml:lang='en' \
xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// A sample stream with multi-byte UTF-8, entities, CDATA, nesting, whitespace keepalives and a close.
fn sample() -> String {
    format!(
        "{HEADER}<message to='b@example.org' type='chat' id='m1'><body>h\u{e9}llo &amp; \u{1F600} \
<![CDATA[<raw>]]></body><x xmlns='urn:example'><y a='1'/></x></message> \n\
<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq><presence/></stream:stream>"
    )
}

fn read_all(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, StreamCondition> {
    let mut r = StreamReader::new(Limits::default());
    let mut out = Vec::new();
    for c in chunks {
        r.feed(c, &mut out).map_err(|e| e.condition)?;
    }
    Ok(out)
}

fn expected() -> Vec<StreamEvent> {
    let message = Element::new("message", ns::CLIENT)
        .with_attr("to", "b@example.org")
        .with_attr("type", "chat")
        .with_attr("id", "m1")
        .with_child(Element::new("body", ns::CLIENT).with_text("h\u{e9}llo & \u{1F600} <raw>"))
        .with_child(Element::new("x", "urn:example").with_child(Element::new("y", "urn:example").with_attr("a", "1")));
    let iq = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", "p")
        .with_child(Element::new("ping", ns::PING));
    vec![
        StreamEvent::Open(StreamHeader {
            to: Some("example.org".into()),
            from: None,
            version: Some("1.0".into()),
            lang: Some("en".into()),
            content_ns: Some("jabber:client".into()),
        }),
        StreamEvent::Stanza(message),
        StreamEvent::Whitespace,
        StreamEvent::Stanza(iq),
        StreamEvent::Stanza(Element::new("presence", ns::CLIENT)),
        StreamEvent::Close,
    ]
}

/// Adjacent whitespace events may be merged or split differently depending on where the input is cut; compare
/// with runs of whitespace collapsed.
fn normalize(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let mut out: Vec<StreamEvent> = Vec::new();
    for e in events {
        if e == StreamEvent::Whitespace && out.last() == Some(&StreamEvent::Whitespace) {
            continue;
        }
        out.push(e);
    }
    out
}

#[test]
fn whole_input_gives_the_expected_events() {
    let s = sample();
    assert_eq!(normalize(read_all(&[s.as_bytes()]).unwrap()), expected());
}

#[test]
fn every_split_point_gives_the_same_events() {
    let s = sample();
    let b = s.as_bytes();
    for i in 0..=b.len() {
        let got = read_all(&[&b[..i], &b[i..]]).unwrap_or_else(|c| panic!("split at {i}: {c:?}"));
        assert_eq!(normalize(got), expected(), "split at {i}");
    }
}

#[test]
fn byte_by_byte_input_gives_the_same_events() {
    let s = sample();
    let chunks: Vec<&[u8]> = s.as_bytes().chunks(1).collect();
    assert_eq!(normalize(read_all(&chunks).unwrap()), expected());
}

#[test]
fn truncated_stanza_yields_nothing_and_stays_buffered() {
    let s = format!("{HEADER}<message to='a@example.org'><body>partial");
    let mut r = StreamReader::new(Limits::default());
    let mut out = Vec::new();
    r.feed(s.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 1, "only the stream header: {out:?}");
    assert!(r.in_stanza());
    r.feed(b" end</body></message>", &mut out).unwrap();
    assert!(matches!(&out[1], StreamEvent::Stanza(m) if m.child("body", ns::CLIENT).unwrap().text() == "partial end"));
    assert!(!r.in_stanza());
}

#[test]
fn next_stops_after_each_event_leaving_the_rest_unread() {
    // After <starttls/> the remaining bytes must not be parsed by the old stream (RFC 6120 §5.4.3.3).
    let s = format!("{HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><iq type='get' id='x'/>");
    let mut r = StreamReader::new(Limits::default());
    let mut data = s.as_bytes();
    assert!(matches!(r.next(&mut data).unwrap(), Some(StreamEvent::Open(_))));
    assert!(matches!(r.next(&mut data).unwrap(), Some(StreamEvent::Stanza(e)) if e.name() == "starttls"));
    assert_eq!(data, b"<iq type='get' id='x'/>");
    // A restarted stream (after SASL success) parses a new header from the remaining bytes.
    r.reset();
    let mut again = format!("{HEADER}<presence/>").into_bytes();
    let mut data = &again[..];
    assert!(matches!(r.next(&mut data).unwrap(), Some(StreamEvent::Open(_))));
    assert!(matches!(r.next(&mut data).unwrap(), Some(StreamEvent::Stanza(e)) if e.name() == "presence"));
    again.clear();
}

fn error_for(input: &str, limits: Limits) -> StreamCondition {
    let mut r = StreamReader::new(limits);
    let mut out = Vec::new();
    match r.feed(input.as_bytes(), &mut out) {
        Err(e) => e.condition,
        Ok(()) => panic!("accepted {input:?}: {out:?}"),
    }
}

#[test]
fn hostile_input_gets_the_right_stream_error() {
    let l = Limits::default();
    let cases: &[(&str, StreamCondition)] = &[
        ("<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]><stream:stream/>", StreamCondition::RestrictedXml),
        (&format!("{HEADER}<message><body>&xxe;</body></message>"), StreamCondition::RestrictedXml),
        (&format!("{HEADER}<?php evil?>"), StreamCondition::RestrictedXml),
        (&format!("{HEADER}<!-- comment -->"), StreamCondition::RestrictedXml),
        (&format!("{HEADER}<message><body>x</bdoy></message>"), StreamCondition::NotWellFormed),
        (&format!("{HEADER}<message a='1' a='2'/>"), StreamCondition::NotWellFormed),
        (&format!("{HEADER}<foo:bar/>"), StreamCondition::NotWellFormed),
        (&format!("{HEADER}text between stanzas<presence/>"), StreamCondition::NotWellFormed),
        ("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>", StreamCondition::InvalidNamespace),
        ("<html xmlns='http://www.w3.org/1999/xhtml'>", StreamCondition::InvalidNamespace),
        ("<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>", StreamCondition::NotWellFormed),
    ];
    for (input, want) in cases {
        assert_eq!(error_for(input, l), *want, "{input}");
    }
    let mut bad_utf8 = format!("{HEADER}<message><body>").into_bytes();
    bad_utf8.extend_from_slice(&[0xff, 0xfe]);
    bad_utf8.extend_from_slice(b"</body></message>");
    let mut r = StreamReader::new(l);
    assert_eq!(r.feed(&bad_utf8, &mut Vec::new()).unwrap_err().condition, StreamCondition::NotWellFormed);
}

#[test]
fn limits_are_enforced_as_policy_violation() {
    let limits = Limits { max_stanza_bytes: 2048, max_depth: 4, max_attributes: 3 };
    let big = format!("{HEADER}<message><body>{}</body></message>", "a".repeat(4000));
    assert_eq!(error_for(&big, limits), StreamCondition::PolicyViolation);
    let deep = format!("{HEADER}<a><b><c><d><e/></d></c></b></a>");
    assert_eq!(error_for(&deep, limits), StreamCondition::PolicyViolation);
    let attrs = format!("{HEADER}<a p='1' q='2' r='3' s='4'/>");
    assert_eq!(error_for(&attrs, limits), StreamCondition::PolicyViolation);
    let long_attr = format!("{HEADER}<a p='{}'/>", "x".repeat(3000));
    assert_eq!(error_for(&long_attr, limits), StreamCondition::PolicyViolation);
    // Many small stanzas add up to more than the limit without tripping it: the count is per stanza.
    let many = format!("{HEADER}{}", "<presence/>".repeat(1000));
    let mut r = StreamReader::new(limits);
    let mut out = Vec::new();
    r.feed(many.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 1001);
    // The limit holds however the oversize stanza is split.
    let mut r = StreamReader::new(limits);
    let result = big.as_bytes().chunks(7).try_for_each(|c| r.feed(c, &mut Vec::new()));
    assert_eq!(result.unwrap_err().condition, StreamCondition::PolicyViolation);
}

#[test]
fn stanzas_at_exactly_the_limits_pass() {
    let limits = Limits { max_stanza_bytes: 4096, max_depth: 3, max_attributes: 2 };
    let ok = format!("{HEADER}<a p='1' q='2'><b><c/></b></a>");
    let mut r = StreamReader::new(limits);
    let mut out = Vec::new();
    r.feed(ok.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 2);
}

#[test]
fn input_after_close_is_ignored() {
    let s = format!("{HEADER}</stream:stream><garbage");
    let out = read_all(&[s.as_bytes()]).unwrap();
    assert_eq!(out.last(), Some(&StreamEvent::Close));
}

#[test]
fn serialization_round_trips_through_the_reader() {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("to", "a'b\"c@example.org")
        .with_attr("xml:lang", "de")
        .with_child(Element::new("body", ns::CLIENT).with_text("<&>\"' \r\n\t x"))
        .with_child(Element::new("x", "urn:q").with_child(Element::new("y", "urn:r")));
    let mut bytes = HEADER.as_bytes().to_vec();
    el.write_to(&mut bytes, ns::CLIENT);
    let events = read_all(&[&bytes]).unwrap();
    assert_eq!(events[1], StreamEvent::Stanza(el));
}

#[test]
fn stream_errors_serialize_with_the_stream_prefix() {
    let e = drupe_proto::error::StreamError::new(StreamCondition::HostUnknown).with_text("a<b");
    let s = String::from_utf8(e.to_bytes()).unwrap();
    assert_eq!(
        s,
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>a&lt;b</text></stream:error>"
    );
    let features = Element::new("features", ns::STREAMS).with_child(Element::new("bind", ns::BIND));
    let mut out = Vec::new();
    features.write_to(&mut out, ns::CLIENT);
    assert_eq!(out, b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
}

/// Deterministic xorshift, so that a failure reproduces.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutated_input_never_panics_and_ends_in_events_or_one_error() {
    let base = sample().into_bytes();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..3000 {
        let mut input = base.clone();
        for _ in 0..(xorshift(&mut seed) % 8 + 1) {
            let i = (xorshift(&mut seed) as usize) % input.len();
            match xorshift(&mut seed) % 3 {
                0 => input[i] = xorshift(&mut seed) as u8,
                1 => {
                    input.remove(i);
                }
                _ => input.insert(i, b"<>&'\"/!?="[(xorshift(&mut seed) % 9) as usize]),
            }
        }
        let limits = Limits { max_stanza_bytes: 1024, max_depth: 3, max_attributes: 4 };
        let mut r = StreamReader::new(limits);
        let chunk = (xorshift(&mut seed) % 17 + 1) as usize;
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            if r.feed(c, &mut out).is_err() {
                break;
            }
        }
    }
}

#[test]
fn element_parse_round_trips_one_stored_stanza() {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("to", "a@b")
        .with_child(Element::new("body", ns::CLIENT).with_text("x & y"))
        .with_child(Element::new("delay", ns::DELAY).with_attr("stamp", "2002-09-10T23:08:25.000Z"));
    assert_eq!(Element::parse(&el.to_xml()), Some(el));
    assert_eq!(Element::parse("<a/><b/>"), None);
    assert_eq!(Element::parse("<a>"), None);
    assert_eq!(Element::parse("not xml"), None);
}

#[test]
fn the_declared_content_namespace_is_reported() {
    let header = |h: &str| {
        let mut r = StreamReader::new(Limits::default());
        let mut out = Vec::new();
        // Byte by byte, so that the header is assembled across reads.
        for b in h.as_bytes().chunks(1) {
            r.feed(b, &mut out).unwrap();
        }
        match out.into_iter().next() {
            Some(StreamEvent::Open(h)) => h.content_ns,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(header(HEADER).as_deref(), Some("jabber:client"));
    let server = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns = \"jabber:server\">";
    assert_eq!(header(server).as_deref(), Some("jabber:server"));
    assert_eq!(header("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"), None);
}

#[test]
fn addressable_serialization_splices_the_recipient() {
    let el = Element::new("message", ns::CLIENT)
        .with_attr("from", "room@muc/a'b")
        .with_attr("to", "ignored@x")
        .with_attr("type", "groupchat")
        .with_child(Element::new("body", ns::CLIENT).with_text("1 > 0 / 2"));
    let (head, tail) = el.write_addressable(ns::CLIENT);
    let mut out = head.clone();
    out.extend_from_slice(b" to='bob@x/r'");
    out.extend_from_slice(&tail);
    let mut expected = Vec::new();
    el.clone().with_attr("to", "bob@x/r").write_to(&mut expected, ns::CLIENT);
    let mut stream = HEADER.as_bytes().to_vec();
    stream.extend_from_slice(&out);
    assert_eq!(read_all(&[&stream]).unwrap()[1], StreamEvent::Stanza(el.with_attr("to", "bob@x/r")));
    // An empty element splits before its `/>`.
    let (head, tail) = Element::new("presence", ns::CLIENT).with_attr("from", "a/b").write_addressable(ns::CLIENT);
    assert_eq!((head.as_slice(), tail.as_slice()), (&b"<presence from='a/b'"[..], &b"/>"[..]));
    assert!(!expected.is_empty());
}

#[test]
fn prefixes_resolve_within_their_scope() {
    let input = format!(
        "{HEADER}<c:message xmlns:c='jabber:client' xmlns:e='urn:example' to='a@b' e:hidden='1' xml:lang='de'>\
<e:x><y xmlns='urn:other'><z/></y><w/></e:x><body xmlns=''/></c:message><presence/>"
    );
    let events = read_all(&[input.as_bytes()]).unwrap();
    let message = Element::new("message", ns::CLIENT)
        .with_attr("to", "a@b")
        .with_attr("xml:lang", "de")
        .with_child(
            Element::new("x", "urn:example")
                .with_child(Element::new("y", "urn:other").with_child(Element::new("z", "urn:other")))
                .with_child(Element::new("w", ns::CLIENT)),
        )
        .with_child(Element::new("body", ""));
    assert_eq!(events[1..], [StreamEvent::Stanza(message), StreamEvent::Stanza(Element::new("presence", ns::CLIENT))]);
    // The stanza's declarations went out of scope with it.
    let after = format!("{HEADER}<c:presence xmlns:c='jabber:client'/><c:presence/>");
    assert_eq!(error_for(&after, Limits::default()), StreamCondition::NotWellFormed);
}

#[test]
fn namespace_errors_are_not_well_formed() {
    for bad in [
        "<p:message/>",
        "<message xmlns:p='urn:a' xmlns:q='urn:a' p:x='1' q:x='2'/>",
        "<message a='1' a='2'/>",
        "<message xmlns:p='urn:a' xmlns:p='urn:b'/>",
        "<message xmlns='urn:a' xmlns='urn:b'/>",
        "<message><x q:y='1'/></message>",
    ] {
        let input = format!("{HEADER}{bad}");
        assert_eq!(error_for(&input, Limits::default()), StreamCondition::NotWellFormed, "{bad}");
        // However it is split.
        let mut r = StreamReader::new(Limits::default());
        let result = input.as_bytes().chunks(3).try_for_each(|c| r.feed(c, &mut Vec::new()));
        assert_eq!(result.unwrap_err().condition, StreamCondition::NotWellFormed, "{bad}");
    }
    // A stream root in a namespace declared under another prefix is still the stream root.
    let other_prefix = "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><presence/>";
    assert!(matches!(
        read_all(&[other_prefix.as_bytes()]).unwrap()[..],
        [StreamEvent::Open(_), StreamEvent::Stanza(_)]
    ));
}

/// Feeds `input` in chunks of `size`, releasing the reader's buffers after each, as an idle session does.
fn read_releasing(input: &[u8], size: usize) -> (Result<Vec<StreamEvent>, StreamCondition>, usize) {
    let mut r = StreamReader::new(Limits::default());
    let mut out = Vec::new();
    let mut released = 0;
    for c in input.chunks(size) {
        if let Err(e) = r.feed(c, &mut out) {
            return (Err(e.condition), released);
        }
        r.release_buffers();
        released += usize::from(!r.holds_parser());
    }
    (Ok(out), released)
}

#[test]
fn releasing_the_parser_between_reads_loses_nothing() {
    // Keepalives, a stanza split inside its name, text ending a read, `/>`, a character reference, and `<`
    // closing a text: wherever a read ends, the events are those of the unsplit input.
    let input = format!(
        "{HEADER} <message to='a@b'><body>x &#x20AC; y</body></message>\n\n<presence/> <iq type='get' id='1'>\
<ping xmlns='urn:xmpp:ping'/></iq> \t<message><body>\u{e9}</body></message></stream:stream>"
    );
    let whole = normalize(read_all(&[input.as_bytes()]).unwrap());
    for size in 1..=input.len() {
        let (events, released) = read_releasing(input.as_bytes(), size);
        assert_eq!(normalize(events.unwrap()), whole, "chunks of {size}");
        // Byte by byte, the parser was dropped at least once per stanza boundary.
        assert!(size > 1 || released >= 4, "released {released} times");
    }
    // Split at every point, too.
    for at in 0..input.len() {
        let mut r = StreamReader::new(Limits::default());
        let mut out = Vec::new();
        r.feed(&input.as_bytes()[..at], &mut out).unwrap();
        r.release_buffers();
        r.feed(&input.as_bytes()[at..], &mut out).unwrap();
        assert_eq!(normalize(out), whole, "split at {at}");
    }
}

#[test]
fn an_idle_stream_holds_no_parser_and_a_partial_one_does() {
    let mut r = StreamReader::new(Limits::default());
    let mut out = Vec::new();
    r.feed(format!("{HEADER}<presence/>").as_bytes(), &mut out).unwrap();
    r.release_buffers();
    assert!(!r.holds_parser());
    // A whitespace keepalive is accounted for at once.
    r.feed(b" ", &mut out).unwrap();
    r.release_buffers();
    assert!(!r.holds_parser());
    for partial in [&b"<pres"[..], b" <", b"<presence", b"<presence to='a'", b"<message><body>hi"] {
        r.feed(partial, &mut out).unwrap();
        r.release_buffers();
        assert!(r.holds_parser(), "{}", String::from_utf8_lossy(partial));
        // Finish whatever was started, so the next case starts between stanzas.
        let rest: &[u8] = match partial {
            b"<pres" | b" <" | b"<presence" => b"ence/>",
            b"<presence to='a'" => b"/>",
            _ => b"</body></message>",
        };
        let rest = if partial == b" <" { &b"presence/>"[..] } else { rest };
        let before = out.len();
        r.feed(rest, &mut out).unwrap();
        assert!(matches!(out[before..].last(), Some(StreamEvent::Stanza(_))), "{}", String::from_utf8_lossy(partial));
        r.release_buffers();
        assert!(!r.holds_parser());
    }
    // Whatever the markup looks like, a complete stanza leaves nothing unaccounted for.
    for complete in [
        &b"<presence />"[..],
        b"<message\n\tto = \"a@b\" type='chat' xml:lang='en'><body>x &amp; &#x20AC; <![CDATA[<y>]]></body></message>",
        b"<iq type='get' id='1'><query xmlns='jabber:iq:roster' ver=''/></iq>\n",
        b"<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='4'/>",
        b"<sm:r xmlns:sm='urn:xmpp:sm:3'/> \r\n ",
    ] {
        r.feed(complete, &mut out).unwrap();
        r.release_buffers();
        assert!(!r.holds_parser(), "{}", String::from_utf8_lossy(complete));
    }
    // The stream is still the one opened: its end closes it.
    r.feed(b"</stream:stream>", &mut out).unwrap();
    assert_eq!(out.last(), Some(&StreamEvent::Close));
}

#[test]
fn streams_on_one_thread_take_turns_with_released_parsers() {
    // Parsers released between stanzas go to the thread's spares and come back to any stream with the same root
    // written the same way (and the same limits): interleaved streams read exactly what they read alone, and each
    // one's end tag still closes its own root.
    let other_root = "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client' version='1.0'>";
    let small = Limits { max_stanza_bytes: 4096, ..Limits::default() };
    let streams: [(&str, Limits, String); 4] = [
        ("a", Limits::default(), format!("{HEADER}<message to='a@b'><body>one &amp; two</body></message>")),
        ("b", Limits::default(), format!("{HEADER}<presence><status>\u{e9}t\u{e9}</status></presence>")),
        ("c", Limits::default(), format!("{other_root}<iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>")),
        ("d", small, format!("{HEADER}<message><body>{}</body></message>", "x".repeat(3000))),
    ];
    let tail = |name: &str| {
        let close = if name == "c" { "</s:stream>" } else { "</stream:stream>" };
        format!(" <message id='{name}2'><body>again</body></message><presence type='unavailable'/>{close}")
    };
    let mut alone = Vec::new();
    for (name, limits, head) in &streams {
        let mut r = StreamReader::new(*limits);
        let mut out = Vec::new();
        r.feed(head.as_bytes(), &mut out).unwrap();
        r.feed(tail(name).as_bytes(), &mut out).unwrap();
        alone.push(normalize(out));
    }
    let mut readers: Vec<_> = streams.iter().map(|(_, limits, _)| (StreamReader::new(*limits), Vec::new())).collect();
    for ((name, _, head), (r, out)) in streams.iter().zip(readers.iter_mut()) {
        r.feed(head.as_bytes(), out).unwrap();
        r.release_buffers();
        assert!(!r.holds_parser(), "{name}");
    }
    // Round-robin over the tails, a few bytes at a time, releasing after every read.
    let tails: Vec<String> = streams.iter().map(|(name, _, _)| tail(name)).collect();
    for at in (0..tails.iter().map(String::len).max().unwrap()).step_by(7) {
        for ((r, out), tail) in readers.iter_mut().zip(&tails) {
            if at < tail.len() {
                r.feed(&tail.as_bytes()[at..(at + 7).min(tail.len())], out).unwrap();
                r.release_buffers();
            }
        }
    }
    for (((name, _, _), (_, out)), alone) in streams.iter().zip(readers).zip(alone) {
        assert_eq!(out.last(), Some(&StreamEvent::Close), "{name}");
        assert_eq!(normalize(out), alone, "{name}");
    }
}
