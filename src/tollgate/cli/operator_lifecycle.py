"""Operator commands of the account lifecycle: key rotation and edits (end users, metadata), management keys
listed and revoked, plan edits and retirement, subscription renewals, extensions and un-cancels, credit history.

They join the command groups of `tollgate.cli.operator` (`register_lifecycle`), share its plumbing and print
the /admin API's views, so `--json` here is what the API answers.
"""

from __future__ import annotations

import argparse
from typing import Any

from tollgate.accounts.service import AccountService
from tollgate.cli.operator import (
    PLAN_COLS,
    SUB_COLS,
    _command,
    _duration,
    _emit_keys,
    _usd,
    key_row,
    metadata_json,
    plan_row,
    subscription_row,
)
from tollgate.cli.output import emit
from tollgate.domain.bounds import check_grace
from tollgate.http.views import admin_credit_grant, admin_management_key, usd_text

MKEY_COLS = [("id", "ID"), ("name", "NAME"), ("prefix", "KEY"), ("created_at", "CREATED"), ("revoked_at", "REVOKED")]
GRANT_COLS = [("id", "ID"), ("amount", "USD"), ("note", "NOTE"), ("created_at", "GRANTED")]
PAGE = 1000


def grace(text: str) -> int:
    """A rotation's grace: `0` (none) or a duration such as 30m, 1h, 7d (at most 7 days)."""
    seconds = 0 if text.strip() == "0" else _duration(text)
    try:
        return check_grace(seconds)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- keys ----------------------------------------------------------------------------

async def keys_rotate(svc: AccountService, args: argparse.Namespace) -> int:
    key, secret = await svc.rotate_key(args.account, args.key, args.grace)
    _emit_keys({**key_row(key), "api_key": secret}, args.json,
               title=None if args.json else "Key rotated. The new secret is shown once:")
    return 0


