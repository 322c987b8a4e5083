"""The command line's commands: ``main`` parses the arguments (``parser``), runs one command and maps what it
raised to an exit code (``parser.EXIT_CODES``)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pyspark.errors import PySparkException

from segmentation.cli.parser import build_parser
from segmentation.cli.summary import summary_record, summary_text
from segmentation.config import load
from segmentation.errors import ConfigError, RunFailed, SegmentationError, summary

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segmentation.config import JobConfig

log = logging.getLogger("segmentation")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG, EXIT_HELD = 0, 1, 2, 3, 4  # as parser.EXIT_CODES says


class CurrentStderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at the time of each record.

    Notebooks and test runners swap ``sys.stderr``; a handler bound to the stream of the first call would
    later write to a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class LiveStatusHandler(CurrentStderrHandler):
    """On a terminal: progress records (the sweep's fits, stage starts) rewrite one status line in place;
    every other record is printed as a normal line above it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            status = record.name == "segmentation.progress" or record.getMessage().endswith(": started")
            text = record.getMessage() if status else self.format(record)
            sys.stderr.write("\r\x1b[K" + text + ("" if status else "\n"))
            self.flush()
        except Exception:  # logging must never break the job
            self.handleError(record)


def configure_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Timestamped log lines on stderr; on a terminal (and without -v) progress as a live status line."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    live = sys.stderr.isatty() and not verbose and not quiet
    handler = LiveStatusHandler() if live else CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("py4j").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``segmentation`` console script: an exit code (``EXIT_CODES``), never a traceback for a
    known error."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.quiet, args.verbose)
    command = {
        "generate": _generate,
        "score": _score,
        "report": _report,
        "run": _run,
        "history": _history,
        "runs": _runs,
        "config": _config,
        "promote": _promote,
    }[args.command]
    try:
        with contextlib.redirect_stdout(sys.stderr) if getattr(args, "json", False) else contextlib.nullcontext():
            printed = command(args)  # with --json, only the JSON goes to stdout (a library's print goes to stderr)
        if printed:
            print(printed)
    except BrokenPipeError:  # the output piped into a command that stopped reading (head, less)
        sys.stderr.close()
        return EXIT_OK
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SegmentationError, OSError) as exc:  # OSError: a file the command reads or writes outside a run
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        _point_to_spark_log()
        return EXIT_FAILED
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        print(
            f"internal error: {type(exc).__name__}: {summary(exc)}. This is a bug in segmentation, not a problem "
            "with the input or the configuration; run again with -v for the traceback",
            file=sys.stderr,
        )
        _point_to_spark_log()
        return EXIT_BUG
    return int(getattr(args, "exit_code", EXIT_OK))  # a run held by the drift checks: EXIT_HELD


def _from_spark(exc: BaseException) -> bool:
    """A Spark or Py4J error (a JVM call that failed), Py4J's recognised without importing it (Connect has none)."""
    return isinstance(exc, PySparkException) or any(c.__module__.startswith("py4j.") for c in type(exc).__mro__)


def _point_to_spark_log() -> None:
    """After a failure: where Spark's own warnings and stack traces are, when it wrote any."""
    from segmentation.runtime.session import spark_log_path

    path = spark_log_path()
    if path and os.path.isfile(path) and os.path.getsize(path) > 0:
        print(f"Spark's log (its warnings and stack traces): {path}", file=sys.stderr)


CSV_NAMES, JSON_NAMES = (".csv", ".csv.gz"), (".jsonl", ".jsonl.gz", ".json", ".json.gz")


