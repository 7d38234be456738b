"""Every ``bump_profiles.x.y`` a docstring or comment names exists, and the package holds no test helpers
(docstrings once pointed to a ``store.migrate`` that never existed; the service
launcher of the tests lived in the package)."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
NAME = re.compile(r"\bbump_profiles(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        module = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(module) is None:
                continue
        except ModuleNotFoundError:
            continue
        obj = importlib.import_module(module)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_named_module_or_object_exists():
    broken = sorted({f"{path.relative_to(SRC)}: {name}" for path in SRC.rglob("*.py")
                     for name in NAME.findall(path.read_text(encoding="utf-8")) if not _resolves(name.rstrip("."))})
    assert not broken, broken


def test_the_package_holds_no_test_helpers():
    assert importlib.util.find_spec("bump_profiles.serve.launch") is None
