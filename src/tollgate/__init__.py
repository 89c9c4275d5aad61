"""tollgate: an LLM gateway where every key spends real dollars against a hard budget."""

__version__ = "0.1.0"
