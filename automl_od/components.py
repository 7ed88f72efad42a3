"""Component descriptions that plugins hand to the registry.

A component is a named factory plus the default search space of its parameters and the
capabilities the search uses to decide whether it fits the data at hand. The same four
kinds exist for built-in and third-party plugins alike.
"""

from __future__ import annotations

import importlib.util
import inspect
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

ComponentKind = Literal["detector", "ranker", "resampler", "controller", "selector"]
#: The four plugin kinds (one registration hook each).
COMPONENT_KINDS: tuple[ComponentKind, ...] = get_args(ComponentKind)


def importable(module: str) -> bool:
    """Whether ``module`` can be imported, checked without importing it: plugins register the
    components of an optional library (PyOD, CatBoost) only when it is installed."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook that blocks it, a broken half-install
        return False

def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


#: The runner sets this environment variable in each trial to the device Ray assigned it
#: ("cuda" or "cpu"); GPU-capable detectors read it (see ``automl_od.neural.resolve_device``).
DEVICE_ENV = "AUTOML_OD_DEVICE"


@dataclass(frozen=True)
class Cost:
    """What fitting a detector and scoring its training rows costs, in seconds on one core of this
    machine class (x86_64, 2 cores, as CI): ``base_s`` x (rows / 1,000) ^ ``rows_power`` x
    (columns / 10) ^ ``columns_power``, columns after encoding. Plugins declare theirs in
    ``Capabilities(cost=...)``, calibrated by ``python benchmarks/cost.py --calibrate``; a component
    that declares none gets the conservative default (quadratic in rows and in columns), so it is
    downsized early rather than late. The label-free default uses it to bound each member (see
    ``automl_od.meta``)."""

    base_s: float = 1.0
    rows_power: float = 2.0
    columns_power: float = 2.0

    def __post_init__(self) -> None:
        if not self.base_s > 0 or not self.rows_power >= 0 or not self.columns_power >= 0:
            raise ValueError(f"a Cost needs base_s > 0 and powers >= 0, but got (base_s={self.base_s}, "
                             f"rows_power={self.rows_power}, columns_power={self.columns_power})")

    def seconds(self, rows: int, columns: int) -> float:
        return self.base_s * (max(rows, 1) / 1000) ** self.rows_power * (max(columns, 1) / 10) ** self.columns_power

    def columns_within(self, rows: int, seconds: float) -> int | None:
        """The most columns whose predicted cost at ``rows`` stays within ``seconds`` (None: no bound)."""
        if self.columns_power == 0:
            return None
        return int(10 * (seconds / self.seconds(rows, 10)) ** (1 / self.columns_power))

    def rows_within(self, columns: int, seconds: float) -> int | None:
        """The most rows whose predicted cost at ``columns`` stays within ``seconds`` (None: no bound)."""
        if self.rows_power == 0:
            return None
        return int(1000 * (seconds / self.seconds(1000, columns)) ** (1 / self.rows_power))


@dataclass(frozen=True)
class Capabilities:
    """What a component needs from, and can do with, the data.

    needs_labels: only meaningful with labelled anomalies (skipped when y is None or has none).
    uses_labels: takes y in ``fit`` (resampling is only applied in front of such detectors).
    handles_categorical: accepts raw categorical codes rather than only numeric features.
    gpu: can use a GPU when one is assigned to the trial.
    iterative: trains in epochs and accepts ``epoch_callback`` in ``fit`` (early stopping).
    max_rows: above this many training rows the component is not proposed (None = no limit).
    min_labelled_anomalies: with needs_labels, the fewest labelled anomalies it can learn from.
    cost: its fitting cost as a function of the table's shape (:class:`Cost`; a conservative
    default when the plugin declares none), at its default parameters.
    fidelity: the integer parameter its cost grows in proportion to (boosting iterations, epochs),
    with its default value: a fit short of time lowers it before it drops rows (see
    ``automl_od.budget``). None: only rows can be dropped.
    """

    needs_labels: bool = False
    uses_labels: bool = False
    handles_categorical: bool = False
    gpu: bool = False
    iterative: bool = False
    max_rows: int | None = None
    min_labelled_anomalies: int = 1
    cost: Cost = field(default_factory=Cost)
    fidelity: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with these values, one phrase each (empty: nothing). The registry refuses
        a component whose capabilities have any (see :meth:`Component.problems`)."""
        found = [f"`{name}` must be True or False, but got ({name}={getattr(self, name)!r})"
                 for name in ("needs_labels", "uses_labels", "handles_categorical", "gpu", "iterative")
                 if not isinstance(getattr(self, name), bool)]
        if self.max_rows is not None and not (_is_int(self.max_rows) and self.max_rows > 0):
            found.append(f"`max_rows` must be None or a positive int, but got (max_rows={self.max_rows!r})")
        if not (_is_int(self.min_labelled_anomalies) and self.min_labelled_anomalies >= 1):
            found.append("`min_labelled_anomalies` must be an int >= 1, but got "
                         f"(min_labelled_anomalies={self.min_labelled_anomalies!r})")
        if not isinstance(self.cost, Cost):
            found.append(f"`cost` must be a Cost, but got (cost={self.cost!r})")
        if self.fidelity is not None and not (isinstance(self.fidelity, str) and self.fidelity):
            found.append(f"`fidelity` must be None or a parameter name, but got (fidelity={self.fidelity!r})")
        return found

    @property
    def takes_labels(self) -> bool:
        """Whether ``fit`` receives y (and a resampler in front of it changes anything)."""
        return self.uses_labels or self.needs_labels

    def unfit_reason(self, *, n_rows: int, n_labelled_anomalies: int | None) -> str | None:
        """Why this component should not be proposed for the data, or None if it fits."""
        if self.needs_labels and not n_labelled_anomalies:
            return "needs labelled anomalies"
        if self.needs_labels and (n_labelled_anomalies or 0) < self.min_labelled_anomalies:
            return (f"needs at least {self.min_labelled_anomalies} labelled anomalies (a validation fold's training "
                    f"part must hold one), got {n_labelled_anomalies}")
        if self.max_rows is not None and n_rows > self.max_rows:
            return f"{n_rows} training rows exceed its max_rows={self.max_rows}"
        return None


