"""The command line, ``segmentation``: ``parser`` (the arguments and their help) and ``main`` (the commands and
their exit codes). ``python -m segmentation.cli`` is the same program."""

from segmentation.cli.main import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_OK,
    EXIT_USAGE,
    LiveStatusHandler,
    _flags,
    _overrides,
    configure_logging,
    main,
)
from segmentation.cli.parser import build_parser
from segmentation.cli.summary import summary_record, summary_text

__all__ = [
    "EXIT_BUG",
    "EXIT_FAILED",
    "EXIT_HELD",
    "EXIT_OK",
    "EXIT_USAGE",
    "LiveStatusHandler",
    "_flags",
    "_overrides",
    "build_parser",
    "configure_logging",
    "main",
    "summary_record",
    "summary_text",
]
