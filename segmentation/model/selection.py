"""Choosing k from the sweep's metrics, with the reason in one plain sentence.

The default rule (``combined``) weighs every criterion the sweep measures:

1. leave out every k with an empty cluster, with a segment smaller than ``selection.min_segment_share`` of
   customers, or whose seeds agree less than ``selection.min_stability`` (adjusted Rand index);
2. each of five criteria puts first the remaining k where it is best: silhouette (highest), Calinski-Harabasz
   (highest), Davies-Bouldin (lowest), stability (highest) and the elbow of the WSSSE curve (the nearest k);
   values equal as shown (silhouette and Davies-Bouldin to 3 decimals, Calinski-Harabasz to a whole number,
   stability to 2) tie, and the criterion then puts all of them first;
3. the k put first by the most criteria wins; a tie goes to the better mean rank over the criteria (tied
   values share their ranks), and only then to the smaller k.

The smallest segment share is a condition (step 1), not a vote: larger k always have smaller segments, so as a
vote it would only repeat parsimony. No single threshold on one metric decides, and votes and ranks do not
depend on a metric's scale or on how far apart two values are. If no k is left after step 1, the elbow
decides. Other rules: ``silhouette``, ``elbow``, ``calinski_harabasz``, ``davies_bouldin``, and a
fixed ``model.k``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from segmentation.config import SelectionConfig
from segmentation.errors import InputError
from segmentation.model.metrics import KResult


@dataclass(frozen=True)
class Choice:
    """The chosen k, why, and the elbow the WSSSE curve shows (if any)."""

    k: int
    reason: str
    elbow: int | None = None


def kneedle(ks: Sequence[int], costs: Sequence[float]) -> int | None:
    """The elbow of a decreasing, convex cost curve (Satopaa et al. 2011, offline, no smoothing).

    Both axes are scaled to [0, 1]; the elbow is the k where the scaled curve lies furthest below the
    straight line from its first to its last point. None with fewer than 3 points or no bend.
    """
    if len(ks) < 3:
        return None
    x_span, y_span = ks[-1] - ks[0], max(costs) - min(costs)
    if x_span <= 0 or y_span <= 0:
        return None
    xs = [(k - ks[0]) / x_span for k in ks]
    ys = [(max(costs) - c) / y_span for c in costs]  # flipped: a concave, increasing curve
    gaps = [y - x for x, y in zip(xs, ys, strict=True)]
    best = max(range(len(gaps)), key=lambda i: (gaps[i], -i))
    return ks[best] if gaps[best] > 0 else None


def choose_k(results: Sequence[KResult], rules: SelectionConfig, fixed_k: int | None = None) -> Choice:
    """Apply the configured rule to the sweep's results."""
    if not results:
        raise InputError("model: the sweep produced no fits")
    usable = [r for r in results if not r.has_empty_cluster]
    elbow = kneedle([r.k for r in usable], [r.wssse for r in usable])
    if fixed_k is not None:
        result = next(r for r in results if r.k == fixed_k)
        if result.has_empty_cluster:
            raise InputError(
                f"model.k: k={fixed_k} gave only {result.non_empty_clusters} non-empty clusters; "
                "the data has too few distinct customers for it"
            )
        return Choice(fixed_k, f"k={fixed_k}: fixed by model.k (no sweep)", elbow)
    if not usable:
        raise InputError(
            f"model.k_min/model.k_max: every k from {results[0].k} to {results[-1].k} gave an empty cluster; "
            "the data has too few distinct customers for that range"
        )
    span = f"k={results[0].k}..{results[-1].k}"
    empty = _excluded_note(results, "had an empty cluster", lambda r: r.has_empty_cluster)
    if rules.rule == "elbow":
        k = elbow if elbow is not None else usable[0].k
        why = "the elbow of the WSSSE curve (Kneedle)" if elbow is not None else "no elbow found: the smallest k"
        return Choice(k, f"k={k}: {why} among {span}{empty}", elbow)
    if rules.rule in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        return _best_by(rules.rule, usable, span, empty, elbow)
    return _combined(results, usable, rules, span, elbow)


METRIC_WORDS = {
    "silhouette": ("highest silhouette", 1),
    "calinski_harabasz": ("highest Calinski-Harabasz index", 1),
    "davies_bouldin": ("lowest Davies-Bouldin index", -1),
}


