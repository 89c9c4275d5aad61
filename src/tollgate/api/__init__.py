"""The HTTP surface: data plane (OpenAI, Anthropic), management plane, operator plane."""
