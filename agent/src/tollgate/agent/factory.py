"""Loading the caller's agent factory from a `module:callable` or `path/to/file.py:callable` spec."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def load_factory(spec: str) -> Any:
    """Import the object named by `spec`; raise ValueError with a clear message if it is wrong."""
    module_name, sep, attr_path = spec.rpartition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"factory {spec!r} must look like 'package.module:callable' or 'file.py:callable'")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name).resolve()
        if not path.is_file():
            raise ValueError(f"factory file {path} does not exist")
        unique = "tollgate_factory_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        loader_spec = importlib.util.spec_from_file_location(unique, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ValueError(f"cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[unique] = module
        loader_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ValueError(f"{module_name!r} has no attribute {attr_path!r}") from exc
    if not callable(target):
        raise ValueError(f"{spec!r} is not callable")
    return target
