"""XEP-0313 Message Archive Management with slixmpp's xep_0313 plugin and XEP-0059 paging:
120 messages exchanged both ways, paged forward and backward in pages of 50."""

from __future__ import annotations

from slixmpp import JID

from xmpp_client import login_with_plugins

PAGE = 50


def bodies(page) -> list[str]:
    return [m["mam_result"]["forwarded"]["stanza"]["body"] for m in page["mam"]["results"]]


async def pages(client, with_jid: str, reverse: bool) -> list[list[str]]:
    mam = client.xmpp.plugin["xep_0313"]
    got = []
    iterator = mam.retrieve(with_jid=JID(with_jid), iterator=True, reverse=reverse,
                            rsm={"max": PAGE})
    async for page in iterator:
        b = bodies(page)
        if not b:
            break
        got.append(b)
        assert len(got) <= 10, "paging does not end"
    return got


async def exchange(alice, bob) -> list[str]:
    """60 messages alice -> bob, then 60 bob -> alice; returns the bodies in archive order."""
    expected = []
    for sender, to, name in ((alice, bob, "a"), (bob, alice, "b")):
        for i in range(60):
            body = f"{name}{i:03d}"
            sender.send_message(to.bare, body)
            expected.append(body)
        # Stanzas of one session are handled in order: after the pong all are archived. The ping
        # goes through slixmpp's send queue (send_raw would overtake the queued messages).
        await sender.xmpp.plugin["xep_0199"].send_ping(JID("localhost"), timeout=10)
    await alice.expect_message(body="b059")
    await bob.expect_message(body="a059")
    return expected


async def test_paging_forward_over_120_messages(new_client):
    alice = await login_with_plugins(new_client, "alice", ["xep_0313"])
    bob = await login_with_plugins(new_client, "bob", ["xep_0313"])
    expected = await exchange(alice, bob)
    for owner, peer in ((alice, bob), (bob, alice)):
        got = await pages(owner, peer.bare, reverse=False)
        assert [len(p) for p in got] == [50, 50, 20], f"{owner.jid}: page sizes"
        assert [b for p in got for b in p] == expected, f"{owner.jid}: every message once, in order"


async def test_paging_backward_over_120_messages(new_client):
    alice = await login_with_plugins(new_client, "alice", ["xep_0313"])
    bob = await login_with_plugins(new_client, "bob", ["xep_0313"])
    expected = await exchange(alice, bob)
    got = await pages(alice, bob.bare, reverse=True)
    assert [len(p) for p in got] == [50, 50, 20], "page sizes, newest page first"
    assert got[0] == expected[70:], "the last page first, chronological inside"
    assert got[1] == expected[20:70]
    assert got[2] == expected[:20]


async def test_archive_of_a_message_is_found_by_with(new_client, connect):
    alice = await login_with_plugins(new_client, "alice", ["xep_0313"])
    bob = await connect("bob")
    carol = await connect("carol")
    bob.send_message(alice.bare, "from bob")
    carol.send_message(alice.bare, "from carol")
    await alice.expect_message(body="from bob")
    await alice.expect_message(body="from carol")
    for c in (bob, carol):
        await c.xmpp.plugin["xep_0199"].send_ping(JID("localhost"), timeout=10)
    assert await pages(alice, carol.bare, reverse=False) == [["from carol"]]
    assert await pages(alice, bob.bare, reverse=False) == [["from bob"]]
