"""The ``automl-od`` command line: search, rank, predict, plugins.

Bad input prints one line ``automl-od: error: ...`` and exits with status 2; nothing the
user passed is modified.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from automl_od.errors import AutoODError, SearchNotice, UserInputError
from automl_od.selection import SELECTIONS

EXIT_USAGE = 2
DEFAULT_RANKER = "outrank"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind: type, *, allow_zero: bool = False) -> Any:
    """An argparse type: a number of ``kind`` that is positive (or >= 0 with ``allow_zero``)."""
    wanted = (("a number >= 0" if allow_zero else "a positive number") if kind is float
              else "a whole number >= 0" if allow_zero else "a positive whole number")

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not (value >= 0 if allow_zero else value > 0):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _number(int)
_positive_float = _number(float)
_non_negative_float = _number(float, allow_zero=True)
_non_negative_int = _number(int, allow_zero=True)  # seeds: numpy takes none below 0


def _time_budget(text: str) -> float | str | None:
    """--time-budget: seconds, "auto" (derived from the table's size) or "none" (no limit)."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected seconds (a positive number), auto or none, got {text!r}") from None


def _contamination(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number in (0, 0.5], got {text!r}") from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number in (0, 0.5], got {text!r}")
    return value


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="CSV (plain or .gz) or Parquet file")
    parser.add_argument("--no-header", action="store_true", help="the CSV has no header row (columns become column_1, column_2, ...)")
    parser.add_argument("--separator", metavar="CHAR", help="the CSV's field separator (one character, or 'tab'; default: "
                        "detected among , ; tab | from the file's first lines, and said when it is not a comma)")
    parser.add_argument("--drop", metavar="COL", nargs="+", default=[], help="columns to ignore (IDs, timestamps, ...)")


