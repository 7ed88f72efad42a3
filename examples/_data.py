"""Where the examples find the shared reference data (never copied into the repository)."""

from __future__ import annotations

import sys
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def require(path: Path) -> Path:
    """The path, or a clear message and a clean exit when the shared data is not here."""
    if not path.exists():
        print(f"this example needs {path} (the shared reference data), which is not on this machine; skipping")
        sys.exit(0)
    return path
