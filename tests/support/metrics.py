"""Reading the gateway's `/metrics` as Prometheus does: with `prometheus_client`'s own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (sample name, its labels as a frozenset of items) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(scraped: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    """The sample `name` with exactly these labels, or None when the scrape has none."""
    return scraped.get((name, frozenset(labels.items())))


def named(scraped: dict[tuple[str, frozenset], float], name: str) -> dict[frozenset, float]:
    """Every sample called `name`, by its labels."""
    return {labels: v for (n, labels), v in scraped.items() if n == name}
