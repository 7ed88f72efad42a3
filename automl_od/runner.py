"""Ray Tune + Optuna glue: the only module that imports ray.

Trials run through ``ray.tune.Tuner`` with ``OptunaSearch`` driving the controller's Optuna
sampler over a define-by-run space. The data set goes to the object store once
(``tune.with_parameters``); actors are reused between trials; a driver-side callback writes
every finished trial to ``trials.jsonl`` (the leaderboard's source, kept across ``--resume``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl_od.budget import Clock
from automl_od.components import DEVICE_ENV
from automl_od.errors import UserInputError
from automl_od.records import NOT_STARTED, TRIALS_FILE, TrialRecord, append_trial, read_trials
from automl_od.spaces import SearchSpace
from automl_od.trial import FIDELITY_KEY, KILL_GRACE_S, SearchData, run_trial, run_trial_isolated

#: The reason recorded for a trial whose Ray worker died (not a failure of the configuration itself).
LOST_WORKER = "its worker died"
TUNE_DIR = "tune"
#: Multi-fidelity: the shares of a detector's fidelity (boosting iterations, epochs) its trial is
#: evaluated at, and how many trials go on per trial kept at each rung (successive halving,
#: Jamieson & Talwalkar 2016; asynchronous as ASHA, Li et al. 2020). A trial stopped after the
#: first rung costs 1/9 of a full one, a finished one 1/9 + 1/3 + 1.
RUNGS, REDUCTION = (1 / 9, 1 / 3, 1.0), 3
#: Tune stops this long after the search's deadline (see ``run_search``).
TUNE_GRACE_S = 1.0
#: The running search's deadline (``time.time()``), read by its Tune stopper; a module global rather
#: than the stopper's own state, which Tune restores from the interrupted run on ``--resume``.
_DEADLINE: dict[str, float | None] = {"at": None}


@dataclass
class SearchSettings:
    budget: int | None = 20
    time_budget_s: float | None = None
    controller: str = "tpe"
    seed: int | None = None
    n_workers: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    early_stopping: bool = False
    grace_period: int = 10
    multi_fidelity: bool = False  # successive halving over rungs of each detector's fidelity (RUNGS)
    verbose: bool = True
    warm_start: bool = True  # evaluate the first-choice components' defaults first
    clock: Clock | None = None  # the whole fit's time budget, for progress lines (default: the search's)


class DefineByRun:
    """The define-by-run function OptunaSearch calls: samples one pipeline configuration."""

    def __init__(self, space: SearchSpace, resample: bool, label_detectors: frozenset[str] | None = None) -> None:
        self.space, self.resample, self.label_detectors = space, resample, label_detectors

    def __call__(self, trial: Any) -> dict[str, Any]:
        return {"pipeline": self.space.sample(trial, resample=self.resample, label_detectors=self.label_detectors)}


def _trainable(config: dict[str, Any], data: SearchData) -> None:
    import ray
    from ray import tune

    # deep detectors train on the device Ray assigned to this trial (automl_od.neural.resolve_device)
    os.environ[DEVICE_ENV] = "cuda" if ray.get_gpu_ids() else "cpu"
    # in a forked child, stopped at the trial's time limit even inside a long fit; this worker only
    # forks (see run_trial_isolated), so it never computes itself
    result = run_trial_isolated(config["pipeline"], data, report=tune.report)
    result.pop("traceback", None)
    if data.rungs:  # the scheduler reads every result's fidelity (a stopped or failed trial's too)
        result.setdefault(FIDELITY_KEY, 100)
    tune.report(result)


def probe_address(address: str, timeout_s: float = 3.0, source: str = "--address") -> None:
    """Fail in seconds, in one line, where Ray would retry for minutes: ``address`` (given as
    ``source``: the option, or the ``RAY_ADDRESS`` variable) must be a reachable HOST:PORT."""
    if address in ("auto", "local") or address.startswith(("ray://", "anyscale://")):
        return
    given = "" if source == "--address" else f" ({source})"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(f"Ray address {address!r}{given} must look like HOST:PORT (e.g. 127.0.0.1:6379) or 'auto'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        drop = "drop --address" if source == "--address" else f"unset {source}"
        raise UserInputError(f"cannot reach a Ray cluster at {address}{given}: {exc.strerror or exc}; "
                             f"start one with `ray start --head` or {drop} to use a local one") from None


def _prepare_ray_environment(address: str | None, auth_token_file: str | None) -> bool:
    """Environment Ray reads when it is imported; returns whether a token is available."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
    # a lost worker is summarised in one line by the recorder, not as Ray's 20-line traceback
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    if auth_token_file:
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(Path(auth_token_file).resolve())
    has_token = bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                     or (Path.home() / ".ray" / "auth_token").is_file())
    if address and has_token:
        # Ray >= 2.52 clusters may require a token; with one available, ask for token mode
        # explicitly (a bare address= with a token but no mode retries instead of failing).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    return has_token


