"""The Online Retail log validated at three as-of dates, as a backfill runs a cumulative log: lines dated after the
as-of date are out of window (counted apart, never quarantined) and the default quarantine threshold holds.

Every count is checked against an independent count in pandas. Each line of this log has a readable date (no
malformed row, no unparseable timestamp), so a line is out of window exactly when it is dated after the as-of
date; the lines dated up to it are clean or quarantined by the first per-line reason, and an exact copy of an
earlier valid line in the window is a duplicate.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation.input import sources
from segmentation.input import validate as validation
from segmentation.runtime.context import RunContext as JobRun
from segmentation.runtime.timing import utc_today

from .conftest import ONLINE_RETAIL, job_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not ONLINE_RETAIL.exists() and not os.environ.get("CI"), reason="the Online Retail log is not beside this repo"
    ),
]
DATES = (dt.date(2011, 3, 31), dt.date(2011, 6, 30), dt.date(2011, 12, 9))


def expected_counts(log: pd.DataFrame, as_of: dt.date) -> validation.LineCounts:
    """The counts at ``as_of``, from pandas: the first per-line reason, then the window, then exact copies."""
    stripped = log.apply(lambda column: column.str.strip())
    ts = pd.to_datetime(stripped["InvoiceDate"], format="%m/%d/%Y %H:%M", errors="coerce")
    quantity = pd.to_numeric(stripped["Quantity"], errors="coerce")
    price = pd.to_numeric(stripped["UnitPrice"], errors="coerce")
    reasons = {
        "missing_customer_id": stripped["CustomerID"].fillna("") == "",
        "missing_invoice_id": stripped["InvoiceNo"].fillna("") == "",
        "invalid_timestamp": ts.isna(),
        "invalid_number": ~(np.isfinite(quantity) & np.isfinite(price)),
        "non_positive_price": price <= 0,
    }
    reason = pd.Series(np.select(list(reasons.values()), list(reasons), default=""), index=log.index)
    in_window = ts < pd.Timestamp(as_of + dt.timedelta(days=1))
    copies = log[(reason == "") & in_window].duplicated(keep="first")  # the whole source line, as Spark compares it
    reason[copies[copies].index] = "duplicate_line"
    quarantined = reason[in_window & (reason != "")].value_counts()
    return validation.LineCounts(
        lines_in=len(log),
        lines_clean=int((in_window & (reason == "")).sum()),
        quarantined={str(k): int(v) for k, v in quarantined.items()},
        out_of_window=int((~in_window).sum()),
    )


def test_online_retail_at_three_as_of_dates(spark: SparkSession, tmp_path: Path) -> None:
    log = pd.read_csv(ONLINE_RETAIL, dtype=str, keep_default_na=False, na_values=[""])  # "" is null, as in Spark
    assert pd.to_datetime(log["InvoiceDate"], format="%m/%d/%Y %H:%M").max() < pd.Timestamp("2011-12-10")
    got: dict[dt.date, validation.LineCounts] = {}
    cfg = job_config(tmp_path, str(ONLINE_RETAIL))  # the default quarantine threshold (50%)
    with JobRun(spark, cfg) as run:  # read once into the work copy, as read_validate does, then one validate per date
        raw = sources.read_raw(spark, cfg.input)
        copy = run.work_copy(validation.lines_for_copy(raw, cfg.input), "lines")
        for as_of in DATES:
            at_date = job_config(tmp_path, str(ONLINE_RETAIL), f"features.as_of={as_of.isoformat()}")
            validated = validation.validate(copy, at_date, today=utc_today(), keep=run.keep)
            assert validated.as_of == as_of
            got[as_of] = validated.counts

    for as_of, counts in got.items():
        assert counts.lines_in == 541_909 == counts.lines_clean + counts.lines_quarantined + counts.out_of_window
        assert counts == expected_counts(log, as_of), as_of
        assert counts.quarantined_share <= 0.5
    march, june, december = (got[d] for d in DATES)
    assert march.out_of_window > june.out_of_window > 0 == december.out_of_window
    assert june.out_of_window == 296_006  # the lines dated from 1 July 2011; 229,913 of them pass every check
    # every line of this log has a readable date, so each reason counts only the lines dated up to the as-of date:
    # the counts grow with it, and the reasons that need no date never appear
    for reason in december.quarantined:
        assert march.quarantined.get(reason, 0) <= june.quarantined.get(reason, 0) <= december.quarantined[reason]
    assert december.quarantined["missing_customer_id"] == 135_080  # the whole log's, as in test_end_to_end
    assert not {"malformed_row", "invalid_timestamp", "after_today"} & {*march.quarantined, *december.quarantined}
