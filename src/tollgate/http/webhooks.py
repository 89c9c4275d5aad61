"""The account's alert webhook on the management plane (`/api/webhook`, `mk_` keys; docs/alerts.md).

Scoped like the rest of `/api`: the management key names the account, and only that account's
webhook and deliveries are ever read or changed. The secret is shown once, when it is made;
afterwards only its first characters.
"""

from __future__ import annotations

import orjson

from tollgate.accounts.auth import ManagementAuth
from tollgate.alerts.service import Alerts
from tollgate.alerts.settings import SECRET_PREFIX
from tollgate.domain.alerts import EVENT_TYPES, AlertDelivery, Webhook
from tollgate.domain.durations import format_duration
from tollgate.domain.timestamps import iso
from tollgate.http import fields
from tollgate.http.request import Request, Router, Send
from tollgate.http.style import Style, envelope, money

PUT_FIELDS = ("url", "secret", "rotateSecret", "thresholds", "creditsLow", "creditsLowNanos", "expiringNotice")
DELIVERIES_DEFAULT, DELIVERIES_MAX = 50, 200


def ok(data: object) -> dict:
    return {"success": True, "data": data}


def secret_hint(secret: str) -> str:
    """Enough of the secret to tell which one it is, never enough to sign with: four characters."""
    shown = len(SECRET_PREFIX) + 4 if secret.startswith(SECRET_PREFIX) else 4
    return secret[:shown] + "…"


def webhook_view(hook: Webhook) -> dict:
    return {
        "url": hook.url, "secretPrefix": secret_hint(hook.secret), "thresholds": list(hook.thresholds),
        "creditsLow": money(hook.credits_low), "creditsLowNanos": hook.credits_low,
        "expiringNotice": format_duration(hook.expiring_notice), "expiringNoticeSeconds": hook.expiring_notice,
        "events": list(EVENT_TYPES), "createdAt": iso(hook.created_at), "updatedAt": iso(hook.updated_at),
    }


def delivery_view(d: AlertDelivery) -> dict:
    return {
        "eventId": d.event_id, "type": d.type, "status": d.status, "attempts": d.attempts,
        "createdAt": iso(d.created_at), "nextAttemptAt": iso(d.next_attempt_at), "deliveredAt": iso(d.delivered_at),
        "failedAt": iso(d.failed_at), "lastStatus": d.last_status, "lastError": d.last_error,
        "event": orjson.Fragment(d.body),
    }


class WebhooksAPI:
    def __init__(self, alerts: Alerts, auth: ManagementAuth, max_body: int, style: Style | None = None) -> None:
        self.style = style or Style()
        self.alerts = alerts
        self.auth = auth
        self.max_body = max_body

    def mount(self, router: Router) -> None:
        router.error_shape("/api/", envelope)
        router.add("GET", "/api/webhook", self.show)
        router.add("PUT", "/api/webhook", self.put)
        router.add("DELETE", "/api/webhook", self.delete)
        router.add("GET", "/api/webhook/deliveries", self.deliveries)
        router.add("POST", "/api/webhook/test", self.test)

    async def _account_id(self, request: Request) -> str:
        return (await self.auth.authenticate(request.bearer())).account_id

    async def show(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        await self.style.reply(request, send, 200, ok(webhook_view(await self.alerts.webhook(account_id))))

    async def put(self, request: Request, send: Send) -> None:
        """`PUT /api/webhook`: create or change; fields left out keep their value (their default when created)."""
        account_id = await self._account_id(request)
        body = fields.obj(await request.json(self.max_body))
        for name in body:
            if name not in PUT_FIELDS:
                raise fields.bad(name, f"is not a webhook field (the fields are {', '.join(PUT_FIELDS)})")
        changes: dict = {}
        if "url" in body:
            changes["url"] = fields.string(body, "url")
        if body.get("secret") is not None:
            changes["secret"] = fields.string(body, "secret")
        rotate = body.get("rotateSecret", False)
        if not isinstance(rotate, bool):
            raise fields.bad("rotateSecret", "must be true or false")
        if "thresholds" in body:
            changes["thresholds"] = body["thresholds"]
        if "creditsLow" in body and "creditsLowNanos" in body:
            raise fields.bad("creditsLow", "give either creditsLow (dollars) or creditsLowNanos, not both")
        if "creditsLow" in body:
            changes["credits_low"] = fields.dollars(body, "creditsLow", required=False)
        elif "creditsLowNanos" in body:
            changes["credits_low"] = fields.integer(body, "creditsLowNanos", required=False)
        if "expiringNotice" in body:
            changes["expiring_notice"] = fields.duration(body, "expiringNotice")
        existed = await self._exists(account_id)
        hook, secret = await self.alerts.set_webhook(account_id, rotate_secret=rotate, **changes)
        view = webhook_view(hook)
        if secret is not None:
            view["secret"] = secret  # shown this once
        await self.style.reply(request, send, 200 if existed else 201, ok(view))

    async def _exists(self, account_id: str) -> bool:
        return await self.alerts.store.get_webhook(account_id) is not None

    async def delete(self, request: Request, send: Send) -> None:
        account_id = await self._account_id(request)
        await self.alerts.delete_webhook(account_id)
        await self.style.reply(request, send, 200, ok({"deleted": True}))

    async def deliveries(self, request: Request, send: Send) -> None:
        """`GET /api/webhook/deliveries?limit=50`: the newest deliveries first, with their status and event."""
        account_id = await self._account_id(request)
        limit = fields.query_int(request.query, "limit", DELIVERIES_DEFAULT, 1, DELIVERIES_MAX)
        rows = await self.alerts.deliveries(account_id, limit)
        await self.style.reply(request, send, 200, ok([delivery_view(d) for d in rows]))

    async def test(self, request: Request, send: Send) -> None:
        """`POST /api/webhook/test`: a `ping` event, delivered (signed, retried) like any other."""
        account_id = await self._account_id(request)
        event = await self.alerts.test(account_id)
        await self.style.reply(request, send, 202, ok({"eventId": event.event_id, "type": event.type}))

