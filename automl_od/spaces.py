"""Search spaces: parse, validate and sample them (define-by-run, conditional on the choices).

A space names, per component kind, the components the search may choose and a space for each
one's parameters. In YAML (the built-ins' files, presets and ``--space`` files)::

    extends: default            # optional: start from a preset (fast, default, deep)
    detectors:                  # a section lists the components to choose from
      isolation_forest:         # "default" (or nothing) = the component's registered space
        n_estimators: {type: int, low: 50, high: 400, log: true}
        max_features: 1.0       # a plain value is fixed
      one_class_svm: default
    rankers: all                # "all" = every registered component of the kind, defaults
    resamplers: {none: default}

Parameter kinds: ``{type: float|int, low, high, log: bool, step: number}`` and
``{type: categorical, choices: [...]}``; anything else is a fixed value. A component's entry is
merged over its registered default space, so naming one parameter overrides just that one.
Rankers also take ``keep``: the fraction of ranked columns handed on (top-k selection).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_od.errors import SpaceError

if TYPE_CHECKING:
    import optuna

    from automl_od.components import Component, ComponentKind
    from automl_od.registry import Registry

SECTIONS = {"detectors": "detector", "rankers": "ranker", "resamplers": "resampler"}
TOP_LEVEL_KEYS = {"extends", "description", *SECTIONS}
PRESETS = ("fast", "default", "deep")
#: Parameters the pipeline consumes itself, per kind, on top of the factory's own.
PIPELINE_PARAMETERS = {"ranker": {"keep"}, "detector": set(), "resampler": set()}


#: The kinds of :class:`Parameter`: the three distributions and a fixed value.
PARAMETER_KINDS = ("float", "int", "categorical", "fixed")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Parameter:
    """One parameter's domain; ``kind`` is float, int, categorical or fixed.

    It checks itself when built, as Optuna's distributions do: a bad domain raises
    :class:`SpaceError` naming the values ("`low <= high` must hold, but got (low=5, high=1)");
    :func:`parse_parameter` adds where the domain was written.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind not in PARAMETER_KINDS:
            raise SpaceError(f"`kind` must be one of {', '.join(PARAMETER_KINDS)}, but got (kind={self.kind!r})")
        if self.kind == "categorical":
            if not isinstance(self.choices, tuple | list) or not self.choices:
                raise SpaceError(f"categorical needs a non-empty list 'choices', got {self.choices!r}")
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.kind in ("float", "int"):
            self._check_range()

    def _check_range(self) -> None:
        for key in ("low", "high"):
            bound = getattr(self, key)
            if bound is None:
                raise SpaceError(f"type {self.kind} needs '{key}'")
            if not _is_number(bound) or not math.isfinite(bound):
                raise SpaceError(f"'{key}' must be a finite number, got {bound!r}")
        low, high, step = float(self.low), float(self.high), self.step  # type: ignore[arg-type]
        if not low <= high:
            raise SpaceError(f"`low <= high` must hold, but got (low={self.low}, high={self.high})")
        if not isinstance(self.log, bool):
            raise SpaceError(f"'log' must be true or false, got {self.log!r}")
        if self.log and not low > 0:
            raise SpaceError(f"a log-scale range needs low > 0, but got (low={self.low}, high={self.high})")
        if step is not None:
            if not _is_number(step) or not 0 < step < math.inf:
                raise SpaceError(f"'step' must be a positive number, got {step!r}")
            if self.log:
                raise SpaceError(f"'step' and 'log: true' cannot be combined, but got (step={step}, log=True)")
        if self.kind == "int" and not all(float(v).is_integer() for v in (low, high, 1 if step is None else step)):
            raise SpaceError(f"an int range needs whole numbers, but got (low={self.low}, high={self.high}, step={step})")

    def admits(self, value: Any) -> bool:
        """Whether ``value`` lies in this domain (a warm-start value must)."""
        if self.kind == "fixed":
            return bool(value == self.value)
        if self.kind == "categorical":
            return any(type(value) is type(choice) and value == choice for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not float(value).is_integer():
            return False
        if self.low is None or self.high is None or not self.low <= value <= self.high:
            return False
        return not self.step or math.isclose(((value - self.low) / self.step) % 1, 0, abs_tol=1e-9)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            step = int(self.step) if self.step else 1
            return trial.suggest_int(name, int(self.low), int(self.high), step=step, log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)  # type: ignore[arg-type]


def parse_parameter(spec: Any, where: str) -> Parameter:
    """A :class:`Parameter` from its file form (a mapping with ``type``; anything else is a fixed
    value). The domain checks are the Parameter's own; errors are prefixed with ``where``."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        return Parameter("fixed", value=spec)
    kind = spec["type"]
    # the file form: which types a file may name and which keys each takes (the domain checks are below)
    allowed = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
               "categorical": {"choices"}}
    if not isinstance(kind, str) or kind not in allowed:
        raise SpaceError(
            f"{where}: unknown distribution type {kind!r}; use one of float, int, categorical "
            "(or a plain value for a fixed parameter)"
        )
    unknown = set(spec) - allowed[kind] - {"type"}
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind}; allowed: {sorted(allowed[kind])}")
    try:
        if kind == "categorical":
            return Parameter(kind, choices=spec.get("choices"))  # type: ignore[arg-type]
        return Parameter(kind, low=spec.get("low"), high=spec.get("high"), log=spec.get("log", False), step=spec.get("step"))
    except SpaceError as exc:
        raise SpaceError(f"{where}: {exc}") from None


@dataclass
class SearchSpace:
    """Validated space: per kind, the chosen components and each one's parameter domains."""

    components: dict[str, dict[str, dict[str, Parameter]]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return list(self.components.get(kind, {}))

    def restricted(self, kind: str, keep: list[str]) -> SearchSpace:
        components = dict(self.components)
        components[kind] = {n: p for n, p in self.components[kind].items() if n in keep}
        return SearchSpace(components)

    def warm_start_points(self, registry: Registry, *, resample: bool) -> list[dict[str, Any]]:
        """One configuration per ``first_choice`` detector in the space, with its default
        parameters (where the space allows them), the first-choice ranker (all columns) and
        resampler (none) where there is a choice, as Optuna parameter names. The search
        evaluates these first, so a strong default is always on the leaderboard."""
        fixed: dict[str, Any] = {}
        kinds: list[ComponentKind] = ["ranker", "resampler"] if resample else ["ranker"]
        for kind in kinds:
            firsts = [n for n in self.names(kind) if registry.get(kind, n).first_choice]
            if firsts and len(self.names(kind)) > 1:
                fixed[kind] = firsts[0]
            name = fixed.get(kind, self.names(kind)[0] if len(self.names(kind)) == 1 else None)
            if name is not None:
                fixed.update(self._defaults(kind, name, registry))
        points = []
        for name in self.names("detector"):
            if registry.get("detector", name).first_choice:
                point = dict(fixed)
                if len(self.names("detector")) > 1:
                    point["detector"] = name
                point.update(self._defaults("detector", name, registry))
                points.append(point)
        return points

    def _defaults(self, kind: ComponentKind, name: str, registry: Registry) -> dict[str, Any]:
        defaults = registry.get(kind, name).default_parameters()
        if kind == "ranker":
            defaults.setdefault("keep", 1.0)
        point = {}
        for pname, parameter in self.components[kind][name].items():
            if parameter.kind != "fixed" and pname in defaults and parameter.admits(defaults[pname]):
                point[f"{kind}.{name}.{pname}"] = defaults[pname]
        return point

    def sample(self, trial: optuna.Trial, *, resample: bool, label_detectors: Collection[str] | None = None) -> dict[str, Any]:
        """Sample one pipeline configuration, asking only for the chosen components' params.

        A resampler is sampled only with ``resample`` and, given ``label_detectors``, only in front
        of one of them: the others never see labels, so any resampler would give the same pipeline."""
        config: dict[str, Any] = {}
        for kind in ("ranker", "detector", "resampler"):
            if kind == "resampler" and (not resample or (label_detectors is not None and config["detector"] not in label_detectors)):
                config["resampler"], config["resampler_params"] = None, {}
                continue
            names = self.names(kind)
            name = names[0] if len(names) == 1 else trial.suggest_categorical(kind, names)
            params = {
                pname: parameter.suggest(trial, f"{kind}.{name}.{pname}")
                for pname, parameter in self.components[kind][name].items()
            }
            config[kind], config[f"{kind}_params"] = name, params
        config["keep"] = float(config["ranker_params"].pop("keep", 1.0))
        return config


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    import yaml  # here, not at import: detector modules import this module on torch-only machines

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpaceError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a space file must be a mapping, got {type(data).__name__}")
    return data


def builtin_space_file(name: str) -> dict[str, Any]:
    """A YAML file shipped in ``automl_od.search_spaces`` (the built-ins' spaces, presets)."""
    text = resources.files("automl_od.search_spaces").joinpath(name).read_text(encoding="utf-8")
    return _load_yaml(text, f"automl_od/search_spaces/{name}")


def load_space_document(source: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Resolve a preset name, a file path or a dict into (document, description of source)."""
    if source is None:
        source = "default"
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), "space"
    if isinstance(source, str) and source in PRESETS:
        return builtin_space_file(f"presets/{source}.yaml"), f"preset {source!r}"
    path = Path(source)
    if not path.is_file():
        raise SpaceError(
            f"space file {str(path)!r} not found (give a YAML file or a preset: {', '.join(PRESETS)})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"space file {str(path)!r} cannot be read: {exc}") from None
    return _load_yaml(text, str(path)), str(path)


def resolve_space(source: str | Path | Mapping[str, Any] | None, registry: Registry) -> SearchSpace:
    """Load, merge over presets and component defaults, and validate a space."""
    document, origin = load_space_document(source)
    chain = [(document, origin)]
    seen = {origin}
    while "extends" in chain[-1][0]:
        base = chain[-1][0]["extends"]
        if base not in PRESETS:
            raise SpaceError(f"{chain[-1][1]}: 'extends' must name a preset ({', '.join(PRESETS)}), got {base!r}")
        doc, base_origin = load_space_document(base)
        if base_origin in seen:
            raise SpaceError(f"{origin}: presets extend each other in a cycle ({base_origin})")
        seen.add(base_origin)
        chain.append((doc, base_origin))
    space = SearchSpace()
    for section, kind in SECTIONS.items():
        # the most specific document that names the section decides its components
        for doc, where in chain:
            unknown = set(doc) - TOP_LEVEL_KEYS
            if unknown:
                raise SpaceError(f"{where}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_KEYS)}")
        entries, where = next(((d[section], w) for d, w in chain if section in d), ("all", "defaults"))
        space.components[kind] = _resolve_section(entries, kind, section, where, registry)
    return space


def _resolve_section(entries: Any, kind: str, section: str, where: str, registry: Registry) -> dict[str, dict[str, Parameter]]:
    registered = registry.components(kind)  # type: ignore[arg-type]
    if entries == "all" or entries is None:
        entries = {name: "default" for name in registered}
    if isinstance(entries, list):
        entries = {name: "default" for name in entries}
    if not isinstance(entries, Mapping) or not entries:
        raise SpaceError(f"{where}: '{section}' must be 'all', a list of names or a mapping name -> space")
    resolved: dict[str, dict[str, Parameter]] = {}
    for name, overrides in entries.items():
        if name not in registered:
            raise SpaceError(
                f"{where}: unknown {kind} {name!r} in '{section}'; registered: {', '.join(sorted(registered)) or 'none'}"
            )
        resolved[name] = component_space(registered[name], overrides, where=f"{where}: {section}.{name}")
    return resolved


def component_space(component: Component, overrides: Any = None, *, where: str) -> dict[str, Parameter]:
    """The parameter domains of ``component``: its registered space with ``overrides`` (a mapping of
    parameters; None or "default" for none) merged over it, each parsed, and each one a parameter
    the factory accepts (or the pipeline consumes, see ``PIPELINE_PARAMETERS``). The registry checks
    every component's own space with this when it registers; errors start with ``where``."""
    if not isinstance(component.space, Mapping):
        raise SpaceError(f"{where}: a component's space must be a mapping of parameter names, got {component.space!r}")
    merged = dict(component.space)
    if overrides is not None and not (isinstance(overrides, str) and overrides == "default"):
        if not isinstance(overrides, Mapping):
            raise SpaceError(f"{where} must be 'default' or a mapping of parameters, got {overrides!r}")
        merged.update(overrides)
    kind, name = component.kind, component.name
    accepted = component.accepted_parameters()
    extra = PIPELINE_PARAMETERS.get(kind, set())
    params = {}
    for pname, spec in merged.items():
        path = f"{where}.{pname}"
        if accepted is not None and pname not in accepted | extra:
            raise SpaceError(
                f"{path}: {kind} {name!r} does not accept parameter {pname!r}; "
                f"accepted: {', '.join(sorted(accepted | extra))}"
            )
        params[pname] = parse_parameter(spec, path)
    if kind == "ranker":
        keep = params.get("keep", Parameter("fixed", value=1.0))
        bounds = {"fixed": [keep.value], "categorical": list(keep.choices)}.get(keep.kind, [keep.low, keep.high])
        if not all(_is_number(v) and 0 < v <= 1 for v in bounds):
            raise SpaceError(f"{where}.keep must lie in (0, 1], but got {', '.join(map(repr, bounds))}")
        params["keep"] = keep
    return params
