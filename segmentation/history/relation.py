"""Whether a baseline is related to this run, and so taken: the rule, its measure in Spark, and what it decides.

A baseline is related when it read the same input as this run (the same table name, else the same path string
as its manifest records, and the same ``input.where``). A baseline of another input (a later export, another
table, another filter) is related only when at least ``history.min_shared_customers`` of the smaller run's
customers are in both runs. Customers are compared
as published, pseudonymised with this run's key when it is one that pseudonymises, as the migration compares
them: one join and one count, no customer reaches the driver.

A found baseline that is unrelated is ignored, and the run looks further back, newest first, through at most
``LOOK_BACK`` earlier runs of its run id for the latest related one; with none, it has no baseline and no
migration, and numbers its segments after the highest id its run id ever used (ids are never reused). A named
one (``history.baseline``) is taken all the same, with a warning. Either way the manifest's
history records the status, the reason and the measure (counts only).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import DataFrame

from segmentation.config import JobConfig
from segmentation.history.baseline import Baseline
from segmentation.publish import protect
from segmentation.publish.manifest import BaselineCheck, RunRef

log = logging.getLogger(__name__)

Status = Literal["none", "taken", "taken unrelated", "ignored"]
CUSTOMER_ID = "customer_id"
LOOK_BACK = 5  # earlier runs judged at most, newest first, before a run starts without a baseline


@dataclass(frozen=True)
class Judged:
    """The baseline this run uses (None when there is none or it was ignored) and what the manifest records."""

    baseline: Baseline | None
    status: Status
    reason: str | None = None
    check: BaselineCheck | None = None
    used_up_to: int = 0  # the highest segment id any run of this run id used: new ids come after it

    def as_dict(self) -> dict[str, Any]:
        """The manifest history's ``status``, ``reason`` and ``check``."""
        return {"status": self.status, "reason": self.reason, "check": self.check}


def input_name(path: str | None, table: str | None, where: str | None = None) -> str | None:
    """A run's input as the rule compares it: its table, else its path, with its ``input.where`` filter."""
    name = table or path
    return f"{name} WHERE {where}" if name is not None and where else name


def share_of_smaller(shared: int, customers: int, baseline_customers: int) -> float:
    """``shared`` customers as a share of the smaller run's customers (0 when either run has none)."""
    smaller = min(customers, baseline_customers)
    return shared / smaller if smaller > 0 else 0.0


def percent(share: float) -> str:
    """A share as a percentage rounded down to a tenth (49.96% is 49.9%, not a misleading 50%)."""
    return f"{math.floor(share * 1000 + 1e-9) / 10:g}%"


def shared_customers(current: DataFrame, previous: DataFrame, key: bytes | None) -> int:
    """Customers in both runs: ``current``'s ids as this run publishes them (pseudonymised with ``key``) joined
    with ``previous``'s as published; one join and one count."""
    mine = protect(current.select(CUSTOMER_ID), key)
    return mine.join(previous.select(CUSTOMER_ID), CUSTOMER_ID, "inner").count()


def check(
    baseline: Baseline, cfg: JobConfig, current: DataFrame, *, customers: int, key: bytes | None
) -> BaselineCheck:
    """How ``baseline`` relates to this run, whose customers are ``current`` (``customers`` of them): the same
    input is related without a measure; another input is measured (``shared_customers``)."""
    recorded = baseline.manifest.input
    mine = input_name(cfg.input.path, cfg.input.table, cfg.input.where)
    theirs = input_name(recorded.path, recorded.table, recorded.where)
    known = {
        "run": RunRef(as_of_date=baseline.as_of.isoformat(), run_id=baseline.run_id, where=baseline.where),
        "input": mine,
        "baseline_input": theirs,
        "customers": customers,
        "baseline_customers": baseline.manifest.counts.customers,
    }
    if mine is not None and mine == theirs:
        return BaselineCheck(**known, same_input=True, related=True)
    shared = shared_customers(current, baseline.features, key)
    share = share_of_smaller(shared, customers, baseline.manifest.counts.customers)
    least = cfg.history.min_shared_customers
    return BaselineCheck(
        **known,
        same_input=False,
        shared_customers=shared,
        shared_share=round(share, 6),
        min_shared=least,
        related=share >= least,
    )


def reason(found: BaselineCheck) -> str:
    """Why a baseline is related or not, in words: the inputs and the share of customers, no customer."""
    if found.same_input:
        return f"same input ({found.input})"
    shared = f"{percent(found.shared_share or 0.0)} of customers shared"
    if found.related:
        return f"related input ({found.input} vs {found.baseline_input}; {shared})"
    return f"unrelated input ({found.input} vs {found.baseline_input}; {shared})"


def decide(found: BaselineCheck, *, named: bool) -> Status:
    """A related baseline is taken; an unrelated one is taken only when named, else ignored."""
    if found.related:
        return "taken"
    return "taken unrelated" if named else "ignored"


def judge(
    baseline: Baseline | None,
    cfg: JobConfig,
    current: DataFrame,
    *,
    customers: int,
    key: bytes | None,
    earlier: Callable[[Baseline], Baseline | None] | None = None,
) -> Judged:
    """The baseline this run uses (see the module), after the rule; an unrelated one logs a warning. ``earlier``
    gives the run before a found one (``baseline.find_baseline`` before its date): an ignored baseline's
    predecessors are judged in turn, up to ``LOOK_BACK`` runs in all."""
    judged = judge_one(baseline, cfg, current, customers=customers, key=key)
    first = judged
    for _ in range(LOOK_BACK - 1):
        if judged.status != "ignored" or earlier is None or judged.check is None:
            break
        assert baseline is not None
        baseline = earlier(baseline)
        if baseline is None:
            break
        judged = judge_one(baseline, cfg, current, customers=customers, key=key)
    if judged.status == "ignored" and judged is not first:  # the first ignored one explains the fresh start
        judged = dataclasses.replace(first, used_up_to=max(first.used_up_to, judged.used_up_to))
    return judged


def judge_one(
    baseline: Baseline | None, cfg: JobConfig, current: DataFrame, *, customers: int, key: bytes | None
) -> Judged:
    """``baseline`` judged by the rule alone."""
    if baseline is None:
        return Judged(None, "none")
    found = check(baseline, cfg, current, customers=customers, key=key)
    status, why = decide(found, named=cfg.history.baseline is not None), reason(found)
    name = f"{baseline.as_of.isoformat()}/{baseline.run_id}"
    if status == "ignored":
        log.warning("baseline %s ignored: %s", name, why)
        return Judged(None, status, why, found, used_up_to=baseline.used_up_to)
    if status == "taken unrelated":
        log.warning("baseline %s taken because history.baseline names it, though it is unrelated: %s", name, why)
    else:
        log.info("baseline %s taken: %s", name, why)
    return Judged(baseline, status, why, found, used_up_to=baseline.used_up_to)
