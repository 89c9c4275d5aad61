"""The live overhead report as the management API serves it (`GET /api/analytics/overhead`)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from tollgate.catalog import load_reference_catalog
from tollgate.config.schema import ModelConfig
from tollgate.costlab.live import catalog_prices, live_overhead, served_prices
from tollgate.costlab.live_report import live_json
from tollgate.domain.accounts import Plan
from tollgate.domain.money import format_usd
from tollgate.domain.usage import UsageRecord
from tollgate.http.manage import OverheadReport


def overhead_report(models: Sequence[ModelConfig] | None) -> OverheadReport:
    """The report for a gateway serving `models` (None: their prices are unknown, the catalog's alone)."""
    served = served_prices(models or ())

    def build(records: list[UsageRecord], plans: list[Plan], account_id: str, since: float, until: float,
              names: dict[str, str], steps: bool) -> dict:
        catalog, unpriced = catalog_prices(load_reference_catalog())
        report = live_overhead(records, served + catalog, plans, account_id, since, until, names, unpriced)
        data = live_json(report, usd=format_usd, number=lambda text: orjson.Fragment(text.encode()), camel=True,
                         steps=steps)
        data["servedModelsKnown"] = models is not None
        return data

    return build
