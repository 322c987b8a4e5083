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


def test_a_py4j_error_s_condition_line_is_found_in_its_text() -> None:
    text = (
        "An error occurred while calling o88.fit.\n: org.apache.spark.SparkException: Job aborted due to stage "
        "failure\nCaused by: org.apache.spark.SparkRuntimeException: [CAST_INVALID_INPUT] The value 'Kunde 7' "
        "cannot be cast"
    )
    assert summary(RuntimeError(text)) == "[CAST_INVALID_INPUT] The value '…' cannot be cast"
    # without a condition anywhere: the first line after Py4J's header, its Java class prefix dropped
    plain = "An error occurred while calling o88.fit.\n: java.lang.OutOfMemoryError: Java heap space\nmore"
    assert summary(RuntimeError(plain)) == "Java heap space"
