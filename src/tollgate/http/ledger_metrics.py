"""The ledger's write path as the operator sees it (`/admin/metrics/ledger`).

Whether the database keeps up shows here: under a load it sustains, the backlog stays near a
few hand-offs (tens of milliseconds) and `backlog_waits` stays at zero; past it, waits and then
503 refusals count up while the backlog holds at its bound (`[ledger] backlog_*`).
"""

from __future__ import annotations

from tollgate.accounts.auth import AdminAuth
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, envelope
from tollgate.ledger.protocol import BudgetLedger


class LedgerMetricsAPI:
    def __init__(self, auth: AdminAuth, ledger: BudgetLedger, style: Style | None = None) -> None:
        self.style = style or Style()
        self.auth = auth
        self.ledger = ledger

    def mount(self, router: Router) -> None:
        router.error_shape("/admin/", envelope)
        router.add("GET", "/admin/metrics/ledger", self.ledger_metrics)

    async def ledger_metrics(self, request: Request, send: Send) -> None:
        await self.auth.check(request.bearer(), request.client_address)
        await self.style.reply(request, send, 200, {"success": True, "data": self.ledger.write_stats()})
