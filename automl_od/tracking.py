"""MLflow tracking and model-registry handoff: all of automl-od's MLflow glue, in one place.

A search is a parent run; each trial a nested child run, logged from the driver (the Tune
callback that records trials), so trials running on other machines of a Ray cluster are
logged too and a SQLite store never sees concurrent writers. At the end the parent run gets
the leaderboard, the schema, plots, and the refitted winner as a pyfunc model that carries
its own code and pinned requirements; ``register_as`` registers it and points an alias at it.

With no tracking URI (argument or ``MLFLOW_TRACKING_URI``) the store is a local SQLite file
under ``$AUTOML_OD_HOME`` (default ``~/.automl-od``): ``mlflow.db`` plus ``artifacts/``, the
same from every folder, so ``automl-od predict models:/NAME@champion`` finds it again.
Tracking never kills a search: failures while logging are collected and reported at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import polars as pl
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from automl_od.errors import UserInputError, notify
from automl_od.records import METRICS, TRIALS_FILE, TrialRecord, read_trials
from automl_od.settings import TrackingSettings

if TYPE_CHECKING:
    from automl_od.selection import Selection

HOME_ENV = "AUTOML_OD_HOME"
TRACKING_FILE = "tracking.json"  # in a search's --out folder: the parent run, for --resume
PIPELINE_FILE = "pipeline.pkl"  # the fitted pipeline, pickled once: the model's artifact and the requirements probe
MODEL_NAME = "model"  # the model's name inside the parent run
_MAX_PARAM = 6000
_GIVE_UP_AFTER = 3  # consecutive logging failures before tracking stops trying for this search


#: How long a search waits for another process that is creating the same SQLite store.
STORE_LOCK_S = 120.0


class TrackingUnavailable(UserInputError):
    """The tracking store cannot be reached or used; raised before the search starts."""


def tracking_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".automl-od").expanduser().resolve()


def resolve_tracking_uri(uri: str | None = None) -> str:
    """An explicit URI, else ``MLFLOW_TRACKING_URI``, else the embedded SQLite store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{tracking_home() / 'mlflow.db'}"


def _artifact_location(uri: str) -> str | None:
    """Local stores keep artifacts next to the database (MLflow's default is ``./mlruns`` of
    whichever folder the search ran in); servers choose their own."""
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        folder = database.parent / ("artifacts" if database.name == "mlflow.db" else f"{database.stem}-artifacts")
        return folder.resolve().as_uri()
    return None


@contextlib.contextmanager
def restored_environ(*keys: str) -> Iterator[None]:
    """Put these environment variables back as they were (set, or absent) when the block ends."""
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """Fail fast against a dead server instead of MLflow's default minutes of retries."""
    with restored_environ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        yield


def _probe_server(uri: str, timeout_s: float = 5.0) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailable(f"the MLflow tracking server at {uri} is unreachable ({reason}); start it, point "
                                  "--tracking-uri elsewhere, or run with --no-tracking (or --tracking-optional to "
                                  "search anyway and log nothing)") from None


def _store_lock(database: Path) -> contextlib.AbstractContextManager[Any]:
    """One process at a time creates, migrates and opens a SQLite store (MLflow creates its tables and runs
    its migrations on first use, and two processes doing so at once break each other: "table already
    exists", "duplicate column name"); a file lock beside the database, held for seconds at most."""
    from filelock import FileLock

    return FileLock(str(database) + ".lock", timeout=STORE_LOCK_S)


def open_store(uri: str, experiment: str) -> tuple[MlflowClient, str]:
    """A client and the experiment's id, checked before anything runs."""
    scheme = urllib.parse.urlparse(uri).scheme
    creating: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if scheme in ("http", "https"):
        _probe_server(uri)
    elif scheme == "sqlite":
        database = Path(uri.removeprefix("sqlite:///"))
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingUnavailable(f"cannot create the tracking store's folder {database.parent}: {exc.strerror}; "
                                      f"set {HOME_ENV} or --tracking-uri to a writable place") from None
        creating = _store_lock(database)
    try:
        with creating, _quick_http(), _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            found = client.get_experiment_by_name(experiment)
            if found is None:
                experiment_id = client.create_experiment(experiment, artifact_location=_artifact_location(uri))
            else:
                experiment_id = found.experiment_id
    except Exception as exc:  # any store error: a bad scheme, a locked or foreign database, a refusing server
        raise TrackingUnavailable(f"cannot use the tracking store {uri!r}: {' '.join(str(exc).split())[:300]}; fix "
                                  "--tracking-uri / MLFLOW_TRACKING_URI or run with --no-tracking") from None
    return client, experiment_id


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_PARAM]