def init_ray(address: str | None = None, *, num_cpus: int | None = None, auth_token_file: str | None = None) -> None:
    """Connect to ``address`` (a running cluster) or start a local Ray instance."""
    has_token = _prepare_ray_environment(address, auth_token_file)
    import ray

    if ray.is_initialized():
        return
    if address:
        probe_address(address)
    if address:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=True, logging_level=logging.ERROR)
        except Exception as exc:
            hint = "" if has_token else " If the cluster uses token authentication, set RAY_AUTH_TOKEN or pass --ray-auth-token-file."
            raise UserInputError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}.{hint}") from None
    else:
        if os.environ.get("RAY_ADDRESS"):  # Ray's own variable: ray.init connects there instead of starting one
            probe_address(os.environ["RAY_ADDRESS"], source="RAY_ADDRESS")
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=True,
                 logging_level=logging.ERROR)


class _RecordTrials:
    """Driver-side Tune callback: one JSON line per finished trial, plus progress lines."""

    def __init__(self, path: Path, budget: int | None, verbose: bool, on_record: Callable[[TrialRecord], None] | None = None,
                 clock: Clock | None = None) -> None:
        self.path, self.budget, self.verbose, self.on_record = path, budget, verbose, on_record
        self.clock = clock or Clock(None)
        self.best: float | None = None
        self.done = self._count()
        self.history: dict[str, list[list[Any]]] = {}  # per-epoch validation rewards of running trials

    def progress(self, trial: Any, result: dict[str, Any]) -> None:
        if result.get("status") == "running" and "epoch" in result:
            self.history.setdefault(trial.trial_id, []).append([result["epoch"], result.get("reward")])

    def _count(self) -> int:
        return sum(1 for _ in self.path.open()) if self.path.exists() else 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # restored by Tuner.restore on --resume: count what the interrupted run recorded (its clock
        # belonged to another process)
        self.__dict__.update(state)
        self.done = self._count()
        self.clock = Clock(None)

    def lost_worker(self, trial: Any, *, retrying: bool) -> None:
        """One line per lost worker (Ray's traceback stays in its logs)."""
        detector = trial.config.get("pipeline", {}).get("detector", "?")
        then = "retrying the trial once" if retrying else "the trial is recorded as failed"
        print(f"notice: trial {trial.trial_id} ({detector}) lost its worker ({_error_name(trial)}); {then}",
              file=sys.stderr, flush=True)

    def record(self, trial: Any, result: dict[str, Any] | None, *, error: str | None = None) -> None:
        if (result or {}).get("status") == NOT_STARTED and error is None:
            return  # Tune started it after the search's time was up: it never ran
        record = TrialRecord.from_result(trial.trial_id, trial.config.get("pipeline"), result or {})
        record.history = self.history.pop(trial.trial_id, None)
        if error is not None:
            record.status, record.reason, record.reward = "failed", error, None
        elif record.status == "running":
            record.status = "stopped early"
            last = result or {}
            record.reason = (f"stopped by successive halving after its rung at {last[FIDELITY_KEY]} % of its fidelity"
                             if FIDELITY_KEY in last else f"stopped by the scheduler at epoch {last.get('epoch')}")
        self.write(record)

    def write(self, record: TrialRecord) -> None:
        append_trial(self.path, record)
        self.done += 1
        if record.validated:
            self.best = record.reward if self.best is None else max(self.best, record.reward)  # type: ignore[type-var]
        if self.on_record:
            self.on_record(record)
        if self.verbose:
            total = f"/{self.budget}" if self.budget else ""
            best = "-" if self.best is None else f"{self.best:.4f}"
            what = f"{record.detector}: {record.status}"
            if record.validated:
                what += f" reward {record.reward:.4f}"
            elif record.reason:
                what += f" ({record.reason[:80]})"
            elapsed = time.perf_counter() - self.clock.started
            clock = f"{elapsed:.0f} s" + (f" of {self.clock.seconds:.0f} s" if self.clock.seconds else "")
            print(f"[trial {self.done}{total}, {clock}] {what}; best so far {best}", file=sys.stderr, flush=True)


