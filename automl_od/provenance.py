"""Which automl-od made a saved model, and whether this one can read it.

Every fitted pipeline carries ``made_with_`` (from :func:`made_with`); the search folder's files and the
MLflow model record the same. Loading a model made by another automl-od version says so in one notice;
a saved format newer than this automl-od reads is refused with both versions.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from automl_od.errors import UserInputError

#: The version of the saved pipeline's layout; raised when a change makes older automl-od unable to read it.
SAVED_FORMAT = 1


def made_with() -> dict[str, Any]:
    """automl-od's version and saved format, and those of Python and the libraries a pipeline pickles."""
    from automl_od import __version__

    stamp: dict[str, Any] = {"automl_od": __version__, "format": SAVED_FORMAT, "python": platform.python_version()}
    for name in ("scikit-learn", "polars", "numpy"):
        try:
            stamp[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return stamp


def check_made_with(model: Any, where: str) -> str | None:
    """A notice when ``model`` (a fitted pipeline) was made by another automl-od version; refused when its
    saved format is newer than this one reads; None when it matches (or predates the stamp: said too)."""
    from automl_od import __version__

    stamp = getattr(model, "made_with_", None)
    if not isinstance(stamp, dict):
        return f"{where} records no automl-od version (saved before models were stamped); scoring it with automl-od {__version__}"
    if int(stamp.get("format", 1)) > SAVED_FORMAT:
        raise UserInputError(f"{where} was made by automl-od {stamp.get('automl_od')} in saved format {stamp.get('format')}; "
                             f"this automl-od {__version__} reads format {SAVED_FORMAT} at most: install automl-od "
                             f"{stamp.get('automl_od')} to score it")
    if stamp.get("automl_od") != __version__:
        return f"{where} was made by automl-od {stamp.get('automl_od')}; scoring it with automl-od {__version__}"
    return None
