"""A journal holding rows the database cannot take (left by an older gateway, or damaged) never stops a start.

The gateway is stopped, and its journal is given what an older version could
write: a usage record whose count is past SQLite's 64-bit integers beside a good
one, an unreadable line, then another good entry. The next start writes the good
records in, sets the rest aside in `rejected_records` with a log line, and serves.
"""

from __future__ import annotations

import operator
import sqlite3

import httpx
import orjson

from tests.conftest import fake_config
from tollgate.domain.usage import UsageRecord
from tollgate.ledger.sql import USAGE_FIELDS

row_of = operator.attrgetter(*USAGE_FIELDS)


def usage_row(request_id: str, tokens: int) -> tuple:
    return row_of(UsageRecord(request_id, 1_764_000_000.0, "acct-old", "key-old", None, "fake-chat", None, None,
                              "chat", 200, tokens, 1, 0, 1.0, False, False))


def test_a_start_sets_aside_what_the_database_cannot_take_and_serves(tmp_path, gateway_factory, fake_upstream):
    config = fake_config(fake_upstream.url)
    config["ledger"] = {"usage_retention_days": 0}  # the old records stay raw (a year old, past the default)
    gw = gateway_factory(config)
    key = gw.key()
    headers = {"Authorization": f"Bearer {key['sk']}"}
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi [[reply:3]]"}]}
    assert httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=30).status_code == 200
    assert gw.stop() in (0, -15)

    db = tmp_path / "tollgate.db"
    conn = sqlite3.connect(db)
    seq = int(conn.execute("SELECT value FROM meta WHERE key = 'ledger_seq'").fetchone()[0])
    conn.close()
    journal = tmp_path / "tollgate.db-ledger.log"
    assert not journal.exists()
    lines = [
        orjson.dumps((seq + 1, [[usage_row("too-big", 2**63), usage_row("good-1", 5)], [], [], []])),
        b'[' + str(seq + 2).encode() + b', [[["not', b"}}} a damaged line {{{",
        orjson.dumps((seq + 4, [[usage_row("good-2", 6)], [], [], []])),
    ]
    journal.write_bytes(b"\n".join(lines) + b"\n")

    gw.start("/health")
    log = gw.log.read_text()
    assert "set aside" in log and "rejected_records" in log
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kept = {r[0]: r[1] for r in conn.execute("SELECT request_id, input_tokens FROM usage_records"
                                                  " WHERE account_id = 'acct-old'")}
        rejected = conn.execute("SELECT kind, reason, payload FROM rejected_records ORDER BY id").fetchall()
    finally:
        conn.close()
    assert kept == {"good-1": 5, "good-2": 6}
    kinds = sorted(kind for kind, _, _ in rejected)
    assert kinds == ["journal_line", "journal_line", "usage_records"], rejected
    assert any("too-big" in payload and str(2**63) in payload for _, _, payload in rejected)

    # The gateway serves and its ledger adds up.
    assert httpx.post(gw.url + "/v1/chat/completions", json=body, headers=headers, timeout=30).status_code == 200
    usage = httpx.get(gw.url + "/v1/usage", headers=headers, timeout=30).json()
    total = gw.manage("GET", f"/api/usage/{key['key_id']}", key["mk"]).json()["data"]["total"]
    assert total["requests"] == 2 and usage["budget"]["spent_nanos"] == total["spentNanos"] > 0
    assert usage["budget"]["reserved"] == 0