async def keys_update(svc: AccountService, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.end_user is not None or args.clear_end_user:
        changes["end_user"] = None if args.clear_end_user else args.end_user
    if args.metadata is not None or args.clear_metadata:
        changes["metadata"] = None if args.clear_metadata else args.metadata
    if not changes:
        raise ValueError("nothing to change: give --name, --end-user, --clear-end-user, --metadata or --clear-metadata")
    _emit_keys(key_row(await svc.update_key(args.account, args.key, changes)), args.json)
    return 0


# -- management keys -------------------------------------------------------------------

async def management_keys_list(svc: AccountService, args: argparse.Namespace) -> int:
    emit([admin_management_key(k) for k in await svc.management_keys(args.account)], args.json, MKEY_COLS)
    return 0


async def management_keys_revoke(svc: AccountService, args: argparse.Namespace) -> int:
    key = await svc.revoke_management_key(args.account, args.key, force=args.force)
    emit(admin_management_key(key), args.json, MKEY_COLS)
    return 0


# -- plans --------------------------------------------------------------------------------

async def plans_update(svc: AccountService, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {name: getattr(args, name) for name in
                               ("name", "price_monthly", "period_days", "window", "budget_per_window", "rpm", "tpm")
                               if getattr(args, name) is not None}
    if args.models is not None or args.all_models:
        changes["models"] = None if args.all_models else tuple(m.strip() for m in args.models.split(",") if m.strip())
    if not changes:
        raise ValueError("nothing to change: give at least one of the options (see --help)")
    emit(plan_row(await svc.update_plan(args.slug, changes)), args.json, PLAN_COLS)
    return 0


async def plans_retire(svc: AccountService, args: argparse.Namespace) -> int:
    emit(plan_row(await svc.retire_plan(args.slug)), args.json, PLAN_COLS)
    return 0


async def plans_unretire(svc: AccountService, args: argparse.Namespace) -> int:
    emit(plan_row(await svc.retire_plan(args.slug, retired=False)), args.json, PLAN_COLS)
    return 0


# -- subscriptions -------------------------------------------------------------------------

async def subs_renew(svc: AccountService, args: argparse.Namespace) -> int:
    sub = await svc.renew_subscription(None, args.subscription, args.period_days)
    emit(subscription_row(sub), args.json, SUB_COLS)
    return 0


async def subs_extend(svc: AccountService, args: argparse.Namespace) -> int:
    emit(subscription_row(await svc.extend_subscription(None, args.subscription, args.days)), args.json, SUB_COLS)
    return 0


async def subs_uncancel(svc: AccountService, args: argparse.Namespace) -> int:
    emit(subscription_row(await svc.uncancel_subscription(None, args.subscription)), args.json, SUB_COLS)
    return 0


# -- credits --------------------------------------------------------------------------------

async def credits_list(svc: AccountService, args: argparse.Namespace) -> int:
    grants, after = [], None
    while True:  # every grant, one bounded page at a time
        _, page = await svc.credit_grants(args.account, after, PAGE)
        grants += page
        if len(page) < PAGE:
            break
        after = page[-1].id
    emit([admin_credit_grant(g, usd=usd_text) for g in grants], args.json, GRANT_COLS)
    return 0


# -- registration -----------------------------------------------------------------------------

def register_lifecycle(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add the lifecycle commands to the operator's command groups (by name: keys, management-keys, ...)."""
    keys, mk, plans, subs, credits = (groups[name] for name in
                                      ("keys", "management-keys", "plans", "subscriptions", "credits"))
    p = _command(keys, "rotate", "give a key a new secret (same key id, budget and usage); the new secret is "
                 "shown once, the old one works until the grace ends", keys_rotate, "account", "key")
    p.add_argument("--grace", type=grace, default=3600,
                   help="how long the old secret keeps working: 0 (not at all) up to 7d (default 1h)")
    p = _command(keys, "update", "change a key's name, end-user label or metadata (only what is given)",
                 keys_update, "account", "key")
    p.add_argument("--name", help="a new label for the key")
    p.add_argument("--end-user", help="the end user the key is for (resellers; at most 200 characters)")
    p.add_argument("--clear-end-user", action="store_true", help="remove the end-user label")
    p.add_argument("--metadata", type=metadata_json, help="a flat JSON object, e.g. '{\"tier\": \"gold\"}' (replaces it)")
    p.add_argument("--clear-metadata", action="store_true", help="remove the metadata")

    _command(mk, "list", "an account's management keys, revoked ones included", management_keys_list, "account")
    p = _command(mk, "revoke", "revoke a management key at once (never the last active one, unless --force)",
                 management_keys_revoke, "account", "key")
    p.add_argument("--force", action="store_true",
                   help="revoke it even if it is the account's last active one (locks the owner out of /api)")

    p = _command(plans, "update", "change only the given fields of a plan made with `plans create`",
                 plans_update)
    p.add_argument("slug")
    p.add_argument("--budget", dest="budget_per_window", metavar="USD", type=_usd,
                   help="budget per window in USD, e.g. 0.14")
    p.add_argument("--window", type=_duration, help="window length, e.g. 5h, 30m")
    p.add_argument("--name", help="display name")
    p.add_argument("--price", dest="price_monthly", metavar="USD", type=_usd, help="monthly price in USD (informational)")
    p.add_argument("--period-days", type=int, help="subscription period in days (new periods)")
    p.add_argument("--rpm", type=int, help="requests per minute per key")
    p.add_argument("--tpm", type=int, help="tokens per minute per key")
    models = p.add_mutually_exclusive_group()
    models.add_argument("--models", help="comma-separated allowed models")
    models.add_argument("--all-models", action="store_true", help="allow every model")
    p = _command(plans, "retire", "retire a plan: no new subscriptions; existing ones keep running", plans_retire)
    p.add_argument("slug")
    p = _command(plans, "unretire", "take a plan's retirement back: it takes new subscriptions again",
                 plans_unretire)
    p.add_argument("slug")

    p = _command(subs, "renew", "one more period: after the current end, or from now if it has ended "
                 "(active again, no longer canceling)", subs_renew, "subscription")
    p.add_argument("--period-days", type=int, help="length of the new period (default: the plan's)")
    p = _command(subs, "extend", "add days to a running subscription's current period", subs_extend,
                 "subscription")
    p.add_argument("days", type=int, help="days to add (1 to 3650)")
    _command(subs, "uncancel", "take back a cancellation at period end (while the period runs)", subs_uncancel,
             "subscription")

    _command(credits, "list", "an account's credit grants, oldest first (amount, note, time)", credits_list,
             "account")
