"""Resellers' end users on the management plane: the `endUser` and `groupBy` query parameters, and the
per-end-user spend view of `GET /api/usage?groupBy=endUser`."""

from __future__ import annotations

from tollgate.domain.bounds import check_end_user
from tollgate.http import fields
from tollgate.http.style import money
from tollgate.store.usage_by_end_user import EndUserSpend

GROUPINGS = ("endUser",)


def end_user_query(query: dict[str, str]) -> tuple[str | None, bool]:
    """(the `endUser` label to filter by, or None; whether `groupBy=endUser` was asked for)."""
    end_user = query.get("endUser")
    if end_user is not None:
        fields.bounded("endUser", end_user, check_end_user)
    group = query.get("groupBy")
    if group is not None and group not in GROUPINGS:
        raise fields.bad("groupBy", f"must be one of {', '.join(GROUPINGS)}, got {group[:40]!r}")
    return end_user, group is not None


def end_users_view(rows: list[EndUserSpend]) -> list[dict]:
    """Each end user (null: the keys without a label, last) with its keys and what they spent."""
    return [{
        "endUser": row.end_user, "keyCount": row.keys, "activeKeyCount": row.active_keys,
        "spent": money(row.spend.cost), "spentNanos": row.spend.cost, "requests": row.spend.requests,
        "inputTokens": row.spend.input_tokens, "outputTokens": row.spend.output_tokens,
        "cachedTokens": row.spend.cached_tokens, "cacheSaved": money(row.spend.cache_saved),
        "cacheSavedNanos": row.spend.cache_saved,
    } for row in rows]
