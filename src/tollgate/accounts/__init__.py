"""The management plane's core: operator and account-owner actions on accounts, plans, subscriptions, keys, credits."""
