"""The command line's arguments: the parser of ``segmentation`` and its subcommands, with the help a user reads
(descriptions, examples, exit codes, defaults). ``docs/reference/cli.md`` is generated from it."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from segmentation.version import __version__

PROGRAM = """Customer segments from transaction logs, with PySpark.

Reads a transaction log (CSV, Parquet, JSON lines or a catalog table) or a customer table, quarantines bad lines
with a reason, builds per-customer features, picks k with a KMeans sweep, names and profiles the segments,
estimates what each customer is worth next, and publishes tables, a model, a manifest and a report at one
commit point."""
EXIT_CODES = """exit codes:
  0  done
  1  the run failed: its input, Spark or the file system (nothing was published)
  2  a configuration or usage mistake (the message names the key or the flag)
  3  a bug in segmentation (run again with -v for the traceback)
  4  the run was published but held by the drift checks (drift.action: hold): not current until promoted"""
PROGRAM_EXAMPLES = """examples:
  segmentation run --input sales.csv --output out/                  a log on this machine, in local mode
  segmentation run --input sales.csv --output out/ --as-of 2024-06-30
  segmentation config check --input sales.csv --output out/         check the settings, without Spark
  segmentation runs out/                                            the runs published under out/
  segmentation score --model out/ --input new.csv --output scored/  new customers into those segments"""
HELP_WIDTH = 100  # descriptions are wrapped to this width (argparse wraps options to the terminal's)
DOCS = "Every command and flag: docs/reference/cli.md; the configuration keys: docs/reference/configuration.md."


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; each option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, [], argparse.SUPPRESS) and action.option_strings
        return f"{text} (default: %(default)s)" if shown and "%(default)" not in text else text


def help_formatter(prog: str, width: int | None = None) -> argparse.HelpFormatter:
    """The formatter of every command's help (``width``: the terminal's when None)."""
    return _HelpFormatter(prog, width=width)


def _command(commands: Any, name: str, summary_line: str, description: str, examples: str = "") -> Any:
    """A subcommand with its one-line help, its description, examples and the exit codes."""
    epilog = "\n\n".join(part for part in (examples, EXIT_CODES) if part)
    wrapped = textwrap.fill(description, width=HELP_WIDTH)
    return commands.add_parser(
        name, help=summary_line, description=wrapped, epilog=epilog, formatter_class=help_formatter
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="segmentation",
        description=PROGRAM,
        epilog=f"{PROGRAM_EXAMPLES}\n\n{EXIT_CODES}\n\n{DOCS}",
        formatter_class=help_formatter,
    )
    parser.add_argument("--version", action="version", version=f"segmentation {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "run the whole job on a log or customer table and publish it",
        "Validate every line (bad ones quarantined with a reason), build per-customer features, sweep k, fit the "
        "final model, name and profile the segments, value the customers, compare with the last related run, "
        "and publish tables, model, manifest and report at one commit point. Prints a summary with the "
        "report's path.",
        """examples:
  segmentation run --input sales.csv --output out/
  segmentation run --input 'exports/*.parquet' --output hdfs:///segments --as-of 2024-06-30
  segmentation run --config conf/examples/cdnow.yaml --input cdnow.csv --output out/cdnow --holdout-days 273
  segmentation run --input-table sales.lines --output /tmp/models --set output.catalog.database=segments""",
    )
    _add_job_options(run, "the transaction log or customer table: a file, folder or glob", "output root")
    _add_holdout(run)

    score = _command(
        commands,
        "score",
        "assign new customers to the segments of a published run",
        "Apply a published run's saved model (and its value models) to new customers: their features, segment, "
        "value and the migration from the model's run, published like a run.",
        """examples:
  segmentation score --model out/ --input new.csv --output scored/
  segmentation score --model out/ --model-date 2024-06-30 --input new.csv --output scored/""",
    )
    score.add_argument(
        "--model", required=True, metavar="PATH", help="a published run folder, or an output root (see --model-date)"
    )
    score.add_argument("--model-date", metavar="YYYY-MM-DD", help="as-of date of the training run under a root")
    score.add_argument("--model-run-id", metavar="ID", help="run id of the training run under a root")
    _add_job_options(score, "the new log or customer table", "output root for the scored customers")

    _add_config_command(commands)
    _add_runs_command(commands)
    _add_promote_command(commands)

    rep = _command(
        commands,
        "report",
        "render the report of a published run again",
        "Write report.html and report.md of a published run again (from its tables and manifest). Spark starts "
        "only with --config, --set or --remote, for a root that only Spark reaches.",
        """examples:
  segmentation report out/                  the latest run under out/
  segmentation report out/runs/as_of_date=2024-06-30/run_id=main/attempt=1a2b3c""",
    )
    rep.add_argument("run", metavar="PATH", help="a published run folder, or an output root (its latest run)")
    _add_session_options(rep, "YAML config whose spark settings reach PATH")
    _add_verbosity(rep)

    hist = _command(
        commands,
        "history",
        "the runs under a local root with their baselines, or one table's Parquet files",
        "The committed runs under a local output root with the baseline each was compared with; with --files, "
        "the Parquet files of one table across runs (for DuckDB or any Parquet reader). See also: runs.",
        """examples:
  segmentation history out/
  segmentation history out/ --files segments""",
    )
    hist.add_argument("root", metavar="PATH", help="an output root")
    hist.add_argument("--files", metavar="TABLE", help="print the Parquet files of TABLE (e.g. segments) instead")
    hist.add_argument("--run-id", metavar="ID", help="only runs of this run id")
    _add_verbosity(hist)
    _add_generate_command(commands)
    return parser


def _add_generate_command(commands: Any) -> None:
    gen = _command(
        commands,
        "generate",
        "write a deterministic synthetic transaction log to try the job on",
        "A realistic log with planted buying behaviours, returns and dirty lines. The file's name picks its "
        "format: CSV (gzip when it ends in .gz), or JSON lines for .jsonl / .jsonl.gz.",
        """examples:
  segmentation generate --output data/log.csv.gz --truth data/truth.csv
  segmentation generate --output data/cdnow.csv --shape cdnow
  segmentation generate --output data/k5.csv.gz --scenario k5""",
    )
    gen.add_argument("--output", required=True, metavar="PATH", help="file to write, e.g. data/log.csv.gz")
    gen.add_argument("--customers", type=int, default=3000, metavar="N", help="how many customers")
    gen.add_argument("--seed", type=int, default=7, metavar="N", help="the random seed: the same seed, the same log")
    gen.add_argument("--truth", metavar="PATH", help="also write each customer's true behaviour as CSV")
    gen.add_argument("--planted", type=int, metavar="K", help="plant K well-separated behaviours (1 to 6)")
    gen.add_argument(
        "--shape",
        choices=("online_retail", "cdnow"),
        default="online_retail",
        help="cdnow: a purchase log without invoices or products (customer, yyyyMMdd date, items, total) as CSV, "
        "run with conf/examples/cdnow.yaml",
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


def _add_runs_command(commands: Any) -> None:
    runs = _command(
        commands,
        "runs",
        "list the published runs under an output root or in a catalog database",
        "One line per committed run: as-of date, run id, kind, when it was committed (UTC), chosen k, customers "
        "and where its report is. A local root is read without Spark; another file system (hdfs://, s3a://, ...) "
        "or --catalog starts a session from --config.",
        """examples:
  segmentation runs out/
  segmentation runs hdfs:///segments --config conf/local.yaml --json
  segmentation runs --catalog main.segmentation --remote sc://HOST:443/;token=...   (Databricks Connect)""",
    )
    runs.add_argument("root", metavar="ROOT", nargs="?", help="an output root (not with --catalog)")
    runs.add_argument("--catalog", metavar="[CATALOG.]DATABASE", help="list the runs published as catalog tables")
    runs.add_argument("--run-id", metavar="ID", help="only runs of this run id")
    runs.add_argument("--json", action="store_true", help="one JSON object per run, one per line")
    _add_session_options(runs, "YAML config whose spark settings to use")
    _add_verbosity(runs)


