"""Putting the gateway together from a config, and running it."""