def schema_of(frame: pl.DataFrame) -> dict[str, Any]:
    """Column names and types and the row count: what the parent run says about the data."""
    return {"rows": frame.height, "columns": [{"name": c, "dtype": str(t), "nulls": int(frame.get_column(c).null_count())}
                                              for c, t in frame.schema.items()]}


class SearchTracker:
    """The parent run of one search; ``log_trial`` is the runner's ``on_record`` hook."""

    def __init__(self, client: MlflowClient, uri: str, run_id: str, settings: TrackingSettings) -> None:
        self.client, self.uri, self.run_id, self.settings = client, uri, run_id, settings
        self.errors: list[str] = []
        self._failures_in_a_row = 0
        self._trials = 0
        self._best: float | None = None
        self.model_uri: str | None = None
        self.registered_version: str | None = None

    @classmethod
    def start(cls, settings: TrackingSettings, params: dict[str, Any], schema: dict[str, Any], *,
              out_dir: Path | None = None, resume: bool = False) -> SearchTracker | None:
        """Open the store and start (or, on resume, reopen) the parent run. An unreachable store
        raises :class:`TrackingUnavailable`, or with ``required=False`` warns and returns None."""
        uri = resolve_tracking_uri(settings.uri)
        try:
            client, experiment_id = open_store(uri, settings.experiment)
        except TrackingUnavailable as exc:
            if settings.required:
                raise
            notify(f"tracking is off for this search: {exc}")
            return None
        saved = out_dir / TRACKING_FILE if out_dir else None
        if resume and saved and saved.exists():
            state = json.loads(saved.read_text(encoding="utf-8"))
            if state.get("uri") == uri:
                client.update_run(state["run_id"], status="RUNNING")
                tracker = cls(client, uri, state["run_id"], settings)
                rows = read_trials(saved.with_name(TRIALS_FILE))  # the runner's record of the finished trials
                rewards = [float(r.reward) for r in rows if r.reward is not None and r.ok]
                tracker._trials, tracker._best = len(rows), max(rewards, default=None)
                return tracker
        from automl_od import __version__

        run = client.create_run(experiment_id, run_name=settings.run_name,
                                tags={"automl_od.kind": "search", "automl_od.version": __version__})
        tracker = cls(client, uri, run.info.run_id, settings)
        tracker._safely("search settings", lambda: client.log_batch(
            run.info.run_id, params=[Param(k, _text(v)) for k, v in params.items() if v is not None]))
        tracker._safely("data schema", lambda: client.log_dict(run.info.run_id, schema, "schema.json"))
        tracker._safely("data schema", lambda: client.log_batch(run.info.run_id, params=[
            Param("data.rows", str(schema["rows"])), Param("data.columns", str(len(schema["columns"])))]))
        tracker._save(saved)
        return tracker

    def _save(self, path: Path | None) -> None:
        if path is not None:
            from automl_od.provenance import made_with

            path.write_text(json.dumps({"uri": self.uri, "run_id": self.run_id, "made_with": made_with()}), encoding="utf-8")

    def _safely(self, what: str, action: Any) -> Any:
        if self._failures_in_a_row >= _GIVE_UP_AFTER:
            self.errors.append(f"{what}: not logged (tracking gave up after {_GIVE_UP_AFTER} failures in a row)")
            return None
        try:
            with _quick_http():
                result = action()
        except Exception as exc:  # a search never dies because of tracking
            self._failures_in_a_row += 1
            self.errors.append(f"{what}: {' '.join(str(exc).split())[:200]}")
            return None
        self._failures_in_a_row = 0
        return result

    def log_trial(self, record: TrialRecord, plugins: dict[str, str] | None = None) -> None:
        """One nested child run per recorded trial: parameters, metrics, status, reason, timing,
        plugin versions, and the per-epoch validation rewards as metric steps."""
        self._trials += 1
        if record.validated:
            self._best = record.reward if self._best is None else max(self._best, record.reward)  # type: ignore[type-var]
        now = int(time.time() * 1000)
        started = now - int(1000 * float(record.duration_s or 0.0))
        config = record.config
        params = [Param(k, _text(v)) for k, v in (config.flatten() if config else {}).items()]
        metrics = [Metric(k, float(getattr(record, k)), now, 0) for k in METRICS
                   if isinstance(getattr(record, k), int | float) and np.isfinite(getattr(record, k))]
        metrics += [Metric("epoch_reward", float(reward), now, int(epoch)) for epoch, reward in record.history or []
                    if reward is not None and np.isfinite(reward)]
        status = record.status
        tags = {MLFLOW_PARENT_RUN_ID: self.run_id, MLFLOW_RUN_NAME: f"trial {self._trials}: {record.detector}",
                "status": status, "trial_id": record.trial_id}
        if record.reason:
            tags["failure_reason"] = record.reason[:5000]
        if record.resampling:
            tags["resampling"] = record.resampling[:5000]
        for kind in ("detector", "ranker", "resampler"):
            name = getattr(config, kind) if config else None
            if name and plugins and name in plugins:
                tags[f"plugin.{kind}"] = plugins[name]

        def log() -> None:
            run = self.client.create_run(self._experiment_id(), start_time=started, tags=tags)
            self.client.log_batch(run.info.run_id, metrics=metrics, params=params)
            self.client.set_terminated(run.info.run_id, {"ok": "FINISHED", "stopped early": "KILLED"}.get(status, "FAILED"), now)
            if self._best is not None:
                self.client.log_metric(self.run_id, "best_reward", self._best, now, self._trials)

        self._safely(f"trial {record.trial_id}", log)

    def _experiment_id(self) -> str:
        if not hasattr(self, "_experiment"):
            self._experiment = self.client.get_run(self.run_id).info.experiment_id
        return self._experiment

    def finish(self, selection: Selection, frame: pl.DataFrame, *, columns: int) -> None:
        """The trials (unless the search logged them as they finished), the leaderboard, plots and the
        winning pipeline (a pyfunc model, registered with ``register_as``); then close the parent run.
        The selection's ``validation`` (labels and the winner's out-of-fold scores) gives ROC and
        precision-recall curves that are not in-sample. ``columns``: the user's columns."""
        if not selection.logged:
            for record in selection.trials:
                self.log_trial(record)
        run_id, now, board = self.run_id, int(time.time() * 1000), selection.leaderboard
        self._safely("summary", lambda: self.client.log_batch(run_id, metrics=[
            *([Metric("best_reward", selection.score, now, self._trials)] if np.isfinite(selection.score) else []),
            Metric("trials", float(board.height), now, 0),
            Metric("failed_trials", float((board.get_column("status") != "ok").sum()), now, 0),
        ], tags=[RunTag("best_detector", selection.config.detector), RunTag("evaluation", selection.evaluation)]))
        with tempfile.TemporaryDirectory(prefix="automl_od_mlflow_") as tmp:
            path = Path(tmp) / "leaderboard.csv"
            board.write_csv(path)
            self._safely("leaderboard", lambda: self.client.log_artifact(run_id, str(path)))
            for name, figure in self._safely("plots", lambda: _plots(selection, frame)) or []:
                self._safely(f"plot {name}", lambda name=name, figure=figure: self.client.log_figure(run_id, figure, f"plots/{name}.png"))
                _close(figure)
            self.model_uri = self._safely("model", lambda: log_pipeline_model(self, selection.pipeline, frame, Path(tmp)))
        if self.model_uri and self.settings.register_as:
            description = f"automl-od run {self.run_id}: {selection.description}; {frame.height} rows x {columns} columns."
            self.registered_version = self._safely("registration", lambda: self._register(description))
        self._safely("run status", lambda: self.client.set_terminated(run_id, "FINISHED"))

    def _register(self, description: str) -> str:
        name, alias = str(self.settings.register_as), self.settings.alias
        with _tracking_uri(self.uri):
            version = mlflow.register_model(str(self.model_uri), name, await_registration_for=60).version
        self.client.update_model_version(name, str(version), description=description)
        self.client.set_registered_model_alias(name, alias, str(version))
        return str(version)

    def abort(self, status: str = "FAILED") -> None:
        self._safely("run status", lambda: self.client.set_terminated(self.run_id, status))

    def report(self) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:3]) + (f"; and {len(self.errors) - 3} more" if len(self.errors) > 3 else "")
            notify(f"tracking: {len(self.errors)} item(s) were not logged to {self.uri}: {shown}")


