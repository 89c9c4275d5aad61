"""Operator actions as commands: accounts, management keys, plans, subscriptions, credits, keys, quickstart.

They work on the database named by the config directly (the same one the
gateway uses); a running gateway notices the changes on its next request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tollgate.accounts.service import AccountService
from tollgate.cli.configured import configured_store, read_config
from tollgate.cli.options import add_config, add_json
from tollgate.cli.output import emit
from tollgate.config import load_config
from tollgate.domain.accounts import Account, ApiKey, Plan, Subscription
from tollgate.domain.durations import parse_duration
from tollgate.domain.money import MoneyError, usd_to_nanos
from tollgate.domain.refusals import AccountError
from tollgate.http.views import admin_account, admin_key, admin_management_key, admin_plan, admin_subscription, usd_text
from tollgate.serve.setup import admin_token

Action = Callable[[AccountService, argparse.Namespace], Awaitable[int]]
Row = TypeVar("Row", Account, ApiKey)
PAGE = 1000  # rows per query when a command lists every account or key


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    """The command for `action`: the configured database open around it, a refusal printed as one line (exit 1)."""
    def run(args: argparse.Namespace) -> int:
        config = read_config(args.config)
        if config is None:
            return 1

        async def main() -> int:
            async with configured_store(config) as store:
                return await action(AccountService(store), args)

        try:
            return asyncio.run(main())
        except (AccountError, MoneyError, ValueError) as exc:
            print(f"tollgate: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1

    return run


def _usd(text: str) -> int:
    try:
        return usd_to_nanos(text)
    except MoneyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def metadata_json(text: str) -> dict:
    """Key metadata as a JSON object on the command line (its bounds are the service's to check)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"metadata must be a JSON object: {exc.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("metadata must be a JSON object such as '{\"tier\": \"gold\"}'")
    return value


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- views: the /admin API's (tollgate.http.views), with money as exact strings ----------

def account_row(a: Account) -> dict:
    return admin_account(a, usd=usd_text)


def plan_row(p: Plan) -> dict:
    return admin_plan(p, usd=usd_text)


def subscription_row(s: Subscription) -> dict:
    return admin_subscription(s, time.time())


def key_row(k: ApiKey) -> dict:
    return admin_key(k, usd=usd_text)


def _emit_keys(data: dict | list[dict], as_json: bool, columns: Sequence[tuple[str, str]] | None = None,
               title: str | None = None) -> None:
    """Key views as JSON, or for people with the key's own budget in one cell (`0.50/1h`)."""
    def cells(view: dict) -> dict:
        budget = view["budget"]
        return {**view, "budget": f"{budget['limit']}/{budget['window']}" if budget else None}

    if not as_json:
        data = [cells(v) for v in data] if isinstance(data, list) else cells(data)
    emit(data, as_json, columns, title)


ACCOUNT_COLS = [("id", "ID"), ("name", "NAME"), ("created_at", "CREATED"), ("credits_granted", "CREDITS GRANTED")]
PLAN_COLS = [("slug", "SLUG"), ("name", "NAME"), ("price_monthly", "$/MONTH"), ("window", "WINDOW"),
             ("budget_per_window", "$/WINDOW"), ("rpm", "RPM"), ("tpm", "TPM"), ("period_days", "DAYS"),
             ("models", "MODELS"), ("source", "SOURCE")]
SUB_COLS = [("id", "ID"), ("plan", "PLAN"), ("status", "STATUS"), ("current_period_end", "PERIOD END"),
            ("cancel_at_period_end", "CANCELS")]
KEY_COLS = [("id", "ID"), ("name", "NAME"), ("type", "TYPE"), ("subscription_id", "SUBSCRIPTION"), ("prefix", "KEY"),
            ("budget", "OWN BUDGET"), ("end_user", "END USER"), ("active", "ACTIVE")]


async def _every(fetch: Callable[[str | None, int], Awaitable[list[Row]]]) -> list[Row]:
    """Every row of a list, one bounded query a page (`after` the last id), never the whole table in one."""
    rows: list[Row] = []
    after = None
    while True:
        page = await fetch(after, PAGE)
        rows += page
        if len(page) < PAGE:
            return rows
        after = page[-1].id


async def _accounts(svc: AccountService) -> list[Account]:
    return await _every(lambda after, limit: svc.store.list_accounts(after=after, limit=limit))


async def _keys(svc: AccountService, account_id: str) -> list[ApiKey]:
    return await _every(lambda after, limit: svc.store.list_api_keys(account_id, after=after, limit=limit))


# -- actions -----------------------------------------------------------------------

async def accounts_list(svc: AccountService, args: argparse.Namespace) -> int:
    emit([account_row(a) for a in await _accounts(svc)], args.json, ACCOUNT_COLS)
    return 0


async def accounts_create(svc: AccountService, args: argparse.Namespace) -> int:
    account, key, secret = await svc.create_account(args.name)
    data = {**account_row(account), "management_key": secret, "management_key_id": key.id}
    emit(data, args.json, title=None if args.json else "Account created. The management key is shown once:")
    return 0


async def accounts_show(svc: AccountService, args: argparse.Namespace) -> int:
    account = await svc.account(args.account)
    subs = [subscription_row(s) for s in await svc.subscriptions(account.id)]
    keys = [key_row(k) for k in await _keys(svc, account.id)]
    if args.json:
        emit({**account_row(account), "subscriptions": subs, "keys": keys}, True)
        return 0
    emit(account_row(account), False)
    print()
    emit(subs, False, SUB_COLS, title="Subscriptions")
    print()
    _emit_keys(keys, False, KEY_COLS, title="Keys")
    return 0


async def management_key_create(svc: AccountService, args: argparse.Namespace) -> int:
    key, secret = await svc.create_management_key(args.account, args.name)
    emit({**admin_management_key(key), "management_key": secret}, args.json)
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
    if args.end_user is not None:
        keys = await _every(lambda after, limit: svc.end_user_keys(args.account, args.end_user, after, limit))
    else:
        keys = await _keys(svc, args.account)
    _emit_keys([key_row(k) for k in keys], args.json, KEY_COLS)
    return 0


async def keys_create(svc: AccountService, args: argparse.Namespace) -> int:
    if (args.budget is None) != (args.window is None):
        raise ValueError("a key budget needs both --budget and --window")
    if args.subscription:
        key, secret = await svc.create_subscription_key(args.account, args.name, args.subscription, args.budget,
                                                        args.window, args.end_user, args.metadata)
    else:
        key, secret = await svc.create_credit_key(args.account, args.name, args.end_user, args.metadata,
                                                  budget_limit=args.budget, budget_window=args.window)
    _emit_keys({**key_row(key), "api_key": secret}, args.json, title=None if args.json else "Key created. It is shown once:")
    return 0


async def keys_revoke(svc: AccountService, args: argparse.Namespace) -> int:
    _emit_keys(key_row(await svc.revoke_key(args.account, args.key)), args.json, KEY_COLS)
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
        print("An operator token is already set (only its salted hash is stored). Use --rotate to replace it.")
    else:
        print(f"Operator token (shown once): {token}")
        print("A running gateway takes it at its next start (a TOLLGATE_ADMIN_TOKEN or server.admin_token, "
              "when set, replaces it there).")
    return 0


# -- registration ------------------------------------------------------------------

_ID_HELP = {"account": "account id", "subscription": "subscription id", "key": "key id"}


def _group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    return sub.add_parser(name, help=help).add_subparsers(dest="action", required=True, metavar="ACTION")


def _command(group: argparse._SubParsersAction, name: str, help: str, action: Action, *ids: str,
             json: bool = True) -> argparse.ArgumentParser:
    """One operator command: `--config`, `--json`, the ids it acts on (in order), and the action it runs."""
    p = group.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    add_config(p)
    if json:
        add_json(p)
    for id_name in ids:
        p.add_argument(id_name, help=_ID_HELP[id_name])
    p.set_defaults(func=_run(action))
    return p


def register(sub: argparse._SubParsersAction) -> None:
    acc = _group(sub, "accounts", "create, list and show accounts")
    _command(acc, "list", "list accounts", accounts_list)
    _command(acc, "create", "create an account and its first management key", accounts_create).add_argument("name")
    _command(acc, "show", "an account with its subscriptions and keys", accounts_show, "account")

    mk = _group(sub, "management-keys", "issue, list and revoke management keys (mk_) of an account")
    p = _command(mk, "create", "issue another management key; shown once", management_key_create, "account")
    p.add_argument("--name", default="cli", help="a label for the key")

    plans = _group(sub, "plans", "list, create, update and retire plans")
    _command(plans, "list", "list plans", plans_list)
    p = _command(plans, "create", "create a plan (a slug in use is refused: see `plans update`; plans in the "
                 "config file are edited there)", plans_create)
    p.add_argument("slug")
    p.add_argument("--budget", type=_usd, required=True, help="budget per window in USD, e.g. 0.14")
    p.add_argument("--window", type=_duration, default=5 * 3600, help="window length, e.g. 5h, 30m (default 5h)")
    p.add_argument("--name", help="display name")
    p.add_argument("--price", type=_usd, default=0, help="monthly price in USD (informational)")
    p.add_argument("--period-days", type=int, default=30, help="subscription period in days (default 30)")
    p.add_argument("--rpm", type=int, default=60, help="requests per minute per key (default 60)")
    p.add_argument("--tpm", type=int, default=100_000, help="tokens per minute per key (default 100000)")
    p.add_argument("--models", help="comma-separated allowed models (default: all)")

    subs = _group(sub, "subscriptions", "grant, list, cancel, un-cancel, renew, extend or expire subscriptions")
    p = _command(subs, "grant", "grant an account a subscription of a plan", subs_grant, "account")
    p.add_argument("plan", help="plan slug, e.g. standard")
    p.add_argument("--period-days", type=int, help="length of the period (default: the plan's)")
    _command(subs, "list", "an account's subscriptions", subs_list, "account")
    _command(subs, "cancel", "cancel at period end (keys work until then)", subs_cancel, "subscription")
    _command(subs, "expire", "expire now: every key on it is refused from the next request", subs_expire,
             "subscription")

    credits = _group(sub, "credits", "grant prepaid credits and list the grants")
    p = _command(credits, "grant", "add USD to an account's credit balance", credits_grant, "account")
    p.add_argument("amount", type=_usd, help="USD, e.g. 25 or 12.50")
    p.add_argument("--note", help="why (kept with the grant)")

    keys = _group(sub, "keys", "create, list, update, rotate and revoke API keys (sk_)")
    p = _command(keys, "create", "create an API key; shown once", keys_create, "account")
    p.add_argument("--name", required=True, help="a label for the key")
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--subscription", help="draw on this subscription's pool")
    kind.add_argument("--credit", action="store_true", help="draw on the account's credits")
    p.add_argument("--budget", type=_usd, help="the key's own budget per window, USD")
    p.add_argument("--window", type=_duration, help="the key's own window, e.g. 1h")
    p.add_argument("--end-user", help="the end user the key is for (resellers; at most 200 characters)")
    p.add_argument("--metadata", type=metadata_json, help="a flat JSON object, e.g. '{\"tier\": \"gold\"}'")
    p = _command(keys, "list", "an account's keys", keys_list, "account")
    p.add_argument("--end-user", help="only the keys of this end user")
    _command(keys, "revoke", "revoke a key at once", keys_revoke, "account", "key")

    from tollgate.cli.operator_lifecycle import register_lifecycle  # it builds on the helpers of this module

    register_lifecycle({"keys": keys, "management-keys": mk, "plans": plans, "subscriptions": subs,
                        "credits": credits})

    p = _command(sub, "quickstart", "create a demo account with a subscription and a key, and print them", quickstart)
    p.add_argument("--name", default="demo", help="account name (default demo)")
    p.add_argument("--plan", default="standard", help="plan slug (default standard)")

    p = _command(sub, "admin-token", "create (or --rotate) the operator token for the /admin API", admin_token_create,
                 json=False)
    p.add_argument("--rotate", action="store_true", help="replace the current token")