def _add_label_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label", metavar="COL", help="label column: 1 = known anomaly, 0 or empty = unlabelled/normal")
    parser.add_argument("--anomaly-value", metavar="V", nargs="+",
                        help="values of --label that mean anomaly (e.g. fraud); everything else is 0")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="automl-od", description="AutoML for outlier detection: search ranker x resampler x detector "
                     "pipelines with Ray Tune + Optuna and keep the best.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    search = commands.add_parser("search", help="search for the best detector for a table",
                                 description="Search for the best outlier-detection pipeline for DATA and write the "
                                 "leaderboard, the fitted best pipeline and per-row scores to --out.")
    _add_data_arguments(search)
    _add_label_arguments(search)
    search.add_argument("--budget", type=_positive_int, default=None, help="number of trials (default 20 without --time-budget S)")
    search.add_argument("--time-budget", type=_time_budget, default="auto", metavar="S|auto|none",
                        help="wall-clock limit of the whole fit in seconds (search and refit); the search stops at whichever "
                        "budget comes first (default auto: 60 s + 20 s per million cells, at most 300 s, printed at the start)")
    search.add_argument("--controller", default="tpe", help="search controller (see `automl-od plugins`; default tpe)")
    search.add_argument("--space", default="default", metavar="FILE|PRESET", help="search-space YAML file or preset: fast, default, deep (default: default)")
    search.add_argument("--workers", type=_positive_int, help="concurrent trials (default: the Ray cluster's CPUs / CPUs per trial)")
    search.add_argument("--cpus-per-trial", type=_positive_float, default=1.0, help="CPUs per trial (default 1)")
    search.add_argument("--gpus-per-trial", type=_non_negative_float, default=0.0, metavar="F", help="GPUs per trial, fractions allowed (default 0)")
    search.add_argument("--address", help="connect to this Ray cluster (HOST:PORT or auto) instead of starting a local one")
    search.add_argument("--ray-auth-token-file", metavar="FILE", help="token file of a Ray cluster with token authentication")
    search.add_argument("--out", metavar="DIR", help="output folder (default: automl_od_runs/<data name>-<time>)")
    search.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0, as for rank; searches with one worker, a trial "
                        "budget and --time-budget none repeat exactly)")
    search.add_argument("--resume", action="store_true", help="resume the interrupted search in --out, keeping its finished trials")
    search.add_argument("--contamination", type=_contamination, default="auto", help="expected share of anomalies for is_outlier ('auto' = 0.1, or 0.01 with --novelty)")
    search.add_argument("--novelty", action="store_true", help="the data is clean (no anomalies expected); changes the label-free reward and threshold")
    search.add_argument("--early-stopping", action="store_true", help="stop poor iterative (deep) trials early with ASHA")
    search.add_argument("--multi-fidelity", action="store_true", help="successive halving: trials of detectors with a "
                        "fidelity (boosting iterations, epochs) run at 1/9 and 1/3 of it first; a third goes on at each rung")
    search.add_argument("--trial-timeout", type=_positive_float, metavar="S", help="a trial running longer than this is recorded as failed")
    search.add_argument("--max-rows", type=_positive_int, default=20_000, help="rows sampled for the search and refit (default 20000; all labelled anomalies kept)")
    search.add_argument("--selection", default="auto", metavar="{" + ",".join(SELECTIONS) + ",...}",
                        help="how the winner is chosen: search (trials with a validation reward), meta (no labels: the "
                        "meta-learned recommender picks an ensemble, no trials), supervised (labelled anomalies: the "
                        "label-aware default learns from them, no trials) or auto (default, with the default space: meta "
                        "without labelled anomalies, supervised with them, search otherwise), or a plugin's selector (see "
                        "`automl-od plugins`)")
    search.add_argument("--meta-library", metavar="FILE", help="meta library the label-free recommender uses (written by "
                        "`automl-od library build`; default: $AUTOML_OD_META_LIBRARY, else the shipped one)")
    search.add_argument("--no-defaults-first", action="store_true", help="do not evaluate the strong defaults (e.g. IsolationForest) before the controller explores")
    search.add_argument("--explain", type=_positive_int, metavar="N", help="write each row's N most contributing columns to scores.csv (detectors with per-feature scores)")
    search.add_argument("--quiet", action="store_true", help="no progress lines")
    tracking = search.add_argument_group("MLflow tracking and model registry")
    tracking.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else the "
                          "local store ~/.automl-od/mlflow.db; AUTOML_OD_HOME moves it)")
    tracking.add_argument("--no-tracking", action="store_true", help="log nothing to MLflow")
    tracking.add_argument("--tracking-optional", action="store_true", help="if the tracking store is unreachable, search "
                          "anyway and log nothing (default: stop with an error before the search starts)")
    tracking.add_argument("--experiment", default="automl-od", help="MLflow experiment name (default automl-od)")
    tracking.add_argument("--register-as", metavar="NAME", help="register the winner in the MLflow model registry under NAME")
    tracking.add_argument("--alias", default="champion", help="alias set on the registered version (default champion)")
    tracking.add_argument("--log-example-rows", type=_positive_int, metavar="N", help="put N real rows in the logged model's "
                          "input example (default: an example built from the schema, so no data lands on the tracking server)")

    rank = commands.add_parser("rank", help="rank the columns of a table and report their data quality",
                               description="Rank the columns of DATA, best first, with a registered feature ranker, "
                               "and flag data-quality problems (constant, near-constant, ID-like, mostly missing columns).")
    _add_data_arguments(rank)
    _add_label_arguments(rank)
    rank.add_argument("--ranker", default=DEFAULT_RANKER, help=f"ranker name (see `automl-od plugins`; default {DEFAULT_RANKER})")
    rank.add_argument("--top", type=_positive_int, help="show only the N best columns")
    rank.add_argument("--out", metavar="DIR", help="write ranking.csv, ranking.json, quality.csv and ranking.png here")
    rank.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0, as for search)")
    rank.add_argument("--sample-rows", type=_positive_int, default=2_000_000, metavar="N",
                      help="rank on every k-th row so at most N rows are read (streamed; default 2000000)")
    rank.add_argument("--json", action="store_true", help="print JSON instead of a table")

    predict = commands.add_parser("predict", help="score a table with a fitted pipeline",
                                  description="Score DATA with the best pipeline of a search (its --out folder, its "
                                  "best_pipeline.joblib, or an MLflow model URI) and write anomaly_score and is_outlier per row.")
    predict.add_argument("model", metavar="MODEL", help="a search's output folder, its best_pipeline.joblib, or an MLflow "
                         "model URI (models:/NAME@champion, runs:/RUN_ID/model, a local MLflow model folder)")
    _add_data_arguments(predict)
    predict.add_argument("--out", metavar="FILE", help="CSV to write (default: stdout)")
    predict.add_argument("--batch-size", type=_positive_int, default=100_000, help="rows scored at a time (default 100000)")
    predict.add_argument("--explain", type=_positive_int, metavar="N", help="also write each row's N most contributing columns")
    predict.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI for models:/ and runs:/ URIs (default: "
                         "MLFLOW_TRACKING_URI, else the local store that `search` logs to)")

    plugins = commands.add_parser("plugins", help="list the plugins and their components",
                                  description="List the registered plugins, their versions and the components each registers.")
    plugins.add_argument("--json", action="store_true", help="print JSON")

    library = commands.add_parser("library", help="build a meta library for the label-free recommender",
                                  description="Meta libraries: what the label-free default recommends from.")
    actions = library.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    build = actions.add_parser("build", help="evaluate detectors on labelled sets and write a meta library",
                               description="Evaluate the built-in candidate detectors, plus each --detector (a registered "
                               "detector, e.g. a plugin's, with its defaults), on every labelled set in DIR (ADBench .npz "
                               "files with X and y, or CSV/Parquet tables with a --label column) under the ADBench protocol "
                               "(70/30 split per seed, test AUROC), and write a library file. Use it with `search "
                               "--meta-library FILE`, AutoOD(meta_library=FILE) or $AUTOML_OD_META_LIBRARY.")
    build.add_argument("dirs", nargs="+", metavar="DIR", type=Path, help="folders of labelled sets")
    build.add_argument("--detector", action="append", default=[], metavar="NAME", help="add a registered detector (repeatable)")
    build.add_argument("--out", type=Path, default=Path("meta_library.json"), metavar="FILE", help="library file (default meta_library.json)")
    build.add_argument("--label", default="label", help="label column of CSV/Parquet sets (1/true = anomaly; default label)")
    build.add_argument("--seeds", nargs="+", type=_non_negative_int, default=[1, 2, 3], metavar="N", help="protocol seeds (default 1 2 3)")
    build.add_argument("--synthetic", action="store_true", help="also make tables with ADBench's four synthetic anomaly "
                       "types from each set's normal rows")
    build.add_argument("--cache", type=Path, metavar="DIR", help="keep each set's scores here, so a rebuild (e.g. with "
                       "another --detector) fits only what is new")
    return parser