def _best_by(metric: str, usable: Sequence[KResult], span: str, empty: str, elbow: int | None) -> Choice:
    words, sign = METRIC_WORDS[metric]
    scored = [r for r in usable if getattr(r, metric) is not None]
    if not scored:
        raise InputError(f"selection.rule: no k in {span} has a {metric} value")
    best = min(scored, key=lambda r: (-sign * getattr(r, metric), r.k))
    return Choice(best.k, f"k={best.k}: {words} ({getattr(best, metric):.3f}) among {span}{empty}", elbow)


@dataclass(frozen=True)
class Criterion:
    """One criterion of the combined rule: how it ranks a k (higher standing is better) and shows its value."""

    name: str
    words: str

    def standing(self, result: KResult, elbow: int | None) -> float | None:
        """The value the rule compares, rounded as shown (so a difference nobody can see is a tie)."""
        if self.name == "elbow":
            return None if elbow is None else -abs(result.k - elbow)
        value = getattr(result, self.name)
        if value is None:
            return None
        digits = {"silhouette": 3, "calinski_harabasz": 0, "davies_bouldin": 3, "stability": 2}[self.name]
        return (-1 if self.name == "davies_bouldin" else 1) * round(float(value), digits)

    def shown(self, result: KResult, elbow: int | None) -> str:
        """The criterion and its value at ``result``'s k, in words (Spark's silhouette says it is squared)."""
        if self.name == "elbow":
            return f"the elbow (k={elbow})" if result.k == elbow else f"nearest the elbow (k={elbow})"
        value = float(getattr(result, self.name))
        if self.name == "silhouette":
            return f"silhouette ({value:.3f}, on squared distances)"
        text = (
            f"{value:,.0f}" if self.name == "calinski_harabasz" else f"{value:.{2 if self.name == 'stability' else 3}f}"
        )
        return f"{self.words} ({text})"


CRITERIA = (
    Criterion("silhouette", "silhouette"),
    Criterion("calinski_harabasz", "Calinski-Harabasz"),
    Criterion("davies_bouldin", "Davies-Bouldin"),
    Criterion("stability", "stability"),
    Criterion("elbow", "the elbow"),
)


UNMEASURED = {"elbow": "the elbow (the WSSSE curve has none)", "stability": "stability (one seed per k)"}


def fractional_ranks(standings: dict[int, float]) -> dict[int, float]:
    """Rank 1 for the highest standing; tied values share the mean of their ranks (1, 2.5, 2.5, 4, ...)."""
    ranks = {}
    for k, value in standings.items():
        better = sum(1 for v in standings.values() if v > value)
        tied = sum(1 for v in standings.values() if v == value) - 1
        ranks[k] = 1 + better + tied / 2
    return ranks


def mean_ranks(candidates: Sequence[KResult], elbow: int | None) -> tuple[dict[int, float], list[Criterion]]:
    """Each candidate k's mean rank over the criteria that measured every candidate, and those criteria."""
    used, total = [], {r.k: 0.0 for r in candidates}
    for criterion in CRITERIA:
        standings = {r.k: criterion.standing(r, elbow) for r in candidates}
        if any(v is None for v in standings.values()):
            continue
        used.append(criterion)
        for k, rank in fractional_ranks(standings).items():  # type: ignore[arg-type]
            total[k] += rank
    return {k: t / max(1, len(used)) for k, t in total.items()}, used


def _combined(
    results: Sequence[KResult], usable: Sequence[KResult], rules: SelectionConfig, span: str, elbow: int | None
) -> Choice:
    def problems(r: KResult) -> list[str]:
        return _problems(r, rules)

    eligible = [r for r in results if not problems(r)]
    has_stability = any(r.stability is not None for r in results)
    checks = f"all segments >= {rules.min_segment_share:.0%} of customers"
    if has_stability:
        checks += f" and a stability >= {rules.min_stability:.2f}"
    if not eligible:
        k = elbow if elbow is not None else min(usable, key=lambda r: (-(r.silhouette or -1.0), r.k)).k
        how = "the elbow of the WSSSE curve (Kneedle)" if elbow is not None else "the best silhouette"
        return Choice(k, f"k={k}: {how}, since no k in {span} has {checks}", elbow)
    ranks, used = mean_ranks(eligible, elbow)
    votes = {r.k: [c for c in used if c.standing(r, elbow) == _top(c, eligible, elbow)] for r in eligible}
    best = min(eligible, key=lambda r: (-len(votes[r.k]), round(ranks[r.k], 9), r.k))
    if len(eligible) == 1:
        reason = f"k={best.k}: the only k in {span} with {checks}"
    else:
        reason = (
            f"k={best.k}: {len(votes[best.k])} of {len(used)} criteria put it first"
            f" ({_joined([c.shown(best, elbow) for c in votes[best.k]]) if votes[best.k] else 'none'})"
            f" among the {len(eligible)} k in {span} with {checks}"
        )
        others = [_elsewhere(c, eligible, elbow) for c in used if c not in votes[best.k]]
        if others:
            reason += f"; not agreeing: {_joined(others)}"
        unmeasured = [UNMEASURED.get(c.name, f"{c.words} (not measured at every k)") for c in CRITERIA if c not in used]
        if unmeasured:
            reason += f"; not counted: {_joined(unmeasured)}"
        reason += _tie_note(best.k, eligible, votes=votes, ranks=ranks)
    dropped = [f"k={r.k} ({' and '.join(problems(r))})" for r in results if problems(r)]
    if dropped:
        reason += f"; left out: {', '.join(dropped)}"
    return Choice(best.k, reason, elbow)


