"""Key material: random, prefixed, shown once, stored only as a hash.

Keys carry 256 bits of randomness, so an unsalted SHA-256 is a safe lookup
index (no dictionary to attack); the final comparison is constant-time anyway.
The operator token is the exception: a person may choose it, so it is checked
for strength and stored with a slow salted hash (below).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import zlib
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

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


# -- the operator token ------------------------------------------------------------
#
# A person may choose the operator token, so unlike the keys above it gets a slow salted
# hash (scrypt) and a strength check. The stored form names its parameters:
# `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (salt and hash in unpadded URL-safe base64).

MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
TOKEN_MIN_LENGTH = 32
TOKEN_MIN_BITS = 80  # Shannon estimate over the token's own characters; a random 32-char token has 100-200
_SCRYPT = (15, 8, 1)  # N = 2**15, r = 8, p = 1: 32 MiB and about 0.1 s per check
_SCRYPT_LIMITS = (20, 32, 16)  # what a stored hash may ask for (a tampered database must not exhaust memory)


def operator_token_problem(token: str) -> str | None:
    """Why `token` is too weak to be the operator token, or None when it will do."""
    if len(token) < TOKEN_MIN_LENGTH:
        return f"is {len(token)} characters long; it needs at least {TOKEN_MIN_LENGTH}"
    if token != token.strip() or not all(" " <= c <= "~" for c in token):
        return "must be printable ASCII with no leading or trailing spaces (it travels in an HTTP header)"
    counts = Counter(token)
    bits = sum(n * math.log2(len(token) / n) for n in counts.values())
    if bits < TOKEN_MIN_BITS:
        return f"has too little variety (about {bits:.0f} bits; at least {TOKEN_MIN_BITS})"
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    if len(packer.compress(token.encode()) + packer.flush()) < 0.75 * len(token):
        return "is too repetitive"
    steps = [ord(b) - ord(a) for a, b in zip(token, token[1:])]
    runs = sum(1 for d, e in zip(steps, steps[1:]) if d == e and abs(d) <= 1)
    if runs > len(token) // 4:
        return "is too predictable (runs such as abcd or 1111)"
    return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(token: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    n = 1 << log_n
    return hashlib.scrypt(token.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)


def hash_operator_token(token: str) -> str:
    """The stored form of the operator token: salted scrypt (slow on purpose: run it off the event loop)."""
    salt = secrets.token_bytes(16)
    log_n, r, p = _SCRYPT
    return f"scrypt${log_n}${r}${p}${_b64(salt)}${_b64(_scrypt(token, salt, log_n, r, p))}"


def is_legacy_token_hash(stored: str) -> bool:
    """An operator token stored by an older tollgate: its unsalted SHA-256, in hex."""
    return len(stored) == 64 and all(c in "0123456789abcdef" for c in stored)


def verify_operator_token(token: str, stored: str) -> bool:
    """Whether `token` is the one `stored` was made from (scrypt, or the legacy SHA-256); constant-time."""
    if is_legacy_token_hash(stored):
        return same_hash(hash_secret(token), stored)
    try:
        scheme, log_n, r, p, salt, digest = stored.split("$")
        params = (int(log_n), int(r), int(p))
        expected = _unb64(digest)
        if scheme != "scrypt" or not all(0 < v <= cap for v, cap in zip(params, _SCRYPT_LIMITS)):
            return False
        return hmac.compare_digest(_scrypt(token, _unb64(salt), *params), expected)
    except (ValueError, binascii.Error):
        return False


def redacted_url(url: str) -> str:
    """A database or Redis URL as a message or log line may show it: its password replaced by `***`."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:  # not a URL Python can read: show its scheme only
        return url.partition("://")[0] + "://***"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