@contextlib.contextmanager
def tracked_run(settings: TrackingSettings, params: dict[str, Any], schema: dict[str, Any], *, out_dir: Path | None = None,
                resume: bool = False) -> Iterator[SearchTracker | None]:
    """The parent run of one fit, open while the fit runs: ended FAILED (KILLED on an interrupt) when
    the fit raises; the fit ends it FINISHED with :meth:`SearchTracker.finish`."""
    tracker = SearchTracker.start(settings, params, schema, out_dir=out_dir, resume=resume)
    try:
        yield tracker
    except BaseException as exc:
        if tracker:
            tracker.abort("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API (model logging, registration) reads a process-wide URI: set it
    briefly, and keep MLflow's progress bars and info lines out of the CLI's output."""
    # MLflow's setters also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into the environment (for
    # subprocesses) and never clear the registry's: put both back as they were, or every process the user
    # starts afterwards (``mlflow models serve``, a notebook's next job) would read automl-od's store
    previous = os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with restored_environ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            with _quiet():
                yield
        finally:
            mlflow.set_tracking_uri(previous[0] or "")
            mlflow.set_registry_uri(previous[1] or "")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's info lines (database set-up, "Created version ...") stay out of the CLI's output."""
    import io
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _plots(selection: Selection, frame: pl.DataFrame) -> list[tuple[str, Any]]:
    """What the choice was based on: the search's best-so-far reward against trials, or the
    recommender's predicted AUROC per candidate (no trials ran); the winner's raw scores on the
    search rows with the is_outlier threshold; with the selection's ``validation``, ROC and
    precision-recall curves of the winner's out-of-fold scores."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figures = []
    trials, validation = selection.trials, selection.validation
    if selection.strategy == "meta":
        board = selection.leaderboard
        fig, ax = plt.subplots(figsize=(7, 0.35 * board.height + 1.5))
        ax.barh(board.get_column("detector").to_list()[::-1], board.get_column("reward").to_list()[::-1], color="#4477aa")
        ax.set(xlabel="predicted test AUROC (meta-learned, from the nearest library sets)",
               title="recommended ensembles (no trials ran)")
        figures.append(("recommendations", fig))
    elif selection.strategy == "search":
        rewards = np.array([t.reward if t.validated else np.nan for t in trials], dtype=float)
        best = np.fmax.accumulate(np.where(np.isnan(rewards), -np.inf, rewards)) if len(rewards) else rewards
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(rewards) + 1), rewards, "o", alpha=0.5, label="trial reward (failed: missing)")
        ax.step(np.arange(1, len(best) + 1), np.where(np.isinf(best), np.nan, best), where="post", label="best so far")
        ax.set(xlabel="trial (in finishing order)", ylabel="validation reward", title="search progress")
        ax.legend()
        figures.append(("best_so_far", fig))
    pipeline = selection.pipeline
    raw = pipeline.raw_score(frame)
    # the raw score at which is_outlier starts: the empirical scale's inverse at the threshold
    cut = float(np.interp(pipeline.threshold_, pipeline.scale_.positions_, pipeline.scale_.reference_))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(raw, bins=60, color="grey")
    ax.axvline(cut, color="red", label=f"is_outlier threshold (top {1 - pipeline.threshold_:.0%} of training rows)")
    ax.set(xlabel="raw score (detector's own scale, higher = more abnormal)", ylabel="rows",
           title=f"winner's scores on the search rows ({selection.config.detector})")
    ax.legend()
    figures.append(("score_distribution", fig))
    if validation is not None and 0 < validation[0].sum() < len(validation[0]):
        from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

        for name, display in (("roc", RocCurveDisplay), ("precision_recall", PrecisionRecallDisplay)):
            fig, ax = plt.subplots(figsize=(5, 5))
            display.from_predictions(validation[0], validation[1], ax=ax, name="winner, out of fold (validation folds)")
            figures.append((name, fig))
    for _, figure in figures:
        figure.tight_layout()
    return figures


def _close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


# --- the winner as a pyfunc model -----------------------------------------------------------

class OutlierPipelineModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """pyfunc face of a fitted :class:`~automl_od.pipeline.OutlierPipeline`: ``predict``
    returns ``anomaly_score`` and ``is_outlier`` per row, as everywhere else in automl-od."""

    def load_context(self, context: Any) -> None:
        import pickle

        with open(context.artifacts["pipeline"], "rb") as handle:
            self.pipeline = pickle.load(handle)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from automl_od.data import format_notices

        frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
        contract = getattr(self.pipeline, "input_schema_", None)  # the column contract, as in the API and the CLI
        if contract is not None:
            notices: dict[str, int] = {}
            frame = contract.transform(frame, notices=notices)
            for notice in format_notices(notices):
                notify(notice)
        return self.pipeline.score_frame(frame).to_pandas()


_MLFLOW_TYPES = {"Int": "long", "UInt": "long", "Float": "double", "Boolean": "boolean", "String": "string",
                 "Categorical": "string", "Enum": "string", "Datetime": "datetime", "Date": "datetime"}


def _mlflow_type(dtype: pl.DataType) -> str:
    name = str(dtype)
    for prefix, kind in _MLFLOW_TYPES.items():
        if name.startswith(prefix):
            return kind
    return "string"


def signature_and_example(frame: pl.DataFrame, example_rows: int = 0) -> tuple[Any, Any]:
    """The model's input signature and example. The example is built from the schema (zeros,
    False, "example"), not from the user's rows, unless ``example_rows`` asks for real ones."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    kinds = {name: _mlflow_type(dtype) for name, dtype in frame.schema.items()}
    inputs = Schema([ColSpec(kind, name, required=frame.get_column(name).null_count() == 0) for name, kind in kinds.items()])
    outputs = Schema([ColSpec("double", "anomaly_score"), ColSpec("long", "is_outlier")])
    if example_rows > 0:
        example = frame.head(example_rows).to_pandas()
    else:
        filler = {"long": 0, "double": 0.0, "boolean": False, "string": "example", "datetime": pd.Timestamp("2000-01-01")}
        example = pd.DataFrame({name: [filler[kind]] for name, kind in kinds.items()})
        for name, kind in kinds.items():
            if kind == "long":
                example[name] = example[name].astype("int64")
    return ModelSignature(inputs=inputs, outputs=outputs), example