def _add_session_options(parser: argparse.ArgumentParser, config_help: str) -> None:
    """--config, --set and --remote of a command that starts Spark only when it needs to."""
    parser.add_argument("--config", action="append", default=[], metavar="FILE", help=config_help)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one config key"
    )
    parser.add_argument("--remote", metavar="sc://HOST:PORT", help="over Spark Connect")


def _add_promote_command(commands: Any) -> None:
    promote = _command(
        commands,
        "promote",
        "make a run that the drift checks held the current one",
        "A run published with drift.action: hold and a measure beyond its threshold is not the current run: latest "
        "(files) and the runs table's current run (held = true) stay where they were. After a person looked at it "
        "(its report's What changed section, the drift table), promote moves them to it.",
        """examples:
  segmentation promote 2024-06-30 main --output out/
  segmentation promote 2024-06-30 main --config conf/databricks.yaml""",
    )
    promote.add_argument("as_of", metavar="DATE", help="the held run's as-of date (YYYY-MM-DD)")
    promote.add_argument("run_id", metavar="RUN_ID", help="the held run's run id")
    promote.add_argument("--output", metavar="PATH", help="the output root (output.path)")
    _add_session_options(promote, "YAML config naming the output (and its tables)")
    _add_verbosity(promote)


def _add_config_command(commands: Any) -> None:
    """``config show`` and ``config check``: the effective configuration, without Spark."""
    config = _command(
        commands,
        "config",
        "show or check the effective configuration, without Spark",
        "The configuration a run with the same options would use: defaults, then each --config file (after the "
        "base: files it names), then --set and the flags. Nothing is read but the configuration files.",
    )
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = _command(
        actions,
        "show",
        "print every key as YAML with where its value came from",
        "Every configuration key as YAML (a file --config reads back), each with a comment saying where its "
        "value came from: default, a file, --set KEY or a flag.",
        "examples:\n  segmentation config show\n  segmentation config show --config conf/demo.yaml --set model.k_max=8",
    )
    check = _command(
        actions,
        "check",
        "validate the configuration as a run would, without starting Spark",
        "Validate the configuration as a run would (keys, types, choices, cross-key rules, that the input exists "
        "when it is on this machine) and stop there: exit 0 and one line when it is valid, exit 2 with the "
        "message a run would give when it is not.",
        "examples:\n  segmentation config check --input sales.csv --output out/ --as-of 2024-06-30",
    )
    for action in (show, check):
        _add_job_options(action, "the log or customer table", "output root", session=False)
        _add_holdout(action)


