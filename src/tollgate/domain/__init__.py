"""The bottom layer: the product's values and rules (money, time, accounts, pools, grants, usage, refusals). No I/O."""
