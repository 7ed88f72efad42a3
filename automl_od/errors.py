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
