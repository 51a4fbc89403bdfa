#!/usr/bin/env python3
"""Writes accounts user0..user<N-1> straight into a peer server's SQLite store, in the format its own
registration would write, or into a XEP-0227 file for ejabberd to import, with SCRAM-SHA-1 stored keys (PBKDF2 at
--iterations). Much faster than the servers' tools: `prosodyctl register` takes ~0.1 s per account, one
`ejabberdctl register` call 1-2 s (it starts an Erlang node each time); this costs one PBKDF2 (~1.5 ms) per account
and a single transaction or file.

  prosody:  mod_storage_sql table "prosody", store "accounts": stored_key and server_key in hex, a UUID string
            as the salt, iteration_count as a number (mod_auth_internal_hashed).
  ejabberd: table "users" of the old (single host) SQL schema: password = base64 StoredKey, serverkey = base64
            ServerKey, salt = base64 of 16 random bytes, iterationcount (auth_password_format: scram,
            auth_scram_hash: sha).
  ejabberd-piefxis: a XEP-0227 file (DATABASE is its path) for `ejabberdctl import_piefxis` (ejabberd_piefxis,
            e.g. for Mnesia storage): one <user> with <scram-credentials mechanism='SCRAM-SHA-1'> each. ejabberd
            23.01 keeps SCRAM keys base64-encoded in its #scram record and its import base64-decodes the file's
            values once (its export encodes them once more), so the file holds base64 of the base64 text of
            stored key, server key and salt: the round trip of its own export_piefxis.

Usage: accounts.py {prosody|ejabberd|ejabberd-piefxis} DATABASE COUNT [--pattern 'user{}'] [--password secret]
                   [--iterations 4096] [--host localhost] [--schema FILE.sql (ejabberd: create tables first)]
"""
import argparse
import base64
import hashlib
import hmac
import os
import sqlite3
import uuid
from xml.sax.saxutils import escape


def scram_sha1(password: bytes, salt: bytes, iterations: int):
    salted = hashlib.pbkdf2_hmac("sha1", password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha1").digest()
    return hashlib.sha1(client_key).digest(), hmac.new(salted, b"Server Key", "sha1").digest()


def prosody(conn, users, password, iterations, host):
    conn.execute(
        'CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, '
        '"key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL)'
    )
    conn.execute('CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key")')
    rows = []
    for user in users:
        salt = str(uuid.uuid4())
        stored_key, server_key = scram_sha1(password, salt.encode(), iterations)
        for key, typ, value in (
            ("salt", "string", salt),
            ("iteration_count", "number", str(iterations)),
            ("stored_key", "string", stored_key.hex()),
            ("server_key", "string", server_key.hex()),
        ):
            rows.append((host, user, "accounts", key, typ, value))
    with conn:
        conn.execute('DELETE FROM "prosody" WHERE "host" = ? AND "store" = \'accounts\'', (host,))
        conn.executemany('INSERT INTO "prosody" VALUES (?, ?, ?, ?, ?, ?)', rows)


def ejabberd(conn, users, password, iterations, schema):
    has_users = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone()
    if not has_users:
        if not schema:
            raise SystemExit("no users table: give --schema /usr/share/ejabberd/sql/lite.sql")
        with open(schema) as f:
            conn.executescript(f.read())
    rows = []
    for user in users:
        salt = os.urandom(16)
        stored_key, server_key = scram_sha1(password, salt, iterations)
        b64 = lambda b: base64.b64encode(b).decode()
        rows.append((user, b64(stored_key), b64(server_key), b64(salt), iterations))
    with conn:
        conn.execute("DELETE FROM users")
        conn.executemany(
            "INSERT INTO users (username, password, serverkey, salt, iterationcount) VALUES (?, ?, ?, ?, ?)", rows
        )


def ejabberd_piefxis(path, users, password, iterations, host):
    b64 = lambda b: base64.b64encode(b).decode()
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", "<server-data xmlns='urn:xmpp:pie:0'>",
             f"<host jid='{escape(host)}'>"]
    for user in users:
        salt = os.urandom(16)
        stored_key, server_key = scram_sha1(password, salt, iterations)
        twice = lambda b: b64(b64(b).encode())
        lines.append(
            f"<user name='{escape(user)}'><scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>"
            f"<iter-count>{iterations}</iter-count><salt>{twice(salt)}</salt>"
            f"<server-key>{twice(server_key)}</server-key><stored-key>{twice(stored_key)}</stored-key>"
            "</scram-credentials></user>"
        )
    lines += ["</host>", "</server-data>", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", choices=["prosody", "ejabberd", "ejabberd-piefxis"])
    ap.add_argument("database")
    ap.add_argument("count", type=int)
    ap.add_argument("--pattern", default="user{}")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--iterations", type=int, default=4096)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--schema")
    a = ap.parse_args()
    users = [a.pattern.replace("{}", str(i)) for i in range(a.count)]
    if a.server == "ejabberd-piefxis":
        ejabberd_piefxis(a.database, users, a.password.encode(), a.iterations, a.host)
        return
    conn = sqlite3.connect(a.database)
    if a.server == "prosody":
        prosody(conn, users, a.password.encode(), a.iterations, a.host)
    else:
        ejabberd(conn, users, a.password.encode(), a.iterations, a.schema)
    conn.close()


if __name__ == "__main__":
    main()
