"""Segment identity across runs (pure functions): the optimal matching, new and vanished segments, splits and
merges read from the moves, the migration rows and the report's words about them."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from segmentation.history import identity, migration
from segmentation.publish import storage
from segmentation.publish.manifest import Manifest
from segmentation.publish.publishers import FilePublisher
from segmentation.report import text

from .manifests import manifest, raw_manifest


def brute_force_cost(cost: list[list[float]]) -> float:
    rows, cols = len(cost), len(cost[0])
    if rows <= cols:
        return min(sum(cost[i][p[i]] for i in range(rows)) for p in itertools.permutations(range(cols), rows))
    return min(sum(cost[p[j]][j] for j in range(cols)) for p in itertools.permutations(range(rows), cols))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 5), (4, 6), (6, 4), (7, 7)])
def test_optimal_pairs_have_the_least_total_cost(shape: tuple[int, int]) -> None:
    rng = random.Random(sum(shape))
    for _ in range(20):
        cost = [[rng.uniform(0, 10) for _ in range(shape[1])] for _ in range(shape[0])]
        pairs = identity.optimal_pairs(cost)
        assert len(pairs) == min(shape)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == min(shape)  # one to one
        assert sum(cost[i][j] for i, j in pairs) == pytest.approx(brute_force_cost(cost))


def test_greedy_nearest_is_not_what_is_chosen() -> None:
    # row 0's nearest column is 0, but giving column 0 to row 1 costs less in total
    assert identity.optimal_pairs([[1.0, 2.0], [1.5, 10.0]]) == [(0, 1), (1, 0)]


BASELINE = {1: [2.0, 0.0], 2: [0.0, 2.0], 3: [-2.0, -2.0]}
BASELINE_NAMES = {1: "Champions", 2: "Loyal", 3: "Lost"}


def test_the_same_behaviours_keep_their_ids_and_names_whatever_this_run_numbered_them() -> None:
    current = {1: [0.1, 2.1], 2: [-2.0, -1.9], 3: [2.1, 0.0]}  # provisional ids in another order
    names = {1: "Big spenders", 2: "Hibernating", 3: "Champions"}  # this run's own names do not matter
    result = identity.match(
        current, BASELINE, current_names=names, baseline_names=BASELINE_NAMES, max_distance=1.0, used_up_to=3
    )
    assert result.ids == {1: 2, 2: 3, 3: 1}
    assert result.names == BASELINE_NAMES
    assert result.new == [] and result.vanished == []
    assert [m["segment"] for m in result.matches] == [1, 2, 3]
    assert result.max_segment_id == 3


def test_a_new_behaviour_gets_an_id_never_used_before_and_a_vanished_one_is_reported() -> None:
    current = {1: [2.0, 0.2], 2: [4.0, 5.0]}  # Champions again, and something far from every baseline segment
    result = identity.match(
        current,
        BASELINE,
        current_names={1: "Champions", 2: "Champions"},
        baseline_names=BASELINE_NAMES,
        max_distance=1.0,
        used_up_to=7,  # an earlier run used up to 7: 4 to 7 are never given again
    )
    assert result.ids == {1: 1, 2: 8}
    assert result.names == {1: "Champions", 8: "Champions (new)"}  # never two segments with one name
    assert result.new[0]["segment"] == 8 and result.new[0]["nearest_baseline_segment"] == 2
    assert [v["segment"] for v in result.vanished] == [2, 3]
    assert result.max_segment_id == 8


def test_a_pair_beyond_the_distance_is_not_the_same_behaviour() -> None:
    result = identity.match(
        {1: [2.0, 1.5]}, {1: [2.0, 0.0]}, current_names={1: "Loyal"}, baseline_names={1: "Champions"},
        max_distance=1.0, used_up_to=1,
    )  # fmt: skip
    assert result.ids == {1: 2} and result.vanished == [{"segment": 1, "name": "Champions"}]


def test_the_pairing_keeps_every_pair_within_the_distance_it_can() -> None:
    # the least total distance alone would pair a with Y (1.27) and b with X (0), losing a's match with X
    result = identity.match(
        {1: [0.0, 0.0], 2: [0.9, 0.0]}, {1: [0.9, 0.0], 2: [0.9, 0.9]},
        current_names={1: "a", 2: "b"}, baseline_names={1: "X", 2: "Y"}, max_distance=1.0, used_up_to=2,
    )  # fmt: skip
    assert result.ids == {1: 1, 2: 2} and result.new == [] and result.vanished == []


def test_splits_and_merges_are_read_from_the_moves() -> None:
    kept = identity.Identity(
        {1: 1, 2: 2, 3: 5},
        {1: "A", 2: "B", 5: "B (new)"},
        matches=[{"segment": 1}, {"segment": 2}],
        new=[{"segment": 5}],
        vanished=[{"segment": 3}],
    )
    flows = [
        {"from_segment": 2, "to_segment": 5, "customers": 40},  # half of B became the new segment 5: a split
        {"from_segment": None, "to_segment": 5, "customers": 10},
        {"from_segment": 3, "to_segment": 1, "customers": 30},  # the vanished 3 went mostly to 1: a merge
        {"from_segment": 3, "to_segment": 2, "customers": 5},
        {"from_segment": 3, "to_segment": None, "customers": 50},  # inactive customers are no merge target
    ]
    assert identity.explain_changes(kept, flows) == {
        "origins": [{"segment": 5, "kind": "split", "from_segment": 2, "customers": 40}],
        "merges": [{"segment": 3, "into_segment": 1, "customers": 30}],
    }


FLOWS = [
    {"from_segment": 1, "to_segment": 1, "customers": 80, "revenue_before": 800.0, "revenue_after": 900.0},
    {"from_segment": 1, "to_segment": 2, "customers": 20, "revenue_before": 150.0, "revenue_after": 40.0},
    {"from_segment": 2, "to_segment": 1, "customers": 5, "revenue_before": 10.0, "revenue_after": 60.0},
    {"from_segment": 2, "to_segment": None, "customers": 15, "revenue_before": 40.0, "revenue_after": None},
    {"from_segment": None, "to_segment": 2, "customers": 7, "revenue_before": None, "revenue_after": 30.0},
]


def test_migration_rows_give_shares_of_the_from_segment_and_directions() -> None:
    rows = migration.migration_rows(
        FLOWS, names={1: "Champions", 2: "At risk"}, baseline_names={1: "Champions", 2: "At risk"},
        values={1: 500.0, 2: 50.0},
    )  # fmt: skip
    assert [(r["from_name"], r["to_name"], r["direction"]) for r in rows] == [
        ("Champions", "Champions", "same"),
        ("Champions", "At risk", "down"),
        ("At risk", "Champions", "up"),
        ("At risk", "inactive", "inactive"),
        ("new", "At risk", "new"),
    ]
    assert [r["share_of_from"] for r in rows] == pytest.approx([0.8, 0.2, 0.25, 0.75, 1.0])


def test_the_report_says_the_largest_moves_in_words() -> None:
    rows = migration.migration_rows(
        FLOWS, names={1: "Champions", 2: "At risk"}, baseline_names={1: "Champions", 2: "At risk"},
        values={1: 500.0, 2: 50.0},
    )  # fmt: skip
    assert history_sentences(manifest(history={"migration": rows})) == [
        "20 Champions (20%) moved to At risk, carrying 15% of last period's revenue.",
        "15 At risk (75%) became inactive (no purchase in this run), carrying 4% of last period's revenue.",
        "7 customers new since the baseline joined At risk.",
        "5 At risk (25%) moved to Champions, carrying 1% of last period's revenue.",
    ]
    no_baseline = text.history_lines(manifest(history={"baseline": None}))
    assert "no baseline" in no_baseline[0]


def history_sentences(run: Manifest) -> list[str]:
    return text.movement_sentences(run)


def test_the_ids_used_by_every_published_run_of_the_run_id_are_counted(tmp_path: Path) -> None:
    """A backfill or an older baseline must not hand out an id a later run of its run id already gave."""

    def published(day: str, run_id: str, manifest: dict) -> None:
        run = tmp_path / "runs" / f"as_of_date={day}" / f"run_id={run_id}"
        (run / "attempt=a1").mkdir(parents=True)
        (run / "attempt=a1" / "manifest.json").write_text(json.dumps(manifest))
        (run / "_commits").mkdir()
        (run / "_commits" / "00000001.json").write_text(json.dumps({"attempt_id": "a1"}))

    def segments(*ids: int) -> list[dict]:
        return [{"segment": s, "name": f"s{s}", "customers": 1, "customer_share": 0.5} for s in ids]

    def with_segments(*ids: int, history: dict | None = None) -> dict:
        return {**raw_manifest(), "segments": segments(*ids), "history": history}

    published("2011-12-01", "main", with_segments(1, 2))
    published("2011-12-08", "main", with_segments(2, history={"max_segment_id": 9}))
    published("2011-12-08", "other", with_segments(40))
    files = FilePublisher(None, storage.for_root(None, str(tmp_path)), "main")  # type: ignore[arg-type]
    assert sorted(m.max_segment_id for m in files.manifests("main")) == [2, 9]
    assert manifest(segments=segments(3), history={"max_segment_id": 2}).max_segment_id == 3
