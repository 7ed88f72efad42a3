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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_od.errors import SpaceError

if TYPE_CHECKING:
    import optuna

    from automl_od.components import ComponentKind
    from automl_od.registry import Registry

SECTIONS = {"detectors": "detector", "rankers": "ranker", "resamplers": "resampler"}
TOP_LEVEL_KEYS = {"extends", "description", *SECTIONS}
PRESETS = ("fast", "default", "deep")
#: Parameters the pipeline consumes itself, per kind, on top of the factory's own.
PIPELINE_PARAMETERS = {"ranker": {"keep"}, "detector": set(), "resampler": set()}


@dataclass(frozen=True)
class Parameter:
    """One parameter's domain; ``kind`` is float, int, categorical or fixed."""

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    value: Any = None

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
    """Build and validate a :class:`Parameter` from its file form."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        return Parameter("fixed", value=spec)
    kind = spec["type"]
    allowed = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
               "categorical": {"choices"}}
    if kind not in allowed:
        raise SpaceError(
            f"{where}: unknown distribution type {kind!r}; use one of float, int, categorical "
            "(or a plain value for a fixed parameter)"
        )
    unknown = set(spec) - allowed[kind] - {"type"}
    if unknown:
        raise SpaceError(f"{where}: unknown key(s) {sorted(unknown)} for type {kind}; allowed: {sorted(allowed[kind])}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: categorical needs a non-empty list 'choices', got {choices!r}")
        return Parameter("categorical", choices=tuple(choices))
    for key in ("low", "high"):
        if key not in spec:
            raise SpaceError(f"{where}: type {kind} needs '{key}'")
        if not isinstance(spec[key], int | float) or isinstance(spec[key], bool) or not math.isfinite(spec[key]):
            raise SpaceError(f"{where}: '{key}' must be a finite number, got {spec[key]!r}")
    low, high = spec["low"], spec["high"]
    log, step = bool(spec.get("log", False)), spec.get("step")
    if low > high:
        raise SpaceError(f"{where}: `low <= high` must hold, but got (low={low}, high={high})")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log-scale range needs low > 0, but got low={low}")
    if step is not None:
        if not isinstance(step, int | float) or step <= 0:
            raise SpaceError(f"{where}: 'step' must be a positive number, got {step!r}")
        if log:
            raise SpaceError(f"{where}: 'step' and 'log: true' cannot be combined")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise SpaceError(f"{where}: an int range needs whole numbers, got low={low}, high={high}, step={step}")
    return Parameter(kind, low=low, high=high, log=log, step=step)


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
        component = registered[name]
        merged = dict(component.space)
        if overrides not in (None, "default"):
            if not isinstance(overrides, Mapping):
                raise SpaceError(f"{where}: {section}.{name} must be 'default' or a mapping of parameters, got {overrides!r}")
            merged.update(overrides)
        accepted = component.accepted_parameters()
        params = {}
        for pname, spec in merged.items():
            path = f"{where}: {section}.{name}.{pname}"
            if accepted is not None and pname not in accepted | PIPELINE_PARAMETERS[kind]:
                raise SpaceError(
                    f"{path}: {kind} {name!r} does not accept parameter {pname!r}; "
                    f"accepted: {', '.join(sorted(accepted | PIPELINE_PARAMETERS[kind]))}"
                )
            params[pname] = parse_parameter(spec, path)
        if kind == "ranker":
            keep = params.get("keep", Parameter("fixed", value=1.0))
            if keep.kind != "categorical" and not (0 < (keep.low if keep.kind != "fixed" else keep.value) <= (keep.high if keep.kind != "fixed" else keep.value) <= 1):  # type: ignore[operator]
                raise SpaceError(f"{where}: {section}.{name}.keep must lie in (0, 1]")
            params["keep"] = keep
        resolved[name] = params
    return resolved
