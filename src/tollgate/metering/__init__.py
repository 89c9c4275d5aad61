"""Metering: one usage record per request, written in batches, and reports built from them."""
