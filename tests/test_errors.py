"""One-line summaries of Spark failures: the error-class line, no Java prefix, no quoted values."""

from __future__ import annotations

from segmentation.errors import summary

PY4J_STYLE = """An error occurred while calling o2353.parquet.
: org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Encountered error while reading file \
file:/data/in/part-1.parquet. Could not read footer.
\tat org.apache.spark.sql.errors.QueryExecutionErrors$.cannotReadFooterForFileError(QueryExecutionErrors.scala:1109)
"""


def test_summary_takes_the_error_class_line_and_drops_the_java_prefix() -> None:
    line = summary(RuntimeError(PY4J_STYLE))
    assert line.startswith("[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Encountered error while reading file")
    assert "file:/data/in/part-1.parquet" in line and "o2353" not in line and "\tat" not in line


def test_summary_masks_quoted_values() -> None:
    error = ValueError("[CAST_INVALID_INPUT] The value 'Kunde 17850' of the type \"STRING\" cannot be cast")
    assert summary(error) == "[CAST_INVALID_INPUT] The value '…' of the type \"STRING\" cannot be cast"


def test_summary_of_a_plain_message_and_of_none() -> None:
    assert summary(OSError("No space left on device\nmore")) == "No space left on device"
    assert summary(KeyError()) == "KeyError"
    assert len(summary(RuntimeError("x" * 1000))) == 400