def _version() -> str:
    from automl_od import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return {"search": cmd_search, "rank": cmd_rank, "predict": cmd_predict, "plugins": cmd_plugins,
                "library": cmd_library}[args.command](args)
    except (UserInputError, AutoODError) as exc:
        print(f"automl-od: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        hint = (f"; resume with: automl-od search {shlex.quote(str(args.data))} --resume --out {shlex.quote(str(args.out))}"
                if args.command == "search" and getattr(args, "out", None) else "")
        print(f"automl-od: interrupted{hint}", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _load_features(args: argparse.Namespace, *, drop_constant: bool = True) -> tuple[Any, Any, list[str]]:
    """Read DATA, split off the label, drop --drop and constant columns; returns (frame, y, notices)."""
    from automl_od.data import check_flat, duplicate_name_notice, parse_labels, read_table

    if args.label is not None and not args.label.strip():
        raise UserInputError("--label needs a column name (it was empty); leave it out to search without labels")
    notices: list[str] = []
    frame = read_table(args.data, no_header=args.no_header, max_rows=getattr(args, "sample_rows", None),
                       separator=args.separator, notices=notices)
    columns = frame.columns
    for name in [*(args.drop or []), *([args.label] if args.label else [])]:
        if name not in columns:
            shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            raise UserInputError(f"column {name!r} is not in {args.data}; its columns are: {shown}")
    if args.anomaly_value and not args.label:
        raise UserInputError("--anomaly-value needs --label")
    y = None
    if args.label:
        y = parse_labels(frame.get_column(args.label), anomaly_values=args.anomaly_value, name=args.label, notices=notices)
    renamed = duplicate_name_notice(frame)
    if renamed:
        notices.append(renamed)
    features = frame.drop([*(args.drop or []), *([args.label] if args.label else [])])
    check_flat(features)
    constant = [c for c in features.columns if drop_constant and features.get_column(c).n_unique() <= 1]
    if constant:
        notices.append(f"dropping {len(constant)} constant column(s): {', '.join(constant[:10])}")
        features = features.drop(constant)
    if features.width == 0:
        raise UserInputError(f"no usable feature in {args.data}: every column is the label, dropped or constant")
    return features, y, notices


#: In a search's --out folder: the options it ran with, which --resume restores.
OPTIONS_FILE = "options.json"
#: Options that do not change what a search computes (where it runs, what it prints), not restored.
_NOT_RESTORED = {"command", "argv", "resume", "out", "quiet", "ray_auth_token_file", "address", "workers"}


def _explicit_options(argv: list[str]) -> set[str]:
    """The options the user typed (not argparse's defaults): parse again with every default suppressed."""
    parser = build_parser()
    for action in parser._subparsers._group_actions if parser._subparsers else []:  # noqa: SLF001
        for sub in getattr(action, "choices", {}).values():
            for option in sub._actions:  # noqa: SLF001
                option.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _restore_options(args: argparse.Namespace, out: Path) -> None:
    """--resume: take the interrupted search's options from its folder; refuse ones typed differently."""
    saved_file = out / OPTIONS_FILE
    if not saved_file.is_file():
        raise UserInputError(f"nothing to resume in {str(out)!r}: it holds no {OPTIONS_FILE} of an interrupted search")
    saved = json.loads(saved_file.read_text(encoding="utf-8"))
    typed = _explicit_options(args.argv)
    for name, value in saved.items():
        if name in _NOT_RESTORED or not hasattr(args, name):
            continue
        given = getattr(args, name)
        same = (Path(given).resolve() == Path(value).resolve()) if name == "data" and given and value else given == value
        if name in typed and not same:
            flag = "DATA" if name == "data" else "--" + name.replace("_", "-")
            raise UserInputError(f"{flag} {given!r} contradicts the interrupted search in {str(out)!r}, which ran with "
                                 f"{value!r}; drop it to resume with the saved options")
        setattr(args, name, value)


def _save_options(args: argparse.Namespace, out: Path) -> None:
    from automl_od.provenance import made_with

    options = {k: v for k, v in vars(args).items() if k not in _NOT_RESTORED}
    options["data"] = str(Path(args.data).resolve())
    options["made_with"] = made_with()
    (out / OPTIONS_FILE).write_text(json.dumps(options, indent=2), encoding="utf-8")


def cmd_search(args: argparse.Namespace) -> int:
    from automl_od.estimator import AutoOD
    from automl_od.records import TRIALS_FILE

    if args.resume and not args.out:
        raise UserInputError("--resume needs --out: the folder of the interrupted search")
    if args.resume:
        _restore_options(args, Path(args.out))
    features, y, notices = _load_features(args)
    out = Path(args.out) if args.out else Path("automl_od_runs") / f"{_stem(args.data)}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {str(out)!r} exists and is not a folder")
    if not args.resume and ((out / TRIALS_FILE).exists() or (out / "search.json").exists()):
        raise UserInputError(f"{str(out)!r} already holds a search; continue it with --resume or choose another --out")
    timed = args.time_budget not in ("auto", None)  # a time budget of the user's own
    budget = args.budget if args.budget or timed else 20
    tracking: Any = False
    if not args.no_tracking:
        from automl_od.settings import TrackingSettings

        tracking = TrackingSettings(uri=args.tracking_uri, experiment=args.experiment, alias=args.alias,
                                    required=not args.tracking_optional, example_rows=args.log_example_rows or 0,
                                    run_name=f"search {_stem(args.data)}")
    elif args.register_as:
        raise UserInputError("--register-as needs tracking: drop --no-tracking")
    model = AutoOD(budget=budget, time_budget_s=args.time_budget, controller=args.controller, space=args.space,
                   contamination=args.contamination, novelty=args.novelty, random_state=args.seed, n_workers=args.workers,
                   resources_per_trial={"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}, address=args.address,
                   early_stopping=args.early_stopping, multi_fidelity=args.multi_fidelity, trial_timeout_s=args.trial_timeout, max_rows=args.max_rows,
                   defaults_first=not args.no_defaults_first, tracking=tracking, register_as=args.register_as,
                   out_dir=str(out), verbose=not args.quiet, selection=args.selection, meta_library=args.meta_library)
    strategy = model.check(y, rows=features.height)  # the estimator's own checks, before anything starts
    for notice in notices:
        print(f"notice: {notice}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        _save_options(args, out)
    labelled = "no labels" if y is None else f"{int(y.sum())} labelled anomalies"
    how = strategy.brief if not strategy.uses_trials else (
        f"budget {budget or '-'} trials, " + (f"{args.time_budget:g} s" if timed else f"time budget {args.time_budget or 'none'}"))
    print(f"searching {args.data}: {features.height} rows x {features.width} features, {labelled}; {how}; output in {out}",
          file=sys.stderr)
    if args.ray_auth_token_file:
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(Path(args.ray_auth_token_file).resolve())
    try:
        with warnings.catch_warnings():
            default_show = warnings.showwarning

            def show(message: Any, category: type[Warning], *rest: Any, **kwargs: Any) -> None:
                if issubclass(category, SearchNotice):
                    print(f"notice: {message}", file=sys.stderr)
                else:
                    default_show(message, category, *rest, **kwargs)

            warnings.showwarning = show
            model.fit(features, y, resume=args.resume)
    except KeyboardInterrupt:
        print(f"automl-od: interrupted; finished trials are kept in {out}; resume with: "
              f"automl-od search {shlex.quote(str(args.data))} --resume --out {shlex.quote(str(out))}", file=sys.stderr)
        return 130
    for name, reason in model.skipped_components_.items():
        print(f"notice: skipped {name}: {reason}", file=sys.stderr)
    if model.selection_ == "meta" and (args.budget or timed) or model.selection_ == "supervised" and args.budget:
        why = ("no labelled anomalies: the meta-learned recommender chose the detector" if model.selection_ == "meta"
               else "too few labelled anomalies to validate a search: the label-aware default was fitted")
        unused = "--budget/--time-budget were" if model.selection_ == "meta" else "--budget was"
        print(f"notice: {why} without trials, so {unused} not used (--selection search runs trials)", file=sys.stderr)
    _write_outputs(model, args, out)
    _print_leaderboard(model.leaderboard_, meta=model.selection_ == "meta")
    reward = f"reward {model.best_score_:.4f}" if math.isfinite(model.best_score_) else "not validated"
    name = model.leaderboard_.get_column("detector")[0] if model.selection_ == "meta" else model.best_config_["detector"]
    print(f"\nbest: {name} ({reward}; {model.evaluation_})")
    share = 1.0 - model.threshold_
    why = (f"--contamination auto means {share:g}{' with --novelty' if args.novelty else ''}: a convention, not estimated from the data"
           if args.contamination == "auto" else f"--contamination {share:g}")
    print(f"is_outlier = 1 marks rows above the anomaly_score of the top {share:.0%} of the training rows ({why}); "
          "set --contamination to the share of anomalies you expect, or rank rows by anomaly_score")
    print(f"wrote {out / 'leaderboard.csv'}, {out / 'best_pipeline.joblib'}, {out / 'scores.csv'}")
    return _print_tracking(model, args)


def _print_tracking(model: Any, args: argparse.Namespace) -> int:
    """Where the search was logged; exit 1 when --register-as asked for a registration that failed."""
    if not model.tracking_run_id_:
        return 0
    from automl_od.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    print(f"mlflow: run {model.tracking_run_id_} in experiment {args.experiment!r} at {uri}"
          + (f"; model {model.model_uri_}" if model.model_uri_ else ""))
    if uri.startswith("sqlite:"):
        print(f"  browse it with: mlflow ui --backend-store-uri {uri}")
    if args.register_as:
        if model.registered_version_ is None:
            print(f"automl-od: error: the search finished (outputs in {args.out or 'the output folder'}) but registering "
                  f"{args.register_as!r} failed: {'; '.join(model.tracking_errors_)[:300]}", file=sys.stderr)
            return 1
        print(f"  registered: models:/{args.register_as}@{args.alias} (version {model.registered_version_}); score with: "
              f"automl-od predict models:/{args.register_as}@{args.alias} DATA")
    return 0


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or "data"


def _write_outputs(model: Any, args: argparse.Namespace, out: Path) -> None:
    import joblib

    model.leaderboard_.write_csv(out / "leaderboard.csv")
    joblib.dump(model.best_pipeline_, out / "best_pipeline.joblib")
    summary = {"data": str(args.data), "label": args.label, "evaluation": model.evaluation_,
               "best": model.best_config_, "best_reward": model.best_score_, "rows_used": model.sampled_rows_,
               "skipped_components": model.skipped_components_, "threshold": model.threshold_,
               "made_with": model.best_pipeline_.made_with_}
    (out / "search.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    # its own file: exactly the columns it was trained on (the label, --drop and the constant columns it dropped
    # itself are left out without a notice)
    _score_file(model.best_pipeline_, args, out / "scores.csv", explain=args.explain or 0, only=list(model.feature_names_in_))


def _score_file(pipeline: Any, args: argparse.Namespace, target: Path | None, batch_size: int = 100_000,
                explain: int = 0, only: list[str] | None = None) -> int:
    """Score ``args.data`` batch by batch (``--drop`` columns left out; with ``only``, just those columns),
    appending to ``target`` (stdout when None); returns rows.

    With ``explain`` = N, each row also gets its N most contributing columns (checked on the
    first batch, before anything is written, so an unsupported detector fails cleanly)."""
    from automl_od.data import format_notices, iter_table_batches

    contract = getattr(pipeline, "input_schema_", None)  # pipelines saved before the contract existed have none
    notices: dict[str, int] = {}
    drop = list(args.drop or [])

    def features(batch: Any) -> Any:
        batch = batch.select(only) if only is not None else batch.drop([c for c in drop if c in batch.columns])
        return contract.transform(batch, notices=notices) if contract is not None else batch

    batches = iter_table_batches(args.data, no_header=args.no_header, batch_size=batch_size, separator=args.separator)
    scored_batches = (pipeline.score_frame(features(batch), explain=explain) for batch in batches)
    first = next(scored_batches, None)  # scored before the output is opened
    if target:
        target.parent.mkdir(parents=True, exist_ok=True)
    handle = target.open("w", newline="", encoding="utf-8") if target else sys.stdout
    rows = 0
    try:
        writer = csv.writer(handle)
        writer.writerow(["row", *(first.columns if first is not None else ["anomaly_score", "is_outlier"])])
        for scored in itertools.chain([] if first is None else [first], scored_batches):
            formatted = [[f"{v:.6g}" if isinstance(v, float) else v for v in row] for row in scored.iter_rows()]
            writer.writerows([rows + i, *row] for i, row in enumerate(formatted))
            rows += scored.height
    finally:
        if target:
            handle.close()
    for notice in format_notices(notices):
        print(f"notice: {notice}", file=sys.stderr)
    return rows


def _print_leaderboard(leaderboard: Any, top: int = 10, meta: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (f"meta-learned recommendations (best {min(top, leaderboard.height)}; reward = predicted test AUROC)" if meta
             else f"leaderboard (top {min(top, leaderboard.height)} of {leaderboard.height} trials)")
    table = Table(title=title)
    for column in ("rank", "detector", "status", "reward", "auroc", "params", "duration_s"):
        table.add_column(column, overflow="fold")
    for row in leaderboard.head(top).iter_rows(named=True):
        table.add_row(*[("-" if row[c] is None else f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]))
                        for c in ("rank", "detector", "status", "reward", "auroc", "params", "duration_s")])
    Console(width=140).print(table)


def cmd_rank(args: argparse.Namespace) -> int:
    import numpy as np
    import polars as pl

    from automl_od.data import InputSchema, data_quality
    from automl_od.registry import default_registry

    ranker = default_registry().get("ranker", args.ranker).build(random_state=args.seed)  # a bad name fails first
    features, y, notices = _load_features(args, drop_constant=False)
    contract = InputSchema()  # numbers with a stray word, dates in text: read as a search would
    features = contract.fit_transform(features)
    for notice in [*notices, *contract.notices_]:
        print(f"notice: {notice}", file=sys.stderr)
    labels = None if y is None else np.asarray(y)
    if hasattr(ranker, "score"):
        table = ranker.score(features, labels).sort("rank")
    else:
        order = list(ranker.rank(features, labels))
        table = pl.DataFrame({"feature": [features.columns[j] for j in order], "rank": list(range(1, len(order) + 1))})
    quality = data_quality(features)
    table = table.join(quality.drop([c for c in quality.columns if c in table.columns and c != "feature"]),
                       on="feature", how="left").sort("rank")
    table = table.select(["rank", "feature", *[c for c in table.columns if c not in ("rank", "feature")]])
    shown = table.head(args.top) if args.top else table
    if args.out:
        _write_ranking(table, quality, Path(args.out), args)
    if args.json:
        print(json.dumps({"ranker": args.ranker, "ranking": shown.to_dicts(), "quality": quality.to_dicts()}, indent=2, default=str))
        return 0
    _print_table(f"{args.ranker} ranking of {features.width} columns ({'labels: ' + args.label if args.label else 'no labels'})", shown)
    flagged = quality.filter(pl.col("flags") != "")
    if flagged.height:
        print("\ndata-quality flags:")
        for row in flagged.iter_rows(named=True):
            print(f"  {row['feature']}: {row['flags']} (cardinality {row['cardinality']}, coverage {row['coverage']:.2f})")
    if args.out:
        print(f"\nwrote ranking.csv, ranking.json, quality.csv and ranking.png to {args.out}")
    return 0


def _print_table(title: str, frame: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(column, overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*[("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row])
    Console(width=160).print(table)


def _write_ranking(table: Any, quality: Any, out: Path, args: argparse.Namespace) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table.write_csv(out / "ranking.csv")
    quality.write_csv(out / "quality.csv")
    (out / "ranking.json").write_text(json.dumps({"data": str(args.data), "label": args.label, "ranker": args.ranker,
                                                   "ranking": table.to_dicts(), "quality": quality.to_dicts()}, indent=2, default=str))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table.head(min(table.height, 40))
    values = shown.get_column("score").to_list() if "score" in shown.columns else [shown.height - i for i in range(shown.height)]
    figure, axis = plt.subplots(figsize=(8, max(2.5, 0.25 * shown.height + 1)))
    axis.barh(shown.get_column("feature").to_list()[::-1], values[::-1], color="#4477aa")
    axis.set_xlabel("score" if "score" in shown.columns else "rank (higher bar = better)")
    axis.set_title(f"{args.ranker}: top {shown.height} of {table.height} columns")
    figure.tight_layout()
    figure.savefig(out / "ranking.png", dpi=100)
    plt.close(figure)


def cmd_predict(args: argparse.Namespace) -> int:
    import joblib

    from automl_od.data import check_readable

    check_readable(args.data)  # before a model is fetched from a server
    if args.out and Path(args.out).resolve() == Path(args.data).resolve():
        raise UserInputError("--out must not be the input file")
    model_path = Path(args.model)
    if _is_mlflow_model(args.model):
        from automl_od.tracking import load_pipeline

        pipeline = load_pipeline(args.model, args.tracking_uri)
        return _predict_with(pipeline, args)
    if model_path.is_dir():
        model_path = model_path / "best_pipeline.joblib"
    if not model_path.is_file():
        raise UserInputError(f"no fitted pipeline at {str(model_path)!r}; give a search's --out folder or its best_pipeline.joblib")
    try:
        pipeline = joblib.load(model_path)
    except Exception as exc:
        raise UserInputError(f"cannot load {str(model_path)!r}: {_one_line(exc)}") from None
    return _predict_with(pipeline, args)


def _is_mlflow_model(text: str) -> bool:
    """models:/, runs:/ and other artifact URIs, or a local folder holding an MLmodel file
    (checked without importing MLflow, so plain predictions stay fast)."""
    schemes = ("models:/", "runs:/", "mlflow-artifacts:/", "s3://", "gs://", "wasbs://", "dbfs:/")
    return text.startswith(schemes) or (Path(text) / "MLmodel").is_file()


def _predict_with(pipeline: Any, args: argparse.Namespace) -> int:
    from automl_od.provenance import check_made_with

    notice = check_made_with(pipeline, f"the model {args.model}")
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    rows = _score_file(pipeline, args, Path(args.out) if args.out else None, batch_size=args.batch_size, explain=args.explain or 0)
    if args.out:
        print(f"scored {rows} rows -> {args.out}", file=sys.stderr)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from automl_od.registry import default_registry

    plugins = default_registry().describe()
    if args.json:
        print(json.dumps(plugins, indent=2))
        return 0
    for plugin in plugins:
        origin = "built-in" if plugin["builtin"] else "third-party"
        print(f"{plugin['name']} {plugin['version']} ({origin})")
        for component in plugin["components"]:
            print(f"    {component['kind']:<10} {component['name']:<24} {component['description']}")
    return 0


def cmd_library(args: argparse.Namespace) -> int:
    from automl_od.meta_build import build

    if any(seed < 0 for seed in args.seeds):
        raise UserInputError(f"--seeds must be >= 0, got {' '.join(map(str, args.seeds))}")
    data = build(args.dirs, out=args.out, detectors=args.detector, seeds=args.seeds, label=args.label,
                 synthetic_from=args.dirs if args.synthetic else [], cache=args.cache,
                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    sets = len({entry["dataset"] for entry in data["entries"]})
    print(f"wrote {args.out}: {sets} sets x {len(args.seeds)} seeds, {len(data['members'])} members, "
          f"{len(data['groups'])} candidates; recommender {data['recommender']} "
          f"({data.get('recommender_cv', 'defaults: fewer than 3 families to cross-validate')})")
    print(f"use it: automl-od search DATA --meta-library {args.out}  (or AUTOML_OD_META_LIBRARY={args.out})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
