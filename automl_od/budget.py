"""Time budgets: the default a search gets, how a fit's budget is shared between the search and the
refit of its winner, and refits sized to the time left.

A fit with ``time_budget_s=T`` returns within T + max(5 s, 10 % of T) (``benchmarks/cost.py``
measures it): the search's trials stop themselves at the search's end (``automl_od.trial``), a
share of T is held back for the refit, and the refit is downsized, when its predicted cost exceeds
the time left, first in its fidelity (boosting iterations, epochs: ``Capabilities.fidelity``), then
in rows (labelled anomalies kept). Predictions come from the winner's own trial (seconds per fold,
scaled to all rows) or, for a configuration no trial finished, from its declared ``Cost``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automl_od.records import TrialRecord

#: The default time budget of a search: BASE_S plus PER_MILLION_CELLS_S per million cells (rows x
#: encoded columns, after ``max_rows``), at most MAX_S. 10,000 x 200 gets 100 s.
DEFAULT_BASE_S, DEFAULT_PER_MILLION_CELLS_S, DEFAULT_MAX_S = 60.0, 20.0, 300.0
#: At most this share of a time budget is held back for the refit (and for tracking).
REFIT_SHARE = 0.35
#: Held back at least, when there is a refit to make: a few seconds; tracking adds TRACKING_S (logging
#: the model, its registration and the report took 4.9 s on 2 cores).
MIN_RESERVE_S, TRACKING_S = 2.0, 5.0
#: A search given less than this is not started (the refit gets the time).
MIN_SEARCH_S = 1.0
#: Ray Tune's own start and stop around the trials, held back from the search's end: a search given
#: 4 s of a 6 s budget on 400 x 4 took 7.3 s on 2 cores, 2.2 s of it importing Tune (first use in a
#: process) and 1.5 s stopping its trials' actors.
TUNE_S = 3.0
#: A refit is sized to this share of the time left (predictions are rough), plus FREE_S: a refit that
#: short is never downsized (the promise allows at least 5 s over).
SAFETY, FREE_S = 0.8, 1.5
#: A fidelity parameter is lowered to at most this share of its value, then rows are dropped; a
#: row sample keeps at least MIN_REFIT_ROWS rows.
MIN_FIDELITY_SHARE, MIN_REFIT_ROWS = 0.05, 200


def slack(seconds: float) -> float:
    """How far past its time budget of ``seconds`` a fit may return: max(5 s, 10 % of it)."""
    return max(5.0, 0.1 * seconds)


def seconds_text(seconds: float) -> str:
    """Seconds as a message shows them: three significant digits, whole seconds from 100 s on."""
    return f"{seconds:.0f}" if abs(seconds) >= 100 else f"{seconds:.3g}"


def default_time_budget(rows: int, columns: int) -> float:
    """The time budget of a search whose user gave none (``time_budget_s="auto"``)."""
    return min(DEFAULT_MAX_S, DEFAULT_BASE_S + DEFAULT_PER_MILLION_CELLS_S * rows * columns / 1e6)


def describe_default(rows: int, columns: int) -> str:
    return (f"{default_time_budget(rows, columns):.0f} s, the default for {rows:,} x {columns} ({DEFAULT_BASE_S:g} s + "
            f"{DEFAULT_PER_MILLION_CELLS_S:g} s per million cells, at most {DEFAULT_MAX_S:g} s)")


@dataclass
class Clock:
    """A fit's time budget (None: unbounded), counted from ``started`` (``time.perf_counter()``)."""

    seconds: float | None
    started: float = field(default_factory=time.perf_counter)

    def left(self) -> float | None:
        return None if self.seconds is None else self.seconds - (time.perf_counter() - self.started)

    def affords(self, seconds: float, *, tracking: bool) -> bool:
        """Whether work predicted to take ``seconds`` fits in the time left (SAFETY of it, less
        TRACKING_S when the fit is tracked); always, without a budget."""
        left = self.left()
        return left is None or seconds <= SAFETY * (left - (TRACKING_S if tracking else 0.0))

    def search_seconds(self, predicted_refit_s: float, *, tracking: bool) -> float | None:
        """Seconds a search may take from now: the time left less the refit's reserve and Ray Tune's
        own start and stop (TUNE_S); None without a budget. Below MIN_SEARCH_S no search starts."""
        left = self.left()
        return None if left is None else left - self.reserve(predicted_refit_s, tracking=tracking) - TUNE_S

    def reserve(self, predicted_refit_s: float, *, tracking: bool) -> float:
        """Seconds to hold back from the search for the refit (and tracking)."""
        if self.seconds is None:
            return 0.0
        wanted = max(MIN_RESERVE_S, predicted_refit_s / SAFETY) + (TRACKING_S if tracking else 0.0)
        return min(REFIT_SHARE * self.seconds, wanted)


def predicted_seconds(component: Any, rows: int, columns: int, trial: TrialRecord | None = None,
                      train_rows: int | None = None) -> float:
    """Predicted seconds to fit ``component`` on ``rows`` (and score them): from ``trial`` (its
    seconds per finished fold, each fitted on ``train_rows``) when it finished one, else from the
    component's declared cost."""
    cost = component.capabilities.cost
    if trial and trial.folds_done and trial.duration_s and train_rows:
        per_fold = float(trial.duration_s) / int(trial.folds_done)
        return per_fold * (rows / train_rows) ** max(1.0, cost.rows_power)
    return cost.seconds(rows, columns)


@dataclass
class Sizing:
    """How a refit was downsized to fit the time left (``params`` replace the configuration's)."""

    params: dict[str, Any]
    max_fit_rows: int | None
    note: str


def size_refit(component: Any, params: dict[str, Any], *, rows: int, predicted_s: float, seconds: float | None) -> Sizing:
    """Parameters and a row limit that bring a fit predicted to take ``predicted_s`` on ``rows`` within
    ``seconds`` (None or enough: unchanged): the fidelity parameter first, down to
    MIN_FIDELITY_SHARE of its value, then a row sample."""
    target = None if seconds is None else SAFETY * max(seconds, 0.0) + FREE_S
    if target is None or predicted_s <= target:
        return Sizing(dict(params), None, "")
    factor, changes, new = target / predicted_s, [], dict(params)
    name = component.capabilities.fidelity
    value = params.get(name, component.default_parameters().get(name)) if name else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        lowered = max(1, math.ceil(value * MIN_FIDELITY_SHARE), math.floor(value * factor))
        if lowered < value:
            new[name] = lowered
            changes.append(f"{name} {value} -> {lowered}")
            factor *= value / lowered
    max_fit_rows = None
    if factor < 1:
        power = max(1.0, component.capabilities.cost.rows_power)
        kept = max(MIN_REFIT_ROWS, int(rows * factor ** (1 / power)))
        if kept < rows:
            max_fit_rows = kept
            changes.append(f"fitted on {kept:,} of {rows:,} rows")
    note = (f"refit downsized to stay within the time budget ({', '.join(changes)}; predicted {seconds_text(predicted_s)} s, "
            f"{seconds_text(max(seconds or 0.0, 0.0))} s left)") if changes else ""
    return Sizing(new, max_fit_rows, note)
