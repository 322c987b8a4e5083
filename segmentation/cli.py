"""The command line: ``segmentation run``, ``score``, ``report``, ``history`` and ``generate``.

Arguments are parsed from an explicit ``argv`` so that parsing is testable; ``main`` returns an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pyspark.errors import PySparkException

from segmentation.config import load
from segmentation.errors import ConfigError, RunFailed, SegmentationError, summary
from segmentation.version import __version__

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segmentation.config import JobConfig
    from segmentation.runtime.context import RunSummary

log = logging.getLogger("segmentation")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="segmentation", description=__doc__)
    parser.add_argument("--version", action="version", version=f"segmentation {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole job: validate, features, k sweep, segments, outputs")
    _add_job_options(run, "input file, folder or glob", "output root folder")
    run.add_argument(
        "--holdout-days",
        type=int,
        metavar="N",
        help="check the value forecast against the N days of lines after the as-of date (value.holdout)",
    )

    score = commands.add_parser("score", help="assign new customers to the segments of a published run")
    score.add_argument(
        "--model", required=True, metavar="PATH", help="a published run folder, or an output root (see --model-date)"
    )
    score.add_argument("--model-date", metavar="YYYY-MM-DD", help="as-of date of the training run under a root")
    score.add_argument("--model-run-id", metavar="ID", help="run id of the training run under a root")
    _add_job_options(score, "the new log or customer table", "output root for the scored customers")

    rep = commands.add_parser(
        "report", help="re-render the report of a published run (Spark only with --config, --set or --remote)"
    )
    rep.add_argument("run", metavar="PATH", help="a published run folder, or an output root (its latest run)")
    rep.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="YAML config whose spark settings reach PATH"
    )
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rep.add_argument("--remote", metavar="sc://HOST:PORT", help="over Spark Connect")
    _add_verbosity(rep)

    hist = commands.add_parser(
        "history", help="list the published runs under a local output root, or one table's Parquet files"
    )
    hist.add_argument("root", metavar="PATH", help="an output root")
    hist.add_argument("--files", metavar="TABLE", help="print the Parquet files of TABLE (e.g. segments) instead")
    hist.add_argument("--run-id", metavar="ID", help="only runs of this run id")
    _add_verbosity(hist)

    gen = commands.add_parser("generate", help="write a deterministic synthetic transaction log (gzip CSV)")
    gen.add_argument("--output", required=True, metavar="PATH", help="file to write, e.g. data/log.csv.gz")
    gen.add_argument("--customers", type=int, default=3000)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--truth", metavar="PATH", help="also write each customer's true behaviour as CSV")
    gen.add_argument("--planted", type=int, metavar="K", help="plant K well-separated behaviours (1 to 6)")
    gen.add_argument(
        "--shape",
        choices=("online_retail", "cdnow"),
        default="online_retail",
        help="cdnow: a purchase log without invoices or products (customer, yyyyMMdd date, items, total) as CSV, "
        "run with conf/examples/cdnow.yaml; an --output ending in .jsonl or .jsonl.gz writes JSON lines",
    )
    gen.add_argument(
        "--scenario",
        metavar="NAME",
        help="a planted scenario for the choice of k (segmentation/demo/planted.py: k3..k8, unequal, overlap, "
        "heavy_tail, one_time, repeat_split, customer_table); prints the settings to run it with",
    )
    gen.add_argument(
        "--periods",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: two periods of 182 days with planted moves between behaviours (see the printed as-of dates)",
    )
    _add_verbosity(gen)
    return parser


def _add_job_options(parser: argparse.ArgumentParser, input_help: str, output_help: str) -> None:
    """--config, --input, --output, --set and the verbosity flags shared by run and score."""
    parser.add_argument("--config", action="append", default=[], metavar="FILE", help="YAML config (repeatable)")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--input", metavar="PATH", help=f"{input_help} (overrides input.path)")
    inputs.add_argument(
        "--input-table", metavar="NAME", help="a catalog table or view to read instead of files (input.table)"
    )
    parser.add_argument("--output", metavar="PATH", help=f"{output_help} (overrides output.path)")
    parser.add_argument(
        "--remote",
        metavar="sc://HOST:PORT",
        help="run over Spark Connect (Databricks Connect, a Connect server); also read from SPARK_REMOTE",
    )
    parser.add_argument("--run-id", metavar="ID", help="run id (overrides output.run_id; a re-run replaces it)")
    parser.add_argument(
        "--baseline",
        metavar="DATE[/RUN_ID]",
        help="the published run to compare with (overrides history.baseline; default: the latest earlier date)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. --set model.k_max=8 (repeatable)",
    )
    _add_verbosity(parser)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    group.add_argument("-v", "--verbose", action="store_true", help="debug logging")


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
    """Entry point of the ``segmentation`` console script: an exit code, never a traceback for a known error.

    0: done. 1: the run failed (its input, or Spark or the file system during a stage; nothing was published).
    2: a configuration mistake. 3: a bug in this project (the traceback is logged with ``-v``).
    """
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.quiet, args.verbose)
    command = {"generate": _generate, "score": _score, "report": _report, "run": _run, "history": _history}[
        args.command
    ]
    try:
        print(command(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SegmentationError, OSError) as exc:  # OSError: a file the command reads or writes outside a run
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        print(
            f"internal error: {type(exc).__name__}: {summary(exc)}. This is a bug in segmentation, not a problem "
            "with the input or the configuration; run again with -v for the traceback",
            file=sys.stderr,
        )
        return EXIT_BUG
    return EXIT_OK


def _generate(args: argparse.Namespace) -> str:
    from segmentation.demo import generate, planted

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
        if not args.output.lower().endswith((".csv", ".csv.gz")):
            raise ConfigError(f"--output: a CDNOW-shaped log is written as CSV; name it .csv, not {args.output!r}")
        lines = generate.write_cdnow(args.output, customers=args.customers, seed=args.seed, truth_path=args.truth)
        return f"wrote {lines} purchases of {args.customers} customers to {args.output}"
    if args.output.lower().endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
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
    from segmentation.history import readers
    from segmentation.publish import for_root, read_manifest

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


def _run(args: argparse.Namespace) -> str:
    cfg = load(
        args.config, _overrides(args), input_path=args.input, output_path=args.output, input_table=args.input_table
    )
    from segmentation.jobs import segment

    with _session(cfg, args.remote) as spark:
        result = segment.run(spark, cfg)
    return summary_text(result, chosen=result.choice.reason, took=result.timings.get("total", 0.0))


def _score(args: argparse.Namespace) -> str:
    cfg = load(
        args.config, _overrides(args), input_path=args.input, output_path=args.output, input_table=args.input_table
    )
    try:
        model_date = dt.date.fromisoformat(args.model_date) if args.model_date else None
    except ValueError:
        raise ConfigError(f"--model-date: expected a date like 2011-12-09, got {args.model_date!r}") from None
    from segmentation.jobs import score

    with _session(cfg, args.remote) as spark:
        result = score.score(spark, cfg, args.model, model_as_of=model_date, model_run_id=args.model_run_id)
    return summary_text(result, model=result.model_as_of)


def _report(args: argparse.Namespace) -> str:
    """Without --config, --set or --remote: a local path, read without Spark; else through the session, so the
    path resolves as Spark resolves it (an HDFS default file system, s3a://, ...)."""

    if not (args.config or args.overrides or args.remote):
        return _render_report(None, args.run)
    cfg = load(args.config, args.overrides, paths_needed=False)
    with _session(cfg, args.remote) as spark:
        return _render_report(spark, args.run)


def _render_report(spark: SparkSession | None, path: str) -> str:
    from segmentation import report
    from segmentation.publish import for_root, resolve_run
    from segmentation.publish.files import write_report

    store = for_root(spark, path)
    folder = resolve_run(store)
    written = write_report(store, folder, report.render(report.load(store, folder)))
    return f"report         {written['html']}\nmarkdown       {written['markdown']}"


@contextlib.contextmanager
def _session(cfg: JobConfig, remote: str | None) -> Iterator[SparkSession]:
    """The session for one command: the active one, or one started here and stopped after.

    This program owns its process, so it sets what a local session's Python workers need in its environment
    (``session.local_worker_environment``: this interpreter); the library itself sets no environment variable.
    """
    from segmentation.runtime.session import local_worker_environment, spark_session

    for name, value in local_worker_environment(cfg.spark, remote).items():
        os.environ.setdefault(name, value)
    with contextlib.ExitStack() as opened:
        try:
            spark = opened.enter_context(spark_session(cfg.spark, remote))
        except PySparkException as exc:
            raise RunFailed(f"cannot start or reach Spark: {summary(exc)}") from exc
        yield spark


def _overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides, plus ``--run-id`` as ``output.run_id`` (quoted, so it stays text)."""
    extra = [f"output.run_id={args.run_id!r}"] if args.run_id else []
    if args.baseline:
        extra.append(f"history.baseline={args.baseline!r}")
    if getattr(args, "holdout_days", None) is not None:
        extra += ["value.holdout=true", f"value.holdout_days={args.holdout_days}"]
    return [*args.overrides, *extra]


def summary_text(
    result: RunSummary, *, chosen: str | None = None, model: dt.date | None = None, took: float | None = None
) -> str:
    """A short human summary of a published run (``chosen``: the reason for k; ``model``: a scoring run's model)."""
    counts = result.counts
    sizes = ", ".join(
        f"{seg} {result.segment_names.get(seg, '')}: {n}" for seg, n in sorted(result.segment_sizes.items())
    )
    as_of = result.as_of.isoformat() + (f" (model of {model.isoformat()})" if model else "")
    lines = [
        f"as-of date     {as_of}",
        f"lines          {counts.lines_in} in, {counts.lines_clean} clean, "
        f"{counts.lines_quarantined} quarantined ({counts.quarantined_share:.1%}), "
        f"{counts.out_of_window} out of window",
        f"customers      {result.customers}",
    ]
    if chosen is not None:
        lines.append(f"chosen k       {chosen}")
    lines += [f"segment sizes  {sizes}", f"published      {result.run_folder}"]
    if took is not None:
        lines.append(f"took           {took:.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
