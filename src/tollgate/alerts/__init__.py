"""Alert webhooks: budget thresholds, low credits and subscription expiry, signed and delivered at least once.

The request path only tells `Alerts` of settlements and budget refusals (O(1), no await); a
background task turns those into events in a durable outbox, and another delivers them with
retries (docs/alerts.md).
"""
