"""The request hot path: auth -> budget reservation -> routing -> upstream relay -> settlement."""
