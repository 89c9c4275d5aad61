"""One style for the management (`/api`) and operator (`/admin`) planes, written and read in one place.

Field names are camelCase; money is a decimal string of dollars (`"12.5"`, exact: `format_usd`) beside
its integer nano-dollars in `<name>Nanos`; times are ISO-8601 (the views write them). Views are built
as plain dicts, in either case, with each amount of money as `money(nanos)`; `Style.reply` writes them
in the style above.

For one release (until `SUNSET_AT`), the old style keeps working, unless `[server] legacy_field_names
= false`: every field whose name changed is written under its old snake_case name too, with its old
value (money as the exact JSON number it was), and a request body may use the old names of the fields
in `OLD_REQUEST_NAMES` (both names with different values: 400). An answer that carries old names, or
to a request that used one, has the `Deprecation`, `Sunset` and `Link` headers (`DEPRECATION_HEADERS`).
The renamed fields are listed in docs/api.md#deprecations.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import orjson

from tollgate.domain.money import format_usd
from tollgate.http import fields
from tollgate.http.errors import APIError
from tollgate.http.request import Request, Send, send_json

DEPRECATED_AT = 1796515200  # 2026-12-06T00:00:00Z: the release that made these names camelCase
SUNSET_AT = 1812240000  # 2027-06-06T00:00:00Z: the old names are gone from the release after this date
DEPRECATION_HEADERS: list[tuple[bytes, bytes]] = [
    (b"deprecation", f"@{DEPRECATED_AT}".encode()),  # RFC 9745
    (b"sunset", formatdate(SUNSET_AT, usegmt=True).encode()),  # RFC 8594: Sun, 06 Jun 2027 00:00:00 GMT
    (b"link", b'</docs/api.md#deprecations>; rel="deprecation"'),
]

# Request fields of the operator plane that had snake_case names: old name -> new name.
OLD_REQUEST_NAMES = {
    "period_days": "periodDays",
    "price_monthly": "priceMonthly",
    "budget_per_window": "budgetPerWindow",
    "grace_seconds": "graceSeconds",
}

# Values written as they are, names inside included: a client's own names (key metadata) and stored events.
VERBATIM = frozenset({"metadata", "event"})

_USED_OLD_NAMES = "tollgate.old_field_names"  # set in a request's scope when its body used an old name


class Usd:
    """An amount of money in a view (nano-dollars; None: no amount)."""

    __slots__ = ("nanos",)

    def __init__(self, nanos: int | None) -> None:
        self.nanos = nanos


def money(nanos: int | None) -> Usd:
    return Usd(nanos)


def camel(name: str) -> str:
    """`budget_per_window` -> `budgetPerWindow`; a camelCase name stays as it is."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _text(amount: Usd) -> str | None:
    return None if amount.nanos is None else format_usd(amount.nanos)


def _number(amount: Usd) -> Any:
    """The old form: an exact JSON number of dollars (`12.5`)."""
    return None if amount.nanos is None else orjson.Fragment(format_usd(amount.nanos).encode())


def _old(value: Any) -> Any:
    """A view as the old style wrote it: names as built, money as JSON numbers."""
    if isinstance(value, dict):
        return {k: v if k in VERBATIM else _old(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_old(v) for v in value]
    if isinstance(value, Usd):
        return _number(value)
    return value


class _Renderer:
    def __init__(self, old_names: bool) -> None:
        self.old_names = old_names
        self.wrote_old = False

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for name, v in value.items():
                new = camel(name)
                if name in VERBATIM:
                    out[new] = v
                elif isinstance(v, Usd):
                    out[new] = _text(v)
                    out.setdefault(new + "Nanos", v.nanos)
                else:
                    out[new] = self(v)
                if new != name and self.old_names:
                    out[name] = v if name in VERBATIM else _old(v)
                    self.wrote_old = True
            return out
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, Usd):
            return _text(value)
        return value


def render(payload: Any, old_names: bool = True) -> tuple[Any, bool]:
    """(`payload` in the new style, with the old names beside when `old_names`; whether any old name is in it)."""
    renderer = _Renderer(old_names)
    data = renderer(payload)
    return data, renderer.wrote_old


def envelope(error: APIError) -> bytes:
    """An error in the management envelope, naming its field by the new name: the account service names the
    fields it checks as the CLI does (`period_days must be ...`), the envelope as the API does (`periodDays`)."""
    if error.param and "_" in error.param:
        new = camel(error.param)
        if error.message.startswith(error.param):
            error.message = new + error.message[len(error.param):]
        error.param = new
    return error.envelope_body()


class Style:
    """How one gateway writes and reads its management and operator APIs: `old_names` keeps the old
    names for the deprecation release (`[server] legacy_field_names`)."""

    def __init__(self, old_names: bool = True) -> None:
        self.old_names = old_names

    def fields(self, request: Request, body: dict) -> dict:
        """`body` with each old name of `OLD_REQUEST_NAMES` read as its new one: the same value under both
        is one value, different values a 400; with the old names off, an old name is a 400 naming the new."""
        used = [name for name in body if name in OLD_REQUEST_NAMES]
        if not used:
            return body
        body = dict(body)
        for old in used:
            new = OLD_REQUEST_NAMES[old]
            if not self.old_names:
                raise APIError(400, "invalid_request", f"{old} was renamed {new}: send {new} "
                               "(docs/api.md#deprecations)", param=new)
            value = body.pop(old)
            if new in body and body[new] != value:
                raise APIError(400, "invalid_request", f"{new}: given twice with different values, as {new} and "
                               f"under its old name {old}; send {new} alone", param=new, headers=DEPRECATION_HEADERS)
            body[new] = value
        request.scope[_USED_OLD_NAMES] = True
        return body

    async def body(self, request: Request, limit: int, *, empty: dict | None = None) -> dict:
        """The request's JSON object body (`empty` when it has none, if given), old names read as new ones."""
        return self.fields(request, fields.obj(await request.json(limit, empty=empty)))

    async def reply(self, request: Request, send: Send, status: int, payload: Any) -> None:
        """`payload` (an envelope) in the new style; the deprecation headers when it carries an old name or
        the request used one."""
        data, wrote_old = render(payload, self.old_names)
        used_old = wrote_old or bool(request.scope.get(_USED_OLD_NAMES))
        await send_json(send, status, data, DEPRECATION_HEADERS if used_old else None)