def _problems(r: KResult, rules: SelectionConfig) -> list[str]:
    """Why the combined rule leaves ``r``'s k out (empty if it does not)."""
    found = []
    if r.has_empty_cluster:
        found.append("an empty cluster")
    if r.smallest_cluster_share < rules.min_segment_share:
        found.append(f"a segment of {r.smallest_cluster_share:.1%} of customers")
    if r.stability is not None and r.stability < rules.min_stability:
        found.append(f"a stability of {r.stability:.2f}")
    if r.silhouette is None:
        found.append("no silhouette")
    return found


def in_contention(first_fit: KResult, rules: SelectionConfig) -> bool:
    """Whether a k may still be chosen after its first fit (one seed), so that its other seeds are worth fitting.

    The combined rule can only choose a k that passes its conditions; one seed measures all but stability, so
    a k that fails another condition is out (its best of several seeds might pass, where the lowest-cost fit
    has no small segment: rare, and then the k is left out on its first fit). The single-metric rules choose
    among the k without an empty cluster.
    """
    if rules.rule == "combined":
        return not _problems(first_fit, rules)
    return not first_fit.has_empty_cluster


def _tie_note(k: int, candidates: Sequence[KResult], *, votes: dict, ranks: dict[int, float]) -> str:
    """The words on other k with as many votes as the chosen ``k``: beaten on mean rank, or tied and larger."""
    level = [r.k for r in candidates if r.k != k and len(votes[r.k]) == len(votes[k])]
    same = [j for j in level if round(ranks[j], 9) == round(ranks[k], 9)]
    worse = [j for j in level if j not in same]
    note = ""
    if worse:
        note += f"; k={', '.join(map(str, worse))} had as many, and k={k} the better mean rank ({ranks[k]:.2f})"
    if same:
        note += f"; k={', '.join(map(str, same))} tied on votes and mean rank, the smaller k wins"
    return note


def _top(criterion: Criterion, candidates: Sequence[KResult], elbow: int | None) -> float:
    return max(criterion.standing(r, elbow) or 0.0 for r in candidates)


def _elsewhere(criterion: Criterion, candidates: Sequence[KResult], elbow: int | None) -> str:
    """Where a criterion that did not vote for the chosen k put its vote, in words."""
    if criterion.name == "elbow":
        return f"the elbow is at k={elbow}"
    tops = [r for r in candidates if criterion.standing(r, elbow) == _top(criterion, candidates, elbow)]
    where = ", ".join(str(r.k) for r in tops)
    return f"{criterion.shown(tops[0], elbow)} is best at k={where}"


def _joined(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _excluded_note(results: Sequence[KResult], words: str, test) -> str:
    dropped = [str(r.k) for r in results if test(r)]
    return f"; k={', '.join(dropped)} {words}" if dropped else ""


def decisive(reason: str) -> str:
    """What decided a choice, from its reason: the first clause (the k, and how many criteria put it first or the
    rule that decided) and the criteria that put it first, without their values. Two sweeps whose fits differ
    (``model.sweep_engine``) chose alike when this is equal."""
    head = reason.split(" among the ")[0].split("; ")[0]
    voters = re.search(r"criteria put it first \((.*)\)$", head)
    names = voters.group(1) if voters else ""
    return f"{_without_values(head)} [{_without_values(names)}]"


def _without_values(text: str) -> str:
    while (shorter := re.sub(r" \([^()]*\)", "", text)) != text:
        text = shorter
    return text
