"""Routing for model `auto`: a local classifier or an LLM judge picks the category; route tables pick the models."""