def _add_holdout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--holdout-days",
        type=int,
        metavar="N",
        help="check the value forecast against the N days of lines after the as-of date (value.holdout)",
    )


def _add_job_options(
    parser: argparse.ArgumentParser, input_help: str, output_help: str, *, session: bool = True
) -> None:
    """The options of a job's configuration (run, score, config), with --remote and --json where it runs."""
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML config, relative to the working directory (repeatable: later files win)",
    )
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--input", metavar="PATH", help=f"{input_help} (input.path)")
    inputs.add_argument(
        "--input-table", metavar="NAME", help="a catalog table or view to read instead of files (input.table)"
    )
    parser.add_argument(
        "--output", metavar="PATH", help=f"{output_help} (output.path); required unless a config sets it"
    )
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="the day the features are measured at (features.as_of; default: the day of the latest valid line)",
    )
    parser.add_argument("--run-id", metavar="ID", help="run id (output.run_id; a re-run of a date and id replaces it)")
    incremental = parser.add_mutually_exclusive_group()
    incremental.add_argument(
        "--incremental",
        action="store_true",
        help="read only the input the last run's state has not absorbed, and keep the state (input.incremental)",
    )
    incremental.add_argument(
        "--rebuild",
        action="store_true",
        help="read the whole input and write a new state (input.incremental and input.rebuild_state)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DATE[/RUN_ID]",
        help="the published run to compare with (history.baseline; default: the latest earlier related run)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. --set model.k_max=8 (repeatable)",
    )
    if session:
        parser.add_argument(
            "--remote",
            metavar="sc://HOST:PORT",
            help="run over Spark Connect (Databricks Connect, a Connect server); also read from SPARK_REMOTE",
        )
        parser.add_argument(
            "--json", action="store_true", help="print the summary as one JSON object on stdout (for orchestrators)"
        )
    _add_verbosity(parser)


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and Spark's own warnings on the terminal"
    )
