"""An account's webhook settings as the management API sets them: defaults, checks, the secret.

No I/O: `configure` takes the webhook there was (or None) and the fields given, and returns the
webhook to store, with its secret when one was made (shown to the caller this once).
"""

from __future__ import annotations

import secrets

from tollgate.alerts.destinations import BadDestination, check_url
from tollgate.domain.alerts import Webhook
from tollgate.domain.money import NANOS_PER_USD
from tollgate.domain.refusals import Invalid

DEFAULT_THRESHOLDS = (80, 100)
DEFAULT_CREDITS_LOW = NANOS_PER_USD  # $1.00
DEFAULT_NOTICE = 3 * 86400
MIN_NOTICE, MAX_NOTICE = 60, 30 * 86400
MAX_THRESHOLDS = 10
MAX_CREDITS_LOW = 1_000_000 * NANOS_PER_USD
SECRET_PREFIX = "whsec_"
SECRET_MIN, SECRET_MAX = 16, 200

UNSET = object()  # a field the caller left out (None may mean "off")


def configure(old: Webhook | None, account_id: str, now: int, allow_private: bool, *, url: object = UNSET,
              secret: object = UNSET, rotate_secret: bool = False, thresholds: object = UNSET,
              credits_low: object = UNSET, expiring_notice: object = UNSET) -> tuple[Webhook, str | None]:
    """The webhook after a change: fields left out keep their value (their default when there was none)."""
    if url is UNSET:
        if old is None:
            raise Invalid("url is required", param="url")
        url = old.url
    try:
        url = check_url(url, allow_private)
    except BadDestination as exc:
        raise Invalid(f"url {exc}", param="url") from None
    made = None
    if secret is not UNSET and secret is not None:
        if rotate_secret:
            raise Invalid("give either secret or rotateSecret, not both", param="secret")
        secret = _secret(secret)
    elif old is None or rotate_secret:
        secret = made = SECRET_PREFIX + secrets.token_urlsafe(32)
    else:
        secret = old.secret
    hook = Webhook(
        account_id=account_id, url=url, secret=secret,
        thresholds=_thresholds(thresholds) if thresholds is not UNSET else (
            old.thresholds if old else DEFAULT_THRESHOLDS),
        credits_low=_credits_low(credits_low) if credits_low is not UNSET else (
            old.credits_low if old else DEFAULT_CREDITS_LOW),
        expiring_notice=_notice(expiring_notice) if expiring_notice is not UNSET else (
            old.expiring_notice if old else DEFAULT_NOTICE),
        created_at=old.created_at if old else now, updated_at=now,
    )
    return hook, made


def _secret(value: object) -> str:
    if not isinstance(value, str) or not SECRET_MIN <= len(value) <= SECRET_MAX or \
            not all("!" <= c <= "~" for c in value):
        raise Invalid(f"secret must be {SECRET_MIN} to {SECRET_MAX} printable ASCII characters with no spaces "
                      "(or leave it out, and one is made)", param="secret")
    return value


def _thresholds(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_THRESHOLDS or \
            not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 100 for v in value):
        raise Invalid(f"thresholds must be a list of at most {MAX_THRESHOLDS} whole percents from 1 to 100, "
                      "such as [80, 100]", param="thresholds")
    return tuple(sorted(set(value)))


def _credits_low(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREDITS_LOW:
        raise Invalid("creditsLow must be an amount of dollars from 0 to 1000000 (or null: no credits.low events)",
                      param="creditsLow")
    return value


def _notice(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_NOTICE <= value <= MAX_NOTICE:
        raise Invalid("expiringNotice must be a duration from 1m to 30d, such as \"3d\"", param="expiringNotice")
    return value
