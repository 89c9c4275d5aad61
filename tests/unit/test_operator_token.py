"""The operator token: strength at start-up, salted scrypt at rest, back-off per address, legacy hashes."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from tollgate.accounts.auth import AdminAuth
from tollgate.accounts.backoff import FailureBackoff
from tollgate.config import ConfigError, load_config
from tollgate.domain.refusals import KeyRefused, TooManyFailures
from tollgate.domain.secrets import (
    MAKE_TOKEN,
    hash_operator_token,
    hash_secret,
    is_legacy_token_hash,
    operator_token_problem,
    verify_operator_token,
)
from tollgate.serve.setup import ADMIN_HASH_KEY, LEGACY_ADMIN_HASH_KEY, operator_token
from tollgate.store.sqlite import SQLiteStore

WEAK = [
    "",
    "short",
    "x" * 31,
    "a" * 40,
    "ab" * 20,
    "password" * 4,
    "0123456789abcdef" * 2,
    "abcdefghijklmnopqrstuvwxyz012345",
    "bench-operator-token-0000000000000",
    " " + secrets.token_urlsafe(32),
    secrets.token_urlsafe(32) + "\n",
    secrets.token_urlsafe(32) + "é",
]


def strong() -> str:
    return "tga_" + secrets.token_urlsafe(32)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- strength -----------------------------------------------------------------------------

@pytest.mark.parametrize("token", WEAK, ids=range(len(WEAK)))
def test_weak_tokens_are_refused_with_a_reason(token):
    assert operator_token_problem(token)


def test_random_tokens_of_32_characters_and_more_pass():
    makers = [lambda: secrets.token_urlsafe(32), lambda: secrets.token_urlsafe(24), lambda: secrets.token_hex(16),
              lambda: secrets.token_hex(32), strong]
    refused = [t for make in makers for t in (make() for _ in range(500)) if operator_token_problem(t)]
    assert refused == []


@pytest.mark.parametrize("token", ["a" * 40, "t", "0123456789abcdef" * 2])
def test_a_weak_configured_token_stops_the_config_with_how_to_make_one(tmp_path, token):
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"TOLLGATE_ADMIN_TOKEN": token})
    message = str(info.value)
    assert message.startswith("TOLLGATE_ADMIN_TOKEN: the operator token ") and MAKE_TOKEN in message
    assert "\n" not in message
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\nadmin_token = "{token}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith("server.admin_token: ") and MAKE_TOKEN in str(info.value)


def test_a_strong_configured_token_is_taken():
    token = strong()
    assert load_config(None, env={"TOLLGATE_ADMIN_TOKEN": token}).server.admin_token == token


# -- the stored form -------------------------------------------------------------------------

def test_the_stored_form_is_salted_scrypt():
    token = strong()
    one, two = hash_operator_token(token), hash_operator_token(token)
    assert one.startswith("scrypt$") and two.startswith("scrypt$") and one != two  # a fresh salt each time
    assert token not in one and hash_secret(token) not in one
    assert verify_operator_token(token, one) and verify_operator_token(token, two)
    assert not verify_operator_token(token + "x", one)
    assert not verify_operator_token(strong(), one)


def test_malformed_or_greedy_stored_hashes_verify_nothing():
    token = strong()
    good = hash_operator_token(token)
    _, log_n, r, p, salt, digest = good.split("$")
    for stored in ("", "scrypt", "scrypt$x$8$1$aa$bb", f"bcrypt${log_n}${r}${p}${salt}${digest}",
                   f"scrypt$40${r}${p}${salt}${digest}", f"scrypt${log_n}$999${p}${salt}${digest}",
                   f"scrypt${log_n}${r}${p}${salt}$!!!", good + "$extra"):
        assert not verify_operator_token(token, stored), stored


def test_a_legacy_sha256_is_recognised_and_still_verifies():
    token = strong()
    legacy = hash_secret(token)
    assert is_legacy_token_hash(legacy) and not is_legacy_token_hash(hash_operator_token(token))
    assert verify_operator_token(token, legacy) and not verify_operator_token(strong(), legacy)


# -- the back-off ------------------------------------------------------------------------------

def test_backoff_gives_free_tries_then_doubles_up_to_the_cap():
    clock = Clock()
    backoff = FailureBackoff(free=3, first_delay=1.0, max_delay=10.0, clock=clock)
    for _ in range(2):
        backoff.failed("1.2.3.4")
        assert backoff.wait("1.2.3.4") == 0
    waits = []
    for _ in range(6):
        backoff.failed("1.2.3.4")
        waits.append(backoff.wait("1.2.3.4"))
        clock.now += waits[-1]  # wait it out, then fail again
        assert backoff.wait("1.2.3.4") == 0
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.wait("5.6.7.8") == 0  # other addresses are not held back


def test_backoff_is_cleared_by_a_success_and_forgotten_after_a_quiet_spell():
    clock = Clock()
    backoff = FailureBackoff(free=2, first_delay=5.0, max_delay=60.0, forget_after=600.0, clock=clock)
    for _ in range(3):
        backoff.failed("a")
    assert backoff.wait("a") == 10.0
    backoff.succeeded("a")
    assert backoff.wait("a") == 0 and len(backoff) == 0
    for _ in range(3):
        backoff.failed("b")
    clock.now += 600.0
    assert backoff.wait("b") == 0 and len(backoff) == 0
    backoff.failed("b")  # a fresh start: one failure is free again
    assert backoff.wait("b") == 0


def test_backoff_memory_is_bounded_forgetting_the_least_recent_first():
    clock = Clock()
    backoff = FailureBackoff(free=1, first_delay=30.0, max_tracked=100, clock=clock)
    for n in range(1000):
        backoff.failed(f"10.0.{n // 256}.{n % 256}")
        assert len(backoff) <= 100
    assert len(backoff) == 100
    assert backoff.wait("10.0.3.231") == 30.0  # the last one (n = 999) is remembered
    assert backoff.wait("10.0.0.0") == 0  # the first was dropped
    backoff.failed("10.0.3.132")  # n = 900, the oldest remembered: failing again makes it the newest
    backoff.failed("new")  # so this pushes out n = 901 instead
    assert backoff.wait("10.0.3.132") > 0 and backoff.wait("10.0.3.133") == 0


# -- AdminAuth ------------------------------------------------------------------------------------

def test_admin_auth_checks_the_token_and_backs_off_per_address():
    async def main():
        token = strong()
        clock = Clock()
        auth = AdminAuth(hash_operator_token(token), backoff=FailureBackoff(free=3, first_delay=2.0, clock=clock))
        await auth.check(token, "10.0.0.1")
        await auth.check(token, "10.0.0.1")  # the second check of the right token is the remembered one
        for bad in (None, ""):
            with pytest.raises(KeyRefused):
                await auth.check(bad, "10.0.0.1")
        for _ in range(3):
            with pytest.raises(KeyRefused) as info:
                await auth.check(strong(), "10.0.0.1")
            assert info.value.reason == KeyRefused.INVALID_ADMIN
        with pytest.raises(TooManyFailures) as held:
            await auth.check(token, "10.0.0.1")  # even the right token waits its turn
        assert held.value.retry_after == 2.0
        await auth.check(token, "10.0.0.2")  # another address is not held back
        clock.now += 2.0
        await auth.check(token, "10.0.0.1")  # after the wait, the right token works and clears the record
        for _ in range(2):
            with pytest.raises(KeyRefused):
                await auth.check("x" * 10_000, "10.0.0.1")  # too long to hash: wrong, and counted
        with pytest.raises(KeyRefused):
            await auth.check(strong(), "10.0.0.1")
        with pytest.raises(TooManyFailures):
            await auth.check(token, "10.0.0.1")

    asyncio.run(main())


def test_admin_auth_given_the_token_needs_no_first_scrypt_and_refuses_others():
    async def main():
        token = strong()
        auth = AdminAuth(hash_operator_token(token), known=token)
        await auth.check(token, "127.0.0.1")
        with pytest.raises(KeyRefused):
            await auth.check(strong(), "127.0.0.1")

    asyncio.run(main())


def test_a_legacy_hash_lets_its_token_in_once_and_is_replaced_by_scrypt():
    async def main():
        token = strong()
        saved: list[str] = []

        async def upgrade(stored: str) -> None:
            saved.append(stored)

        auth = AdminAuth(hash_secret(token), upgrade=upgrade)
        with pytest.raises(KeyRefused):
            await auth.check(strong(), "127.0.0.1")
        assert saved == []
        await auth.check(token, "127.0.0.1")
        assert len(saved) == 1 and saved[0].startswith("scrypt$") and verify_operator_token(token, saved[0])
        assert auth.stored == saved[0]
        await auth.check(token, "127.0.0.1")
        assert len(saved) == 1
        # A fresh process with the upgraded hash: the token still works, through scrypt.
        await AdminAuth(saved[0]).check(token, "127.0.0.1")

    asyncio.run(main())


def test_a_weak_legacy_token_is_not_kept_and_the_refusal_says_how_to_replace_it():
    async def main():
        saved: list[str] = []

        async def upgrade(stored: str) -> None:
            saved.append(stored)

        auth = AdminAuth(hash_secret("a"), upgrade=upgrade)
        with pytest.raises(KeyRefused) as info:
            await auth.check("a", "127.0.0.1")
        assert "admin-token --rotate" in info.value.message and MAKE_TOKEN in info.value.message
        assert saved == []

    asyncio.run(main())


# -- where the token comes from (a real store) --------------------------------------------------------

def test_the_configured_token_is_stored_salted_and_a_legacy_hash_is_cleared(tmp_path):
    async def main():
        token = strong()
        stores = [SQLiteStore(f"sqlite:///{tmp_path / name}") for name in ("a.db", "b.db")]
        for store in stores:
            await store.open()
        try:
            await stores[0].set_meta(LEGACY_ADMIN_HASH_KEY, hash_secret(token))
            given = [await operator_token(store, token) for store in stores]
            stored = [await store.get_meta(ADMIN_HASH_KEY) for store in stores]
            assert [g.stored for g in given] == stored
            assert stored[0] != stored[1] and all(verify_operator_token(token, s) for s in stored)
            assert all(g.known == token and not g.shown_once for g in given)
            assert not await stores[0].get_meta(LEGACY_ADMIN_HASH_KEY)
            # Started again without a configured token: the stored hash, no new token.
            again = await operator_token(stores[0], None)
            assert (again.stored, again.known, again.shown_once) == (stored[0], None, False)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_a_legacy_hash_alone_is_used_until_its_token_upgrades_it(tmp_path):
    async def main():
        token = strong()
        store = SQLiteStore(f"sqlite:///{tmp_path / 'old.db'}")
        await store.open()
        try:
            await store.set_meta(LEGACY_ADMIN_HASH_KEY, hash_secret(token))
            found = await operator_token(store, None)
            assert found.stored == hash_secret(token) and found.known is None
            generated = await operator_token(store, None, rotate=True)
            assert generated.shown_once and operator_token_problem(generated.known) is None
            assert verify_operator_token(generated.known, await store.get_meta(ADMIN_HASH_KEY))
            assert not await store.get_meta(LEGACY_ADMIN_HASH_KEY)
        finally:
            await store.close()

    asyncio.run(main())