def rerun_lost_trial(trials: list[TrialRecord], wanted: Callable[[TrialRecord], bool], data: SearchData,
                     out_dir: Path, *, deadline: float | None, on_record: Callable[[TrialRecord], None] | None = None,
                     verbose: bool = True, attempts: int = 3) -> list[TrialRecord]:
    """A trial that ``wanted`` picks out (the protected default) and that has no result because its
    worker died twice, run again in the driver (where no worker can be lost) until it has a result,
    ``attempts`` runs or ``deadline`` (``time.time()``, as ``SearchData.deadline``) pass; the new records."""
    if any(wanted(t) and t.ok for t in trials):
        return []
    lost = [t for t in trials if wanted(t) and LOST_WORKER in t.reason]
    if not lost:
        return []
    recorder = _RecordTrials(out_dir.resolve() / TRIALS_FILE, None, False, on_record)
    if deadline is not None:
        data = dataclasses.replace(data, deadline=deadline)
    rows = []
    for attempt in range(1, attempts + 1):
        limit = data.time_limit()  # trial_timeout_s, cut at the deadline
        if limit is not None and limit <= 0:
            break
        config = lost[0].config
        assert config is not None  # a lost trial was sampled
        record = TrialRecord.from_result(f"{lost[0].trial_id}_rerun{attempt}", config, run_trial(config.to_dict(), data, limit=limit))
        recorder.write(record)
        rows.append(record)
        if verbose:
            print(f"notice: reran {record.detector} in the driver after its worker died: {record.status}",
                  file=sys.stderr, flush=True)
        if record.ok:
            break
    return rows


def _error_name(trial: Any) -> str:
    """The kind of error that ended a trial's worker (e.g. ActorDiedError), from Tune's error file."""
    try:
        text = Path(trial.error_file).read_text(encoding="utf-8") if trial.error_file else ""
    except OSError:
        text = ""
    for line in text.splitlines():
        name = line.split(":")[0].strip().split(".")[-1]
        if name.endswith(("Error", "Exception")):
            return name
    return "see Ray's logs"


def _deadline_stopper() -> Any:
    from ray.tune.stopper import Stopper

    class DeadlineStopper(Stopper):
        """Stops the experiment once the search's deadline (plus grace) has passed."""

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return _DEADLINE["at"] is not None and time.time() > _DEADLINE["at"]

    return DeadlineStopper()