def _stage_code(target: Path) -> Path:
    """automl-od's own code, laid out as an importable package (editable installs map
    ``automl_od.plugins`` to another folder), for the model's ``code_paths``."""
    import importlib

    package = target / "automl_od"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("automl_od", "automl_od.plugins", "automl_od.search_spaces"):
        source = Path(list(importlib.import_module(name).__path__)[0])
        shutil.copytree(source, package.joinpath(*name.split(".")[1:]), ignore=ignore, dirs_exist_ok=True)
    return package


_CAPTURE = """
import pickle, sys, pandas
sys.path.insert(0, sys.argv[1])
direct = set()
class Recorder(pickle.Unpickler):
    def find_class(self, module, name):
        direct.add(module.split(".")[0])
        return super().find_class(module, name)
with open(sys.argv[2], "rb") as handle:
    pipeline = Recorder(handle).load()
pipeline.score_frame(__import__("polars").from_pandas(pandas.read_pickle(sys.argv[3])))
print(" ".join(sorted(direct)))
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _distributions(modules: set[str], by_module: Mapping[str, list[str]]) -> set[str]:
    names = {d for m in modules - set(sys.stdlib_module_names) for d in by_module.get(m, [])}
    return {d for d in names if _canonical(d) != "automl-od"}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _unconditional_requirements(name: str) -> set[str]:
    from packaging.requirements import Requirement

    found: set[str] = set()
    try:
        texts = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return found
    for text in texts:
        requirement = Requirement(text)
        if requirement.marker is None:
            found.add(_canonical(requirement.name))
    return found


def _dependencies(name: str, requires: dict[str, set[str]]) -> set[str]:
    """Every distribution ``name`` needs, transitively (unconditional requirements only);
    ``requires`` memoises each distribution's own requirements (reading them dominates)."""
    seen: set[str] = set()
    todo = [_canonical(name)]
    while todo:
        current = todo.pop()
        if current not in requires:
            requires[current] = _unconditional_requirements(current)
        for requirement in requires[current]:
            if requirement not in seen:
                seen.add(requirement)
                todo.append(requirement)
    return seen


