"""The project's one family of errors, and one-line summaries of Spark and I/O failures for their messages.

Every error the job raises on purpose is a ``SegmentationError``; its message names the config key, file or
column and what was expected, and never holds a customer's values:

- ``ConfigError``: the configuration (a file, ``--set`` or a flag) is wrong; found before Spark starts.
- ``InputError``: the input (or a published run it needs) cannot give a trustworthy result.
- ``RunFailed``: Spark or the file system failed during a stage; nothing was published.

Anything else that escapes the job is a bug in this project, and surfaces as one (see ``cli.main``).
"""

from __future__ import annotations

import re

from pyspark.errors import PySparkException


class SegmentationError(Exception):
    """A run could not do what was asked; the message says which key, file or column, and why."""


class ConfigError(SegmentationError):
    """A configuration mistake: the message names the key, where its value came from and what was expected."""


class InputError(SegmentationError):
    """The input, or a published run it refers to, cannot be used as configured; nothing was published."""


class RunFailed(SegmentationError):
    """Spark or the file system failed during a stage; nothing was published."""


ERROR_CONDITION = re.compile(r"\[[A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*\]")
PY4J_CALL = re.compile(r"^An error occurred while calling \S+\.?$")
JAVA_PREFIX = re.compile(r"^(?:Caused by: )?(?:[a-z][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")
QUOTED_VALUE = re.compile(r"'[^'\n]*'")
MAX_LENGTH = 400


def summary(exc: BaseException) -> str:
    """The most telling line of ``exc``'s message, without quoted values, at most 400 characters.

    For a Spark error that is the line with its error condition (``[FAILED_READ_FILE.…] … file:/…``), which
    ``PySparkException.getCondition`` names (a Py4J error only shows it in its text); otherwise the first line
    after Py4J's "An error occurred while calling o123.x." header, without a Java class prefix. Single-quoted
    literals (where Spark quotes values, such as a value that failed a cast) are masked, so a summary names
    files, columns and error conditions but no customer's values.
    """
    lines = [line.strip().lstrip(": ") for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if line and not PY4J_CALL.match(line)]
    if not lines:
        return type(exc).__name__
    condition = _condition(exc)
    if condition:
        tagged = [line for line in lines if f"[{condition}]" in line]
    else:  # a Py4J error (an ML fit, a model load) names its condition only in its text
        tagged = [line for line in lines if ERROR_CONDITION.search(line)]
    line = JAVA_PREFIX.sub("", tagged[0] if tagged else lines[0])
    if condition and f"[{condition}]" not in line:
        line = f"[{condition}] {line}"
    return QUOTED_VALUE.sub("'…'", line)[:MAX_LENGTH]


def _condition(exc: BaseException) -> str | None:
    """Spark's error condition of ``exc`` (``FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER``), if it has one."""
    if not isinstance(exc, PySparkException):
        return None
    try:
        return exc.getCondition()
    except Exception:  # a classic exception asks the JVM, which may be gone by now
        return None