def _make_callback(recorder: _RecordTrials) -> Any:
    from ray.tune import Callback

    class RecordTrialsCallback(Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            recorder.progress(trial, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.record(trial, trial.last_result)

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.lost_worker(trial, retrying=True)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            recorder.lost_worker(trial, retrying=False)
            recorder.record(trial, trial.last_result, error=f"{LOST_WORKER}, also when retried ({_error_name(trial)})")

    return RecordTrialsCallback()


def run_search(data: SearchData, space: SearchSpace, settings: SearchSettings, out_dir: Path, *, resume: bool = False,
               on_record: Callable[[TrialRecord], None] | None = None) -> list[TrialRecord]:
    """Run (or resume) a search; return every recorded trial (also in ``out_dir/trials.jsonl``)."""
    init_ray(settings.address)
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from automl_od.registry import default_registry

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # default concurrency: as many trials as the cluster's CPUs hold
    n_workers = settings.n_workers or max(1, int(ray.cluster_resources().get("CPU", 1) // max(settings.cpus_per_trial, 1e-9)))
    if settings.gpus_per_trial and not ray.cluster_resources().get("GPU"):
        raise UserInputError(f"--gpus-per-trial {settings.gpus_per_trial} asked for GPUs, but the Ray cluster has none")
    trials_path = out_dir / TRIALS_FILE
    recorder = _RecordTrials(trials_path, settings.budget, settings.verbose, on_record,
                             settings.clock or Clock(settings.time_budget_s))
    if settings.time_budget_s is not None:  # every trial stops itself by the search's end (run_trial_isolated)
        data = dataclasses.replace(data, deadline=time.time() + settings.time_budget_s)
    if settings.multi_fidelity:
        data = dataclasses.replace(data, rungs=RUNGS)
    # trials running at the deadline stop themselves and report a timeout within KILL_GRACE_S; Tune
    # stops the experiment (and starts nothing new) TUNE_GRACE_S after that
    _DEADLINE["at"] = None if data.deadline is None else data.deadline + KILL_GRACE_S + TUNE_GRACE_S
    trainable = tune.with_resources(tune.with_parameters(_trainable, data=data),
                                    {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})
    tune_dir = out_dir / TUNE_DIR
    if resume:
        if not tune.Tuner.can_restore(str(tune_dir)):
            raise UserInputError(f"nothing to resume in {out_dir}: no interrupted search was found there")
        tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
    else:
        if trials_path.exists():
            trials_path.unlink()
        controller = default_registry().get("controller", settings.controller)
        sampler = controller.build({"seed": settings.seed})
        resample = data.y is not None and int(data.y.sum()) > 0
        # strong defaults first (components marked first_choice), then the controller explores
        warm_start = space.warm_start_points(default_registry(), resample=resample) if settings.warm_start else []
        registry = default_registry()
        label_detectors = frozenset(n for n in space.names("detector") if registry.get("detector", n).capabilities.takes_labels)
        searcher = OptunaSearch(space=DefineByRun(space, resample, label_detectors), metric="reward", mode="max", sampler=sampler,
                                seed=settings.seed, points_to_evaluate=warm_start or None)
        scheduler: Any
        if settings.multi_fidelity:  # rungs at RUNGS of the fidelity; a third goes on at each (ASHA's rungs)
            scheduler = ASHAScheduler(time_attr=FIDELITY_KEY, grace_period=round(100 * RUNGS[0]), max_t=100,
                                      reduction_factor=REDUCTION)
        elif settings.early_stopping:
            scheduler = ASHAScheduler(time_attr="training_iteration", grace_period=settings.grace_period, max_t=100_000)
        else:
            scheduler = FIFOScheduler()
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher, scheduler=scheduler, metric="reward", mode="max",
                num_samples=settings.budget if settings.budget else -1,
                max_concurrent_trials=n_workers, reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR, storage_path=str(out_dir), verbose=0, log_to_file=False, stop=_deadline_stopper(),
                callbacks=[_make_callback(recorder)],
                # a trial whose worker dies (killed, out of memory, a lost node) runs once more
                failure_config=tune.FailureConfig(max_failures=1, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_at_end=False),
            ),
        )
    started = time.perf_counter()
    with _graceful_interrupt() as interrupted:
        tuner.fit()
    if interrupted.is_set():
        raise KeyboardInterrupt(f"search interrupted; finished trials are kept in {out_dir}")
    if settings.verbose:
        print(f"search finished in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return read_trials(trials_path)


@contextlib.contextmanager
def _graceful_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C stops Tune gracefully (it saves its state) and is re-raised after ``fit`` returns.

    Tune swallows SIGINT and returns normally, which would make an interrupted search look
    finished; we take SIGINT ourselves and ask Tune to stop through its SIGUSR1 handler.
    """
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield event
        return

    def on_sigint(signum: int, frame: Any) -> None:
        event.set()
        os.kill(os.getpid(), signal.SIGUSR1)

    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    previous = signal.signal(signal.SIGINT, on_sigint)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env