def model_requirements(pipeline_file: Path, example: Any, tmp: Path, code_root: Path) -> list[str]:
    """Pinned pip requirements of a fitted pipeline, found in a fresh interpreter the way
    MLflow's own inference works: the distributions of every module that unpickling and
    scoring it imports, less those another listed one already requires (the packages its
    pickle names directly, such as scikit-learn, stay pinned), plus mlflow and pandas for the
    pyfunc interface. automl-od itself travels with the model as code."""
    example_file = tmp / "example.pkl"
    example.to_pickle(example_file)
    completed = subprocess.run([sys.executable, "-c", _CAPTURE, str(code_root), str(pipeline_file), str(example_file)],
                               capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONNOUSERSITE": "1"})
    if completed.returncode != 0:
        raise RuntimeError(f"the pipeline does not load in a fresh interpreter: {completed.stderr.strip()[-300:]}")
    direct_line, _, imported_line = completed.stdout.strip().partition("\n")
    # read once per model: both scans of the installed distributions cost seconds
    by_module = metadata.packages_distributions()
    requires: dict[str, set[str]] = {}
    direct = _distributions(set(direct_line.split()), by_module) | {"mlflow", "pandas"}
    imported = _distributions(set(imported_line.split()), by_module) | direct
    needs = {d: _dependencies(d, requires) for d in imported}
    keep = {d for d in imported if d in direct or not any(_canonical(d) in needs[o] for o in imported if o != d)}
    pins = []
    for name in sorted(keep, key=str.lower):
        try:
            version = metadata.version(name).split("+")[0]  # local builds (torch 2.x+cpu): the public version
        except metadata.PackageNotFoundError:
            continue
        pins.append(f"{name}=={version}")
    return pins


def log_pipeline_model(tracker: SearchTracker, pipeline: Any, frame: pl.DataFrame, tmp: Path) -> str:
    """Log the fitted winner into the parent run as a self-contained pyfunc model; its URI."""
    import pickle

    pipeline_file = tmp / PIPELINE_FILE
    pipeline_file.write_bytes(pickle.dumps(pipeline))
    signature, example = signature_and_example(frame, tracker.settings.example_rows)
    code = _stage_code(tmp / "code")
    requirements = model_requirements(pipeline_file, example, tmp, code.parent)
    with _tracking_uri(tracker.uri), mlflow.start_run(run_id=tracker.run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(name=MODEL_NAME, python_model=OutlierPipelineModel(),
                                       artifacts={"pipeline": str(pipeline_file)}, code_paths=[str(code)],
                                       pip_requirements=requirements, signature=signature, input_example=example,
                                       metadata={"made_with": pipeline.made_with_})
    return str(info.model_uri)


# --- reading models back ----------------------------------------------------------------------

def load_model(model_uri: str, tracking_uri: str | None = None) -> Any:
    """An automl-od model as an MLflow pyfunc model (``predict`` gives ``anomaly_score`` and
    ``is_outlier``), looked up where automl-od logs: ``tracking_uri``, else
    ``MLFLOW_TRACKING_URI``, else the embedded store. (``mlflow.pyfunc.load_model`` alone asks
    MLflow's own default store, ``./mlflow.db`` of the working folder, and does not find it.)"""
    uri = resolve_tracking_uri(tracking_uri)
    with _quick_http(), _tracking_uri(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return mlflow.pyfunc.load_model(model_uri)
        except Exception as exc:
            raise UserInputError(f"cannot load the model {model_uri!r} from {uri}: {' '.join(str(exc).split())[:300]}") from None


def load_pipeline(model_uri: str, tracking_uri: str | None = None) -> Any:
    """The fitted pipeline inside an automl-od MLflow model (``models:/NAME@alias``,
    ``runs:/ID/model``, a local model folder)."""
    import pickle

    uri = resolve_tracking_uri(tracking_uri)
    with _quick_http(), tempfile.TemporaryDirectory(prefix="automl_od_model_") as tmp:
        try:
            if Path(model_uri).is_dir():
                root = Path(model_uri)
            else:
                if urllib.parse.urlparse(uri).scheme in ("http", "https"):
                    _probe_server(uri)
                with _tracking_uri(uri), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
            found = sorted(root.glob(f"artifacts/{PIPELINE_FILE}")) or sorted(root.rglob(PIPELINE_FILE))
            if not found:
                raise UserInputError(f"{model_uri!r} is not an automl-od model (no {PIPELINE_FILE} in it)")
            return pickle.loads(found[0].read_bytes())
        except UserInputError:
            raise
        except Exception as exc:
            raise UserInputError(f"cannot load the model {model_uri!r} from {uri}: {' '.join(str(exc).split())[:300]}") from None
