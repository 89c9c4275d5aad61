"""Operator actions as commands: accounts, management keys, plans, subscriptions, credits, keys, quickstart.

They work on the database named by the config directly (the same one the
gateway uses); a running gateway notices the changes on its next request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tollgate.accounts.errors import AccountError
from tollgate.accounts.models import Account, ApiKey, Plan, Subscription
from tollgate.accounts.service import AccountService
from tollgate.budget.windows import iso
from tollgate.cli.output import emit
from tollgate.config import ConfigError, load_config
from tollgate.config.durations import format_duration, parse_duration
from tollgate.money import MoneyError, format_usd, usd_to_nanos
from tollgate.server.setup import admin_token, open_configured_store

Action = Callable[[AccountService, argparse.Namespace], Awaitable[int]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def main() -> int:
            store = await open_configured_store(load_config(args.config))
            try:
                return await action(AccountService(store), args)
            finally:
                await store.close()

        try:
            return asyncio.run(main())
        except ConfigError as exc:
            print(f"tollgate: bad config: {exc}", file=sys.stderr)
        except (AccountError, MoneyError, ValueError) as exc:
            print(f"tollgate: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1

    return run


def _usd(text: str) -> int:
    try:
        return usd_to_nanos(text)
    except MoneyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", "-c", help="TOML config file (default: $TOLLGATE_CONFIG, else built-in defaults)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


# -- views -------------------------------------------------------------------------

def account_row(a: Account) -> dict:
    return {"id": a.id, "name": a.name, "created_at": iso(a.created_at), "credits_granted": format_usd(a.credits_granted)}


def plan_row(p: Plan) -> dict:
    return {"slug": p.slug, "name": p.name, "price_monthly": format_usd(p.price_monthly), "period_days": p.period_days,
            "window": format_duration(p.window), "budget_per_window": format_usd(p.budget_per_window),
            "rpm": p.rpm, "tpm": p.tpm, "models": list(p.models) if p.models else None, "source": p.source}


def subscription_row(s: Subscription) -> dict:
    return {"id": s.id, "account_id": s.account_id, "plan": s.plan_slug, "status": s.effective_status(time.time()),
            "current_period_end": iso(s.current_period_end), "cancel_at_period_end": s.cancel_at_period_end}


def key_row(k: ApiKey) -> dict:
    return {"id": k.id, "name": k.name, "type": k.type, "subscription_id": k.subscription_id, "prefix": k.prefix,
            "budget": f"{format_usd(k.budget_limit)}/{format_duration(k.budget_window)}" if k.budget_limit else None,
            "active": k.revoked_at is None, "created_at": iso(k.created_at)}


ACCOUNT_COLS = [("id", "ID"), ("name", "NAME"), ("created_at", "CREATED"), ("credits_granted", "CREDITS GRANTED")]
PLAN_COLS = [("slug", "SLUG"), ("name", "NAME"), ("price_monthly", "$/MONTH"), ("window", "WINDOW"),
             ("budget_per_window", "$/WINDOW"), ("rpm", "RPM"), ("tpm", "TPM"), ("period_days", "DAYS"),
             ("models", "MODELS"), ("source", "SOURCE")]
SUB_COLS = [("id", "ID"), ("plan", "PLAN"), ("status", "STATUS"), ("current_period_end", "PERIOD END"),
            ("cancel_at_period_end", "CANCELS")]
KEY_COLS = [("id", "ID"), ("name", "NAME"), ("type", "TYPE"), ("subscription_id", "SUBSCRIPTION"), ("prefix", "KEY"),
            ("budget", "OWN BUDGET"), ("active", "ACTIVE")]


# -- actions -----------------------------------------------------------------------

async def accounts_list(svc: AccountService, args: argparse.Namespace) -> int:
    emit([account_row(a) for a in await svc.list_accounts()], args.json, ACCOUNT_COLS)
    return 0


async def accounts_create(svc: AccountService, args: argparse.Namespace) -> int:
    account, key, secret = await svc.create_account(args.name)
    data = {**account_row(account), "management_key": secret, "management_key_id": key.id}
    emit(data, args.json, title=None if args.json else "Account created. The management key is shown once:")
    return 0


async def accounts_show(svc: AccountService, args: argparse.Namespace) -> int:
    account = await svc.account(args.account)
    subs = [subscription_row(s) for s in await svc.subscriptions(account.id)]
    keys = [key_row(k) for k in await svc.keys(account.id)]
    if args.json:
        emit({**account_row(account), "subscriptions": subs, "keys": keys}, True)
        return 0
    emit(account_row(account), False)
    print()
    emit(subs, False, SUB_COLS, title="Subscriptions")
    print()
    emit(keys, False, KEY_COLS, title="Keys")
    return 0


async def management_key_create(svc: AccountService, args: argparse.Namespace) -> int:
    key, secret = await svc.create_management_key(args.account, args.name)
    emit({"id": key.id, "account_id": key.account_id, "name": key.name, "management_key": secret}, args.json)
    return 0


async def plans_list(svc: AccountService, args: argparse.Namespace) -> int:
    emit([plan_row(p) for p in await svc.list_plans()], args.json, PLAN_COLS)
    return 0


async def plans_create(svc: AccountService, args: argparse.Namespace) -> int:
    plan = Plan(
        slug=args.slug, name=args.name or args.slug.title(), price_monthly=args.price, period_days=args.period_days,
        window=args.window, budget_per_window=args.budget, rpm=args.rpm, tpm=args.tpm,
        models=tuple(m.strip() for m in args.models.split(",")) if args.models else None,
    )
    emit(plan_row(await svc.create_plan(plan)), args.json, PLAN_COLS)
    return 0


async def subs_list(svc: AccountService, args: argparse.Namespace) -> int:
    await svc.account(args.account)
    emit([subscription_row(s) for s in await svc.subscriptions(args.account)], args.json, SUB_COLS)
    return 0


async def subs_grant(svc: AccountService, args: argparse.Namespace) -> int:
    sub = await svc.grant_subscription(args.account, args.plan, args.period_days)
    emit(subscription_row(sub), args.json, SUB_COLS)
    return 0


async def subs_cancel(svc: AccountService, args: argparse.Namespace) -> int:
    emit(subscription_row(await svc.cancel_subscription(None, args.subscription)), args.json, SUB_COLS)
    return 0


async def subs_expire(svc: AccountService, args: argparse.Namespace) -> int:
    emit(subscription_row(await svc.expire_subscription(None, args.subscription)), args.json, SUB_COLS)
    return 0


async def credits_grant(svc: AccountService, args: argparse.Namespace) -> int:
    account = await svc.grant_credits(args.account, args.amount, args.note)
    emit(account_row(account), args.json, ACCOUNT_COLS)
    return 0


async def keys_list(svc: AccountService, args: argparse.Namespace) -> int:
    await svc.account(args.account)
    emit([key_row(k) for k in await svc.keys(args.account)], args.json, KEY_COLS)
    return 0


async def keys_create(svc: AccountService, args: argparse.Namespace) -> int:
    if (args.budget is None) != (args.window is None):
        raise ValueError("a key budget needs both --budget and --window")
    if args.subscription:
        key, secret = await svc.create_subscription_key(args.account, args.name, args.subscription, args.budget, args.window)
    else:
        key, secret = await svc.create_credit_key(args.account, args.name, budget_limit=args.budget, budget_window=args.window)
    emit({**key_row(key), "api_key": secret}, args.json, title=None if args.json else "Key created. It is shown once:")
    return 0


async def keys_revoke(svc: AccountService, args: argparse.Namespace) -> int:
    emit(key_row(await svc.revoke_key(args.account, args.key)), args.json, KEY_COLS)
    return 0


async def quickstart(svc: AccountService, args: argparse.Namespace) -> int:
    account, mkey, management = await svc.create_account(args.name)
    sub = await svc.grant_subscription(account.id, args.plan)
    key, secret = await svc.create_subscription_key(account.id, "quickstart", sub.id)
    data: dict[str, Any] = {
        "account_id": account.id, "subscription_id": sub.id, "plan": sub.plan_slug,
        "management_key": management, "api_key": secret, "key_id": key.id,
    }
    if args.json:
        emit(data, True)
        return 0
    config = load_config(args.config)
    base = f"http://{config.server.host}:{config.server.port}"
    model = config.models[0].id if config.models else "auto"
    print(f"Demo account {account.id} on the {sub.plan_slug} plan. Keys are shown once:\n")
    print(f"  API key (sk_):        {secret}")
    print(f"  Management key (mk_): {management}\n")
    print("Try it:")
    print(f"  curl -s {base}/v1/chat/completions -H 'Authorization: Bearer {secret}' -H 'Content-Type: application/json' "
          f"-d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}]}}'")
    print(f"  curl -s {base}/v1/usage -H 'Authorization: Bearer {secret}'")
    return 0


async def admin_token_create(svc: AccountService, args: argparse.Namespace) -> int:
    _, token = await admin_token(svc.store, None, rotate=args.rotate)
    if token is None:
        print("An operator token is already set (only its hash is stored). Use --rotate to replace it.")
    else:
        print(f"Operator token (shown once): {token}")
    return 0


# -- registration ------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    acc = sub.add_parser("accounts", help="create, list and show accounts")
    acc_sub = acc.add_subparsers(dest="action", required=True, metavar="ACTION")
    _common(acc_sub.add_parser("list", help="list accounts")).set_defaults(func=_run(accounts_list))
    p = _common(acc_sub.add_parser("create", help="create an account and its first management key"))
    p.add_argument("name")
    p.set_defaults(func=_run(accounts_create))
    p = _common(acc_sub.add_parser("show", help="an account with its subscriptions and keys"))
    p.add_argument("account", help="account id")
    p.set_defaults(func=_run(accounts_show))

    mk = sub.add_parser("management-keys", help="issue management keys (mk_) for an account")
    mk_sub = mk.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = _common(mk_sub.add_parser("create", help="issue another management key; shown once"))
    p.add_argument("account", help="account id")
    p.add_argument("--name", default="cli", help="a label for the key")
    p.set_defaults(func=_run(management_key_create))

    plans = sub.add_parser("plans", help="list plans or create one")
    plans_sub = plans.add_subparsers(dest="action", required=True, metavar="ACTION")
    _common(plans_sub.add_parser("list", help="list plans")).set_defaults(func=_run(plans_list))
    p = _common(plans_sub.add_parser("create", help="create a plan (plans in the config file are edited there)"))
    p.add_argument("slug")
    p.add_argument("--budget", type=_usd, required=True, help="budget per window in USD, e.g. 0.14")
    p.add_argument("--window", type=_duration, default=5 * 3600, help="window length, e.g. 5h, 30m (default 5h)")
    p.add_argument("--name", help="display name")
    p.add_argument("--price", type=_usd, default=0, help="monthly price in USD (informational)")
    p.add_argument("--period-days", type=int, default=30, help="subscription period in days (default 30)")
    p.add_argument("--rpm", type=int, default=60, help="requests per minute per key (default 60)")
    p.add_argument("--tpm", type=int, default=100_000, help="tokens per minute per key (default 100000)")
    p.add_argument("--models", help="comma-separated allowed models (default: all)")
    p.set_defaults(func=_run(plans_create))

    subs = sub.add_parser("subscriptions", help="grant, list, cancel or expire subscriptions")
    subs_sub = subs.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = _common(subs_sub.add_parser("grant", help="grant an account a subscription of a plan"))
    p.add_argument("account", help="account id")
    p.add_argument("plan", help="plan slug, e.g. standard")
    p.add_argument("--period-days", type=int, help="length of the period (default: the plan's)")
    p.set_defaults(func=_run(subs_grant))
    p = _common(subs_sub.add_parser("list", help="an account's subscriptions"))
    p.add_argument("account", help="account id")
    p.set_defaults(func=_run(subs_list))
    p = _common(subs_sub.add_parser("cancel", help="cancel at period end (keys work until then)"))
    p.add_argument("subscription", help="subscription id")
    p.set_defaults(func=_run(subs_cancel))
    p = _common(subs_sub.add_parser("expire", help="expire now: every key on it is refused from the next request"))
    p.add_argument("subscription", help="subscription id")
    p.set_defaults(func=_run(subs_expire))

    credits = sub.add_parser("credits", help="grant prepaid credits")
    credits_sub = credits.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = _common(credits_sub.add_parser("grant", help="add USD to an account's credit balance"))
    p.add_argument("account", help="account id")
    p.add_argument("amount", type=_usd, help="USD, e.g. 25 or 12.50")
    p.add_argument("--note", help="why (kept with the grant)")
    p.set_defaults(func=_run(credits_grant))

    keys = sub.add_parser("keys", help="create, list and revoke API keys (sk_)")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = _common(keys_sub.add_parser("create", help="create an API key; shown once"))
    p.add_argument("account", help="account id")
    p.add_argument("--name", required=True, help="a label for the key")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--subscription", help="draw on this subscription's pool")
    kind.add_argument("--credit", action="store_true", help="draw on the account's credits")
    p.add_argument("--budget", type=_usd, help="the key's own budget per window, USD")
    p.add_argument("--window", type=_duration, help="the key's own window, e.g. 1h")
    p.set_defaults(func=_run(keys_create))
    p = _common(keys_sub.add_parser("list", help="an account's keys"))
    p.add_argument("account", help="account id")
    p.set_defaults(func=_run(keys_list))
    p = _common(keys_sub.add_parser("revoke", help="revoke a key at once"))
    p.add_argument("account", help="account id")
    p.add_argument("key", help="key id")
    p.set_defaults(func=_run(keys_revoke))

    p = _common(sub.add_parser("quickstart", help="create a demo account with a subscription and a key, and print them"))
    p.add_argument("--name", default="demo", help="account name (default demo)")
    p.add_argument("--plan", default="standard", help="plan slug (default standard)")
    p.set_defaults(func=_run(quickstart))

    p = sub.add_parser("admin-token", help="create (or --rotate) the operator token for the /admin API")
    p.add_argument("--config", "-c", help="TOML config file")
    p.add_argument("--rotate", action="store_true", help="replace the current token")
    p.set_defaults(func=_run(admin_token_create))
