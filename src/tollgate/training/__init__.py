"""Training and evaluating the `auto` classifier (an application: the gateway only loads what it wrote)."""
