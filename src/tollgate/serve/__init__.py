"""The composition root: every long-lived object built from the config and passed in, and the running process."""
