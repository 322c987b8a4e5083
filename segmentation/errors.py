"""One-line summaries of Spark and I/O failures for error messages: the error class and what it names.

Py4J wraps a JVM failure as "An error occurred while calling o123.parquet." followed by the Java stack; the
useful line is the one with Spark's error class (``[FAILED_READ_FILE.…] … file:/…/part.parquet …``).
Single-quoted literals (where Spark quotes values, e.g. a value that failed a cast) are masked, so a
summary names files, columns and error classes but no customer's values.
"""

from __future__ import annotations

import re

ERROR_CLASS = re.compile(r"\[[A-Z][A-Z0-9_]*(?:\.[A-Z][A-Z0-9_]*)*\]")
JAVA_PREFIX = re.compile(r"^(?:[a-z][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")
QUOTED_VALUE = re.compile(r"'[^'\n]*'")
MAX_LENGTH = 400


def summary(exc: BaseException) -> str:
    """The most telling line of ``exc``'s message, without quoted values, at most 400 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = next((candidate for candidate in lines if ERROR_CLASS.search(candidate)), lines[0])
    line = JAVA_PREFIX.sub("", line.lstrip(": "))
    line = QUOTED_VALUE.sub("'…'", line)
    return line[:MAX_LENGTH]
