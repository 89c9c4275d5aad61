"""Hard dollar budgets: UTC-aligned windows, pools, reservations at admission, settlement after."""
