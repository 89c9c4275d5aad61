"""Model `auto` at run time: classify the request (local classifier or LLM judge), pick its route's chain."""
