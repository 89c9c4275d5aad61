"""Checks on what operators and owners type, as account-model refusals that name the field (`Invalid`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tollgate.domain.refusals import Invalid

MAX_NAME = 200
# A plan slug travels in paths (`/admin/plans/{slug}`) and config keys: plain and short.
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def checked_name(value: object, field: str = "name") -> str:
    """A display name: a non-empty string of at most `MAX_NAME` characters, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field} must be a non-empty string", param=field)
    if len(value) > MAX_NAME:
        raise Invalid(f"{field} must be at most {MAX_NAME} characters", param=field)
    return value.strip()


def checked_slug(value: object) -> str:
    """A new plan's slug: a letter or digit, then up to 63 letters, digits, dots, dashes or underscores."""
    if not isinstance(value, str) or not SLUG.match(value):
        raise Invalid("slug must be 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit",
                      param="slug")
    return value


def bounded(value: object, check: Callable[[Any], Any], field: str, label: str | None = None) -> Any:
    """`value` through one of `tollgate.domain.bounds`' checks; out of bounds is Invalid naming `field`."""
    try:
        return check(value)
    except ValueError as exc:
        raise Invalid(f"{label or field} {exc}", param=field) from None
