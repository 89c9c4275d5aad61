"""What an upstream may be sent beyond the request itself: checked once, at start.

Third-party servers reject what they do not expect (llama-cpp-python's server answers 400 to an
`X-Request-Id` that is not a UUID), and some need headers of their own (a vendor's API version, a
routing hint). So each upstream says, in its configuration, which headers it gets:

- `request_id_header`: the header carrying the gateway's request id, a UUID every server accepts
  (`false` sends none);
- `headers`: extra headers, sent as written;
- `forward_headers`: client headers passed through by name. Nothing is forwarded by default, and
  credentials never are: a client's `Authorization` holds its tollgate key.

A header the gateway itself writes (framing, host, credentials) cannot be set or forwarded: a
configuration that tries is refused at start, naming the key.
"""

from __future__ import annotations

import re

from tollgate.config.reader import ConfigError, Table

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field-name
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # visible latin-1 and tabs: no CR, LF or NUL
MAX_VALUE = 4096

# Written by the gateway for every request: framing, routing and its own credentials.
_OWN = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection", "keep-alive",
                  "te", "trailer", "upgrade", "expect", "proxy-connection", "accept", "user-agent",
                  "authorization"})
# A client's credentials, for tollgate only, and hop-by-hop headers.
_NEVER_FORWARDED = _OWN | {"x-api-key", "api-key", "cookie", "proxy-authorization", "anthropic-api-key"}


def header_name(value: str, where: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ConfigError(f"{where}: {value!r} is not a valid header name")
    return value


def header_value(value: str) -> bool:
    """A value that cannot end the header early or split the request (no CR, LF or NUL)."""
    return len(value) <= MAX_VALUE and _VALUE.fullmatch(value) is not None


def request_id_header(t: Table, default: str) -> str:
    """The header's name; `false` sends no request id at all."""
    if t.data.get("request_id_header") is False:
        t.seen.add("request_id_header")
        return ""
    name = t.str("request_id_header", default)
    if name:
        header_name(name, t.key("request_id_header"))
        if name.lower() in _OWN:
            raise ConfigError(f"{t.key('request_id_header')}: {name!r} is a header the gateway writes itself")
    return name


def extra_headers(t: Table) -> tuple[tuple[str, str], ...]:
    table = t.table("headers")
    found = []
    for name in list(table.data):
        where = table.key(name)
        header_name(name, where)
        if name.lower() in _OWN:
            raise ConfigError(f"{where}: {name!r} is a header the gateway writes itself"
                              + (" (use api_key_env for the upstream's key)" if name.lower() == "authorization" else ""))
        value = table.str(name)
        if not header_value(value):
            raise ConfigError(f"{where}: the value must be printable text without line breaks, "
                              f"at most {MAX_VALUE} characters")
        found.append((name, value))
    table.done()
    lowered = [n.lower() for n, _ in found]
    if len(set(lowered)) != len(lowered):
        raise ConfigError(f"{t.key('headers')}: a header is named twice (names are case-insensitive)")
    return tuple(found)


def forward_headers(t: Table) -> tuple[str, ...]:
    names = t.str_list("forward_headers", ())
    for name in names:
        header_name(name, t.key("forward_headers"))
        if name.lower() in _NEVER_FORWARDED:
            raise ConfigError(f"{t.key('forward_headers')}: {name!r} is never forwarded "
                              "(credentials and connection headers stay with the gateway)")
    return tuple(dict.fromkeys(n.lower() for n in names))
