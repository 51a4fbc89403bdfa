#!/usr/bin/env python3
"""Writes accounts user0..user<N-1> straight into a peer server's SQLite store, in the format its own
registration would write, with SCRAM-SHA-1 stored keys (PBKDF2 at --iterations). Much faster than the servers'
tools: `prosodyctl register` takes ~0.1 s per account, ejabberd's register command ~20 ms (one fsync'd commit
each); this costs one PBKDF2 (~1.5 ms) per account and a single transaction.

  prosody:  mod_storage_sql table "prosody", store "accounts": stored_key and server_key in hex, a UUID string
            as the salt, iteration_count as a number (mod_auth_internal_hashed).
  ejabberd: table "users" of the old (single host) SQL schema: password = base64 StoredKey, serverkey = base64
            ServerKey, salt = base64 of 16 random bytes, iterationcount (auth_password_format: scram,
            auth_scram_hash: sha).

Usage: accounts.py {prosody|ejabberd} DATABASE COUNT [--pattern 'user{}'] [--password secret]
                   [--iterations 4096] [--host localhost] [--schema FILE.sql (ejabberd: create tables first)]
"""
import argparse
import base64
import hashlib
import hmac
import os
import sqlite3
import uuid


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", choices=["prosody", "ejabberd"])
    ap.add_argument("database")
    ap.add_argument("count", type=int)
    ap.add_argument("--pattern", default="user{}")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--iterations", type=int, default=4096)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--schema")
    a = ap.parse_args()
    users = [a.pattern.replace("{}", str(i)) for i in range(a.count)]
    conn = sqlite3.connect(a.database)
    if a.server == "prosody":
        prosody(conn, users, a.password.encode(), a.iterations, a.host)
    else:
        ejabberd(conn, users, a.password.encode(), a.iterations, a.schema)
    conn.close()


if __name__ == "__main__":
    main()
