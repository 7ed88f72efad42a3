"""Exceptions users and plugin authors can act on."""

from __future__ import annotations


class AutoODError(Exception):
    """Base class of automl-od's own errors."""


class UserInputError(AutoODError, ValueError):
    """Bad data, options or files given by the user; the CLI prints it in one line, exit 2."""


class SpaceError(UserInputError):
    """An invalid search space (file or dict)."""


class PluginError(AutoODError):
    """A plugin registered something inconsistent (duplicate names, wrong types)."""


class TrialFailed(AutoODError):
    """A trial could not produce a valid score; the reason is recorded, the search goes on."""


class UnknownComponent(UserInputError, KeyError):
    """A component name (detector, ranker, resampler, controller) that no plugin registers."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SearchNotice(UserWarning):
    """Something the user should know about a search that still runs (e.g. labels that mark no
    anomaly, or too few of them for a reliable reward); the CLI prints it as a notice line."""


def notify(text: str) -> None:
    """Warn ``text`` as a :class:`SearchNotice`, attributed to the first caller outside automl-od
    (the user's line that called ``fit``, wherever inside the package the notice arose)."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # stacklevel 2 is notify's caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(text, SearchNotice, stacklevel=level)
