"""Typed reads from a parsed TOML table, with errors that name the exact key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tollgate.domain.durations import parse_duration
from tollgate.domain.money import MoneyError, usd_from_json

_MISSING = object()
REQUIRED = _MISSING  # pass as a default to make a key required


class ConfigError(ValueError):
    """A configuration problem, worded as `<key>: <problem>`."""


class Table:
    """One table of the config file, read key by key; unknown keys are an error."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a table, got {type(data).__name__}")
        self.data = data
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, default: Any) -> Any:
        self.seen.add(name)
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ConfigError(f"{self.key(name)}: is required")
            return default
        return value

    def str(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, str):
            raise ConfigError(f"{self.key(name)}: expected a string, got {value!r}")
        if value is not default and not value.strip():
            raise ConfigError(f"{self.key(name)}: must not be empty")
        return value

    def int(self, name: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)}: expected a whole number, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{self.key(name)}: must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: Any = _MISSING, minimum: float = 0.0) -> Any:
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.key(name)}: expected a number, got {value!r}")
        if value < minimum:
            raise ConfigError(f"{self.key(name)}: must be at least {minimum}, got {value}")
        return float(value)

    def bool(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {value!r}")
        return value

    def usd(self, name: str, default: Any = _MISSING) -> Any:
        """Dollars as nano-dollars; a number or a string such as "0.14"."""
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{self.key(name)}: expected an amount of dollars, got {value!r}")
        try:
            nanos = usd_from_json(value)
        except MoneyError as exc:
            raise ConfigError(f"{self.key(name)}: {exc}") from None
        if nanos < 0:
            raise ConfigError(f"{self.key(name)}: must not be negative")
        return nanos

    def duration(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default:
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{self.key(name)}: {exc}") from None

    def bounded(self, name: str, value: Any, check: Callable[[Any], Any]) -> Any:
        """`value` (read from `name`) through one of `tollgate.domain.bounds`' checks, its ValueError
        worded as this key's ConfigError."""
        try:
            return check(value)
        except ValueError as exc:
            raise ConfigError(f"{self.key(name)}: {exc}") from None

    def str_list(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.key(name)}: expected a list of strings, got {value!r}")
        return tuple(value)

    def table(self, name: str) -> Table:
        return Table(self._get(name, {}), self.key(name))

    def tables(self, name: str) -> list[Table]:
        value = self._get(name, [])
        if not isinstance(value, list):
            raise ConfigError(f"{self.key(name)}: expected an array of tables ([[{name}]])")
        return [Table(item, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def done(self) -> None:
        """Refuse keys nobody read: a typo should stop the start, not be ignored."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")