def _generate(args: argparse.Namespace) -> str:
    from segmentation.demo import generate, planted

    name = args.output.lower()  # the name picks the format
    if not name.endswith(CSV_NAMES + JSON_NAMES):
        raise ConfigError(
            f"--output: name the file .csv, .csv.gz, .jsonl or .jsonl.gz (it picks the format), not {args.output!r}"
        )
    if name.endswith(JSON_NAMES) and (args.scenario or args.periods != 1 or args.shape != "online_retail"):
        raise ConfigError("--output: JSON lines only for the demo log; name this one .csv or .csv.gz")
    if args.scenario is not None:
        if args.planted is not None or args.periods != 1:
            raise ConfigError("--scenario: not with --planted or --periods 2")
        spec = planted.scenario(args.scenario)
        rows = planted.write(
            args.output, args.scenario, customers=args.customers, seed=args.seed, truth_path=args.truth
        )
        what = "rows of a customer table" if spec.kind == "customers" else "lines"
        settings = " ".join(f"--set '{s}'" for s in planted.settings(spec))
        return (
            f"wrote {rows} {what} for {args.customers} customers ({spec.planted} planted segments: {spec.hard}) "
            f"to {args.output}; run it with {settings}"
        )
    if args.periods == 2:
        if args.planted is not None:
            raise ConfigError("--planted: only for a one-period log (--periods 1)")
        lines = generate.write_periods(args.output, customers=args.customers, seed=args.seed, truth_path=args.truth)
        first, second = generate.period_as_of()
        return (
            f"wrote {lines} lines for {args.customers} customers over two periods to {args.output}; run it at as-of "
            f"{first.isoformat()} and {second.isoformat()} with features.window_days={generate.PERIOD_DAYS}"
        )
    if args.shape == "cdnow":
        if args.planted is not None or args.periods != 1:
            raise ConfigError("--shape cdnow: not with --planted or --periods 2")
        lines = generate.write_cdnow(args.output, customers=args.customers, seed=args.seed, truth_path=args.truth)
        return f"wrote {lines} purchases of {args.customers} customers to {args.output}"
    if name.endswith(JSON_NAMES):
        if args.planted is not None:
            raise ConfigError("--planted: only for a CSV log")
        lines = generate.write_json_lines(args.output, customers=args.customers, seed=args.seed, truth_path=args.truth)
        return f"wrote {lines} JSON lines for {args.customers} customers to {args.output}"
    lines = generate.write(
        args.output, customers=args.customers, seed=args.seed, truth_path=args.truth, planted=args.planted
    )
    return f"wrote {lines} lines for {args.customers} customers to {args.output}"


def _history(args: argparse.Namespace) -> str:
    """The committed runs under a local root (date, run id, kind, customers, baseline), or a table's files."""
    from segmentation.config import is_local_path
    from segmentation.history import readers
    from segmentation.publish import for_root, read_manifest

    if not is_local_path(args.root):
        raise ConfigError(
            f"history: {args.root} is not on this machine's disk; list it with `segmentation runs ROOT --config FILE`"
        )
    if args.files:
        return "\n".join(readers.parquet_files(args.root, args.files, run_id=args.run_id))
    store = for_root(None, args.root)
    lines = []
    for run in readers.list_runs(store, args.run_id):
        m = read_manifest(store, run.folder)
        base = m.history.baseline if m.history else None
        against = f"{base.as_of_date}/{base.run_id}" if base else "-"
        lines.append(
            f"{run.as_of.isoformat()}  {run.run_id:<12} {m.kind:<12} {m.counts.customers:>9} customers  "
            f"baseline {against:<22} {run.folder}"
        )
    return "\n".join(lines) or f"no published run under {args.root}"


def _job_config(
    args: argparse.Namespace, *, check_paths: bool = True, paths_needed: bool = True
) -> tuple[JobConfig, dict[str, str]]:
    """The configuration of a job's options (run, score, config) and where each key was set."""
    from segmentation.config import load_with_origins

    return load_with_origins(
        args.config,
        _overrides(args),
        input_path=args.input,
        output_path=args.output,
        input_table=args.input_table,
        check_paths=check_paths,
        paths_needed=paths_needed,
        flags=_flags(args),
    )


