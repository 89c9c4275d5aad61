"""Accounts, plans, subscriptions, keys and credits: the objects budgets are attached to."""
