"""The report's value section in words (``report.value``): the sentence for a segment whose future is far from
its past, and the one line of a run whose value was skipped or not fitted. No Spark."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentation.publish.manifest import ValueSection
from segmentation.report.inputs import report_inputs
from segmentation.report.value import far_sentences, value_lines

from .manifests import manifest


def profiles(*rows: tuple[str, float, float, float]) -> pd.DataFrame:
    """Segments as (name, revenue share, expected value share, share probably inactive)."""
    return pd.DataFrame(
        [
            {
                "segment": i + 1,
                "segment_name": name,
                "revenue_share": past,
                "expected_value_share": future,
                "probably_inactive_share": inactive,
            }
            for i, (name, past, future, inactive) in enumerate(rows)
        ]
    )


def test_a_segment_whose_future_share_is_far_from_its_past_share_gets_a_sentence() -> None:
    table = profiles(
        ("Champions", 0.31, 0.18, 0.40),  # 18 / 31 < 2/3 and 13 points apart: said
        ("Loyal", 0.30, 0.33, 0.10),  # close: not said
        ("Newcomers", 0.05, 0.20, 0.05),  # 4 times its past share: said, the other way
        ("Dormant", 0.02, 0.001, 0.95),  # far in ratio, but under 5 points apart: not said
    )
    assert far_sentences(table, 365) == [
        "Champions hold 31% of past revenue and 18% of the next 365 days' expected value: 40% of them are "
        "probably no longer active.",
        "Newcomers hold 5% of past revenue and 20% of the next 365 days' expected value: their customers are more "
        "likely to buy again than their past revenue suggests.",
    ]


NOT_FITTED = "value model bgnbd: every customer made one purchase only (x = 0): repeat purchases cannot be modelled"


@pytest.mark.parametrize(
    ("section", "line"),
    [
        (None, "Customer value was not computed for this run (it was published before value models)."),
        (
            ValueSection(status="skipped", reason="a customer table has no purchase history to model"),
            "Customer value: skipped (a customer table has no purchase history to model).",
        ),
        (ValueSection(status="not fitted", reason=NOT_FITTED), f"Customer value: not fitted. {NOT_FITTED}."),
    ],
)
def test_a_run_without_value_says_why_in_one_line(section: ValueSection | None, line: str) -> None:
    run = manifest("segmentation").model_copy(update={"value": section})
    one = pd.DataFrame({"segment": [1], "segment_name": ["A"], "customers": [1], "customer_share": [1.0]})
    assert value_lines(report_inputs(run, one, None)) == [line]