def _config(args: argparse.Namespace) -> str:
    """``config show``: the effective configuration with its origins; ``config check``: valid or exit 2."""
    from segmentation.config import effective_yaml

    if args.config_command == "show":
        cfg, origin = _job_config(args, check_paths=False, paths_needed=False)  # what a run would add to
        return effective_yaml(cfg, origin).rstrip("\n")
    cfg, _ = _job_config(args)
    source = cfg.input.path if cfg.input.table is None else f"table {cfg.input.table}"
    target = cfg.output.path if not cfg.output.catalog.enabled else f"catalog database {cfg.output.catalog.database}"
    as_of = cfg.features.as_of.isoformat() if cfg.features.as_of else "the day of the latest valid line"
    return f"configuration ok: {cfg.input.kind} from {source}, published to {target}, as of {as_of}"


def _runs(args: argparse.Namespace) -> str:
    """The published runs under a root (any file system Spark reaches) or in a catalog database."""
    from segmentation.config import is_local_path
    from segmentation.history import listing
    from segmentation.publish import for_root

    if (args.root is None) == (args.catalog is None):
        raise ConfigError("runs: give an output ROOT or --catalog DATABASE (one of them)")
    settings = listing.catalog_database(args.catalog) if args.catalog is not None else None
    if settings is None and is_local_path(args.root) and not (args.config or args.overrides or args.remote):
        found, where = listing.file_runs(for_root(None, args.root), args.run_id), args.root
    else:
        cfg = load(args.config, args.overrides, paths_needed=False)
        with _session(cfg, args.remote, verbose=args.verbose) as spark:
            try:
                if settings is not None:
                    found, where = listing.catalog_runs(spark, settings, args.run_id), f"database {args.catalog}"
                else:
                    found, where = listing.file_runs(for_root(spark, args.root), args.run_id), args.root
            except Exception as exc:
                if not _from_spark(exc):
                    raise
                raise RunFailed(f"cannot list the runs of {args.catalog or args.root}: {summary(exc)}") from exc
    if args.json:
        return "\n".join(json.dumps(run.as_dict()) for run in found)
    return listing.runs_text(found, where)


def _run(args: argparse.Namespace) -> str:
    cfg, _ = _job_config(args)
    from segmentation.jobs import segment

    with _session(cfg, args.remote, verbose=args.verbose) as spark:
        result = segment.run(spark, cfg)
    args.exit_code = EXIT_HELD if result.held else EXIT_OK
    if args.json:
        return json.dumps(summary_record(result, chosen_k=result.choice.k, chosen=result.choice.reason))
    return summary_text(result, chosen=result.choice.reason, took=result.timings.get("total", 0.0))


def _score(args: argparse.Namespace) -> str:
    cfg, _ = _job_config(args)
    try:
        model_date = dt.date.fromisoformat(args.model_date) if args.model_date else None
    except ValueError:
        raise ConfigError(f"--model-date: expected a date like 2011-12-09, got {args.model_date!r}") from None
    from segmentation.jobs import score

    with _session(cfg, args.remote, verbose=args.verbose) as spark:
        result = score.score(spark, cfg, args.model, model_as_of=model_date, model_run_id=args.model_run_id)
    args.exit_code = EXIT_HELD if result.held else EXIT_OK
    if args.json:
        return json.dumps(summary_record(result, model=result.model_as_of))
    return summary_text(result, model=result.model_as_of)


def _promote(args: argparse.Namespace) -> str:
    """Make a held run current: a local root without --config is done without Spark; else through the session
    and the configured publisher (catalog tables, or a root only Spark reaches)."""
    from segmentation.config import is_local_path
    from segmentation.publish import for_root, promote, publisher_for

    try:
        as_of = dt.date.fromisoformat(args.as_of)
    except ValueError:
        raise ConfigError(f"promote: expected a date like 2024-06-30, got {args.as_of!r}") from None
    if args.output and is_local_path(args.output) and not (args.config or args.overrides or args.remote):
        folder = promote(for_root(None, args.output), as_of, args.run_id)
        return f"promoted {folder}: it is the current run of {args.output}"
    cfg = load(args.config, args.overrides, output_path=args.output, paths_needed=False)
    if not cfg.output.catalog.enabled and cfg.output.path is None:
        raise ConfigError("promote: give the output root with --output, or a --config that sets output.path")
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"run_id": args.run_id})})
    with _session(cfg, args.remote, verbose=args.verbose) as spark:
        where = publisher_for(spark, cfg).promote(as_of, args.run_id)
    return f"promoted the run of {as_of.isoformat()}, run id {args.run_id}: it is the current run of {where}"


