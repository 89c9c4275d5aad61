"""Key material: random, prefixed, shown once, stored only as a hash.

Keys carry 256 bits of randomness, so an unsalted SHA-256 is a safe lookup
index (no dictionary to attack); the final comparison is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CONSUMPTION_PREFIX = "sk_"
MANAGEMENT_PREFIX = "mk_"
ADMIN_PREFIX = "tga_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def display_prefix(secret: str) -> str:
    """The part of a key safe to show in lists: its type and first characters."""
    return secret[:10] + "…"


def new_id(kind: str) -> str:
    """Readable, unguessable object ids such as `acct_3kq9x0mz7w1c`."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return f"{kind}_" + "".join(secrets.choice(alphabet) for _ in range(16))
