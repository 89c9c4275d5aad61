"""Upstreams: OpenAI-compatible HTTP servers and the bundled in-process models, behind one interface."""