def _report(args: argparse.Namespace) -> str:
    """Without --config, --set or --remote: a local path, read without Spark; else through the session, so the
    path resolves as Spark resolves it (an HDFS default file system, s3a://, ...)."""

    if not (args.config or args.overrides or args.remote):
        return _render_report(None, args.run)
    cfg = load(args.config, args.overrides, paths_needed=False)
    with _session(cfg, args.remote, verbose=args.verbose) as spark:
        try:
            return _render_report(spark, args.run)
        except Exception as exc:
            if not _from_spark(exc):
                raise
            raise RunFailed(f"cannot render the report of {args.run}: {summary(exc)}") from exc


def _render_report(spark: SparkSession | None, path: str) -> str:
    from segmentation import report
    from segmentation.publish import for_root, resolve_run
    from segmentation.publish.files import write_report

    store = for_root(spark, path)
    folder = resolve_run(store)
    written = write_report(store, folder, report.render(report.load(store, folder)))
    return f"report         {written['html']}\nmarkdown       {written['markdown']}"


@contextlib.contextmanager
def _session(cfg: JobConfig, remote: str | None, *, verbose: bool = False) -> Iterator[SparkSession]:
    """The session for one command: the active one, or one started here and stopped after.

    This program owns its process, so it sets in its environment what a local session's Python workers need
    (``session.local_worker_environment``: this interpreter) and where Spark's own log goes: a file of this
    process, and the terminal only with -v (``session.terminal_logging``); the library sets no environment
    variable. A variable the user set stands.
    """
    from segmentation.runtime.session import (
        SPARK_LOG_VARIABLE,
        local_worker_environment,
        spark_session,
        terminal_logging,
    )

    environment = {**local_worker_environment(cfg.spark, remote), **terminal_logging(verbose)}
    for name, value in environment.items():
        os.environ.setdefault(name, value)
    with contextlib.suppress(OSError):  # Spark's messages can quote input values: the user's eyes only
        os.makedirs(os.path.dirname(os.environ[SPARK_LOG_VARIABLE]), mode=0o700, exist_ok=True)
    with contextlib.ExitStack() as opened:
        try:
            spark = opened.enter_context(spark_session(cfg.spark, remote))
        except PySparkException as exc:
            raise RunFailed(f"cannot start or reach Spark: {summary(exc)}") from exc
        yield spark


def _overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides."""
    return list(args.overrides)


def _flags(args: argparse.Namespace) -> list[tuple[str, str, Any]]:
    """The flags that set a key, as ``(flag, key, value)``: set after ``--set``, errors and ``config show`` name
    the flag."""
    flags: list[tuple[str, str, Any]] = []
    if getattr(args, "as_of", None):
        flags.append(("--as-of", "features.as_of", args.as_of))
    if getattr(args, "run_id", None):
        flags.append(("--run-id", "output.run_id", args.run_id))
    if getattr(args, "incremental", False):
        flags.append(("--incremental", "input.incremental", True))
    if getattr(args, "rebuild", False):
        flags += [("--rebuild", "input.incremental", True), ("--rebuild", "input.rebuild_state", True)]
    if getattr(args, "baseline", None):
        flags.append(("--baseline", "history.baseline", args.baseline))
    if getattr(args, "holdout_days", None) is not None:
        flags += [
            ("--holdout-days", "value.holdout", True),
            ("--holdout-days", "value.holdout_days", args.holdout_days),
        ]
    return flags