@dataclass(frozen=True)
class Component:
    """A registered component: ``factory(**params)`` builds a fresh, unfitted instance.

    Detectors build objects with ``fit(X, y=None)`` and ``anomaly_score(X)`` (higher = more
    abnormal); rankers with ``rank(X, y=None) -> list of column indices, best first``;
    resamplers with ``fit_resample(X, y) -> (X, y)``; controllers build an Optuna sampler and
    take ``seed`` as their only argument.

    space: the default search space of the factory's parameters, in the search-space format
    (see ``automl_od.spaces``). ``plugin`` and ``plugin_version`` are filled in by the registry.
    first_choice: a strong default; a search evaluates it first, with its default parameters,
    when it is in the space and fits the data (a warm start before the controller explores).
    """

    name: str
    kind: ComponentKind
    factory: Callable[..., Any]
    space: Mapping[str, Any] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    description: str = ""
    plugin: str = ""
    plugin_version: str = ""
    first_choice: bool = False

    def problems(self) -> list[str]:
        """What is wrong with this declaration, one phrase each (empty: nothing): its kind, factory,
        capabilities (:meth:`Capabilities.problems`; ``fidelity`` must be a factory parameter) and
        default space (parsed by :func:`automl_od.spaces.component_space`, naming only parameters
        the factory accepts). The registry refuses a component with any; cheap (no factory call)."""
        from automl_od.errors import SpaceError
        from automl_od.spaces import component_space

        found = []
        if not isinstance(self.name, str) or not self.name:
            found.append(f"`name` must be a non-empty string, but got (name={self.name!r})")
        if self.kind not in COMPONENT_KINDS:
            found.append(f"`kind` must be one of {', '.join(COMPONENT_KINDS)}, but got (kind={self.kind!r})")
        if not callable(self.factory):
            return [*found, f"`factory` must be callable, but got (factory={self.factory!r})"]
        accepted = self.accepted_parameters()
        if not isinstance(self.capabilities, Capabilities):
            found.append(f"`capabilities` must be a Capabilities, but got (capabilities={self.capabilities!r})")
        else:
            found += [f"capabilities: {problem}" for problem in self.capabilities.problems()]
            fidelity = self.capabilities.fidelity
            if isinstance(fidelity, str) and accepted is not None and fidelity not in accepted:
                found.append(f"capabilities: `fidelity` must name a parameter of the factory, but got (fidelity={fidelity!r}); "
                             f"accepted: {', '.join(sorted(accepted)) or 'none'}")
        if self.kind == "controller" and accepted is not None and "seed" not in accepted:
            found.append(f"a controller's factory must take `seed` (it is called as factory(seed=...)); it takes "
                         f"{', '.join(sorted(accepted)) or 'nothing'}")
        if self.kind in COMPONENT_KINDS:
            try:
                component_space(self, where="space")
            except SpaceError as exc:
                found.append(str(exc))
        return found

    def accepted_parameters(self) -> set[str] | None:
        """The keyword arguments the factory accepts, or None when it takes ``**kwargs`` (or has
        no signature to read, as some builtins)."""
        try:
            signature = inspect.signature(self.factory)
        except (TypeError, ValueError):
            return None
        names = set()
        for parameter in signature.parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                return None
            if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
                names.add(parameter.name)
        names.discard("self")
        return names

    def default_parameters(self) -> dict[str, Any]:
        """The factory's keyword defaults (what ``build()`` without params uses)."""
        return {name: p.default for name, p in inspect.signature(self.factory).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def build(self, params: dict[str, Any] | None = None, *, random_state: int | None = None) -> Any:
        """A fresh instance; ``random_state`` is passed when the factory takes it and params lack it."""
        params = dict(params or {})
        accepted = self.accepted_parameters()
        if random_state is not None and "random_state" not in params and (accepted is None or "random_state" in accepted):
            params["random_state"] = random_state
        return self.factory(**params)
