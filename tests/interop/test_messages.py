"""1:1 chat routing, errors for unknown recipients, offline storage with XEP-0203 delay."""

import datetime

from xmpp_client import NS_CLIENT, NS_DELAY, show, stanza_error, tag


def body(el) -> str | None:
    return el.findtext(f"{{{NS_CLIENT}}}body")


async def test_chat_both_directions(connect):
    alice = await connect("alice")
    bob = await connect("bob")

    alice.send_message("bob@localhost", "hello bob")
    m = await bob.expect_message(frm="alice@localhost", body="hello bob")
    assert m.get("from") == alice.full, f"from is the sender's full JID: {show(m)}"
    assert m.get("type") == "chat", show(m)

    bob.send_message(alice.full, "hello alice")
    m = await alice.expect_message(frm="bob@localhost", body="hello alice")
    assert m.get("from") == bob.full, show(m)

    # Many in a row arrive in order.
    for i in range(20):
        alice.send_message(bob.full, f"n{i}")
    for i in range(20):
        m = await bob.expect(lambda el: tag(el) == "message" and body(el) is not None
                             and body(el).startswith("n"), "numbered message")
        assert body(m) == f"n{i}", f"out of order: expected n{i}, got {show(m)}"


async def test_message_to_bare_jid_reaches_all_resources(connect):
    alice = await connect("alice")
    bob1 = await connect("bob", resource="one")
    bob2 = await connect("bob", resource="two")
    alice.send_message("bob@localhost", "to all of you")
    # RFC 6121 8.5.2.1.1: a chat message to the bare JID goes to all available resources
    # with non-negative priority (or to the "most available" one: at least one gets it).
    got = []
    for b in (bob1, bob2):
        try:
            got.append(await b.expect_message(frm=alice.full, body="to all of you", timeout=3))
        except AssertionError:
            pass
    assert got, "neither of bob's resources received the message"


async def test_message_to_nonexistent_user_is_service_unavailable(connect):
    alice = await connect("alice")
    alice.send_raw("<message to='nobody@localhost' type='chat' id='m1'><body>anyone?</body></message>")
    err = await alice.expect(lambda el: tag(el) == "message" and el.get("id") == "m1",
                             "error reply to the message")
    assert err.get("type") == "error", show(err)
    assert err.get("from") == "nobody@localhost", show(err)
    assert stanza_error(err)[1] == "service-unavailable", show(err)


async def test_iq_to_nonexistent_user_is_service_unavailable(connect):
    alice = await connect("alice")
    reply = await alice.iq("<iq type='get' to='nobody@localhost'><query xmlns='jabber:iq:version'/></iq>")
    assert reply.get("type") == "error", show(reply)
    assert stanza_error(reply)[1] == "service-unavailable", show(reply)


async def test_offline_messages_survive_restart_and_carry_delay(server, connect):
    alice = await connect("alice")
    for i in (1, 2, 3):
        alice.send_message("bob@localhost", f"offline {i}")
    # A round trip to the server after the messages: they have been handled when it returns.
    pong = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)
    await alice.close()

    server.restart()

    before = datetime.datetime.now(datetime.timezone.utc)
    bob = await connect("bob")
    got = [await bob.expect_message(frm="alice@localhost") for _ in range(3)]
    assert [body(m) for m in got] == ["offline 1", "offline 2", "offline 3"]
    for m in got:
        delay = m.find(f"{{{NS_DELAY}}}delay")
        assert delay is not None, f"offline message without XEP-0203 <delay/>: {show(m)}"
        assert delay.get("from") in (None, "localhost"), show(delay)
        stamp = delay.get("stamp")
        assert stamp and stamp.endswith("Z"), f"XEP-0082 UTC stamp expected: {show(delay)}"
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert when <= before + datetime.timedelta(seconds=1), f"stamp in the future: {stamp}"
        assert when > before - datetime.timedelta(minutes=5), f"stamp too old: {stamp}"
    await bob.expect_none(lambda el: tag(el) == "message", "fourth message")
    await bob.close()

    # Delivered once: a new session does not get them again.
    bob = await connect("bob", resource="again")
    await bob.expect_none(lambda el: tag(el) == "message", "message delivered twice", within=2)


async def test_offline_messages_wait_for_initial_presence(connect):
    """Offline messages are delivered on initial presence, not to a session that has not sent any."""
    alice = await connect("alice")
    alice.send_message("bob@localhost", "while you were out")
    pong = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)
    bob = await connect("bob", presence=False)
    await bob.expect_none(lambda el: tag(el) == "message", "message before initial presence")
    bob.send_raw("<presence/>")
    m = await bob.expect_message(frm="alice@localhost", body="while you were out")
    assert m.find(f"{{{NS_DELAY}}}delay") is not None, show(m)


async def test_offline_storage_limit_bounces_the_excess(make_server, connect):
    srv = make_server({"limits": {"max_offline_messages": 2}})
    alice = await connect("alice", srv=srv)
    for i in (1, 2, 3):
        alice.send_raw(f"<message to='bob@localhost' type='chat' id='o{i}'><body>stored {i}</body></message>")
    # XEP-0160: when offline storage is full the server returns an error instead of dropping silently.
    err = await alice.expect(lambda el: tag(el) == "message" and el.get("type") == "error", "bounce of o3")
    assert err.get("id") == "o3", show(err)
    assert stanza_error(err)[1] == "service-unavailable", show(err)
    bob = await connect("bob", srv=srv)
    got = [await bob.expect_message(frm="alice@localhost") for _ in range(2)]
    assert [body(m) for m in got] == ["stored 1", "stored 2"]
    await bob.expect_none(lambda el: tag(el) == "message", "third stored message")


async def test_headline_and_error_messages_are_not_stored(connect):
    alice = await connect("alice")
    alice.send_raw("<message to='bob@localhost' type='headline'><body>news</body></message>")
    alice.send_raw("<message to='bob@localhost' type='normal'><body>normal one</body></message>")
    pong = await alice.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)
    bob = await connect("bob")
    m = await bob.expect_message(frm="alice@localhost")
    assert body(m) == "normal one", f"XEP-0160 2: headline messages are not stored: {show(m)}"
    await bob.expect_none(lambda el: tag(el) == "message", "stored headline")


async def test_negative_priority_resource_gets_no_bare_jid_messages(connect):
    alice = await connect("alice")
    bob = await connect("bob", presence=False)
    bob.send_raw("<presence><priority>-1</priority></presence>")
    # Let the presence take effect before alice sends.
    pong = await bob.iq("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert pong.get("type") == "result", show(pong)
    alice.send_message("bob@localhost", "for a real client")
    # RFC 6121 8.5.2.1.1 / 8.5.2.2: a negative-priority resource never gets bare-JID messages;
    # with no other resource the message is stored offline.
    await bob.expect_none(lambda el: tag(el) == "message", "bare-JID message at priority -1", within=1.5)
    await bob.close()
    bob = await connect("bob", resource="normal")
    m = await bob.expect_message(frm="alice@localhost", body="for a real client")
    assert m.find(f"{{{NS_DELAY}}}delay") is not None, show(m)
