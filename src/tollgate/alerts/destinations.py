"""Where a webhook may point: an http(s) URL of bounded length, and (unless the operator allows it)
only public addresses.

An account owner chooses the URL and the gateway makes the request, so without a check a URL
could reach the operator's own network: a metadata service at 169.254.169.254, an admin port on
localhost (server-side request forgery). With `[alerts] allow_private = false` (the default) a
literal non-public address is refused when the webhook is set, and every address a host name
resolves to is checked again at each delivery, which connects to the address it checked (so a
name that changes its answer in between cannot slip through).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL = 2048


class BadDestination(ValueError):
    """A URL or address a webhook may not use; the message says why."""


def check_url(url: object, allow_private: bool) -> str:
    """The URL, checked: http or https, a host, no credentials or fragment, at most MAX_URL characters."""
    if not isinstance(url, str) or not url.strip():
        raise BadDestination("must be an http:// or https:// URL")
    url = url.strip()
    if len(url) > MAX_URL:
        raise BadDestination(f"must be at most {MAX_URL} characters")
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise BadDestination("must be ASCII with no spaces or control characters (percent-encode the rest)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadDestination("must be an http:// or https:// URL")
    if not parts.hostname:
        raise BadDestination("has no host")
    if parts.username is not None or parts.password is not None:
        raise BadDestination("must not carry credentials (user:password@); the signature authenticates the sender")
    if parts.fragment:
        raise BadDestination("must not have a #fragment")
    try:
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError:
        raise BadDestination("has an invalid port") from None
    if not allow_private:
        host = parts.hostname
        if host == "localhost" or host.endswith(".localhost"):
            raise BadDestination(f"points at {host}, and this gateway delivers only to public addresses")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return url  # a name: its addresses are checked at each delivery
        if not is_public(address):
            raise BadDestination(f"points at {host}, not a public address, and this gateway delivers only to public "
                                 "addresses")
    return url


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address: not loopback, private, link-local, shared, reserved or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(text: str) -> None:
    """Refuse a resolved address that is not public (see the module's note)."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        raise BadDestination(f"resolved to {text!r}, not an IP address") from None
    if not is_public(address):
        raise BadDestination(f"resolves to {address}, not a public address, and this gateway delivers only to public "
                             "addresses")
