"""Planted scenarios for the choice of k: logs and customer tables whose segments are known, harder than
``generate --planted``.

Each scenario draws customers from a few behaviours (``BEHAVIOURS``) in given shares and writes the truth
(``CustomerID``, ``persona``) beside the data. What makes them hard, as real logs are:

- ``k3`` ... ``k8``: 3 to 8 behaviours in equal shares, spend with a lognormal spread per customer;
- ``unequal``: six behaviours, one of them 3% of customers;
- ``overlap``: ``loyal`` buys when and about as often as ``regulars`` (their order counts overlap) and in
  the baskets of ``at_risk``: each pair is told apart by one kind of feature only;
- ``heavy_tail``: spend per customer from a Pareto tail (a few customers spend 100 times the typical);
- ``one_time``: 60% of customers buy once (three behaviours of one-time buyers, told apart by when);
- ``repeat_split``: a persona (``occasional``) half of whose customers buy once and half 3 to 6 times, alike
  otherwise: a split a marketer may want, so the job may rightly find one more segment than the truth has
  (``real_split`` names the persona; the report then says the two segments are one-time and repeat buyers);
- ``customer_table``: a customer table (age, income, spending score and a categorical ``Channel``) with six
  segments of unequal sizes.

``segmentation generate --scenario NAME`` writes one; ``bench/planted.py`` runs them all through the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.demo import generate
from segmentation.errors import ConfigError
from segmentation.model.pipeline import CLUSTER, VECTOR


@dataclass(frozen=True)
class Behaviour:
    """How a kind of customer buys: orders (Poisson mean, bounds), when (days before the end), basket sizes."""

    name: str
    mean_orders: float
    min_orders: int
    max_orders: int | None
    window: tuple[int, int]  # days before the end date: (most recent, oldest)
    lines_per_order: float
    quantity_scale: float
    persona: str = ""  # the truth's label, when two behaviours are one persona (default: the name)

    @property
    def label(self) -> str:
        return self.persona or self.name


BEHAVIOURS = {
    b.name: b
    for b in (
        Behaviour("champions", 20.0, 12, None, (0, 365), 20.0, 1.6),
        Behaviour("hibernating", 1.0, 1, 1, (250, 373), 6.0, 0.6),
        Behaviour("new", 1.0, 1, 1, (0, 14), 12.0, 1.0),
        Behaviour("big_spenders", 2.5, 2, 4, (60, 160), 12.0, 14.0),
        Behaviour("at_risk", 9.0, 6, None, (170, 373), 14.0, 1.0),
        Behaviour("regulars", 5.0, 4, None, (0, 365), 4.0, 0.5),
        Behaviour("wholesalers", 10.0, 8, None, (0, 365), 30.0, 8.0),
        Behaviour("seasonal", 3.0, 2, 4, (150, 190), 16.0, 2.5),
        Behaviour("loyal", 8.0, 5, None, (0, 365), 14.0, 4.0),
        Behaviour("lapsed", 1.0, 1, 1, (60, 150), 20.0, 3.0),
        Behaviour("occasional_once", 1.0, 1, 1, (20, 200), 10.0, 1.0, persona="occasional"),
        Behaviour("occasional_again", 4.0, 3, 6, (20, 200), 10.0, 1.0, persona="occasional"),
    )
}
ORDER = ("champions", "hibernating", "new", "big_spenders", "at_risk", "regulars", "wholesalers", "seasonal")


@dataclass(frozen=True)
class Scenario:
    """Behaviours and their shares, how spend spreads per customer, and what makes the scenario hard."""

    name: str
    shares: tuple[tuple[str, float], ...]
    spend: str = "lognormal"  # lognormal (sigma 0.5) | pareto (shape 1.5)
    kind: str = "transactions"  # transactions | customers
    real_split: str | None = None  # a behaviour the job may rightly split into one-time and repeat buyers
    hard: str = ""

    @property
    def planted(self) -> int:
        """How many personas the truth has (two behaviours may be one persona)."""
        labels = {BEHAVIOURS[name].label if name in BEHAVIOURS else name for name, _ in self.shares}
        return len(labels)


def _equal(names: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    return tuple((name, 1.0 / len(names)) for name in names)


SCENARIOS = {
    s.name: s
    for s in (
        *(Scenario(f"k{k}", _equal(ORDER[:k]), hard=f"{k} behaviours, lognormal spend") for k in range(3, 9)),
        Scenario(
            "unequal",
            (
                ("regulars", 0.30),
                ("hibernating", 0.25),
                ("at_risk", 0.20),
                ("new", 0.12),
                ("champions", 0.10),
                ("big_spenders", 0.03),
            ),
            hard="shares from 30% down to 3%",
        ),
        Scenario(
            "overlap",
            _equal(("regulars", "loyal", "at_risk", "hibernating", "new")),
            hard="loyal shares timing with regulars, baskets with at_risk",
        ),
        Scenario(
            "heavy_tail",
            _equal(("champions", "hibernating", "new", "big_spenders", "regulars")),
            spend="pareto",
            hard="Pareto spend per customer",
        ),
        Scenario(
            "one_time",
            (
                ("hibernating", 0.25),
                ("new", 0.15),
                ("lapsed", 0.20),
                ("regulars", 0.25),
                ("champions", 0.15),
            ),
            hard="60% buy once",
        ),
        Scenario(
            "repeat_split",
            (
                ("champions", 0.25),
                ("hibernating", 0.25),
                ("occasional_once", 0.125),
                ("occasional_again", 0.125),
                ("big_spenders", 0.25),
            ),
            real_split="occasional",
            hard="half of one persona buys once, half 3 to 6 times",
        ),
        Scenario(
            "customer_table",
            (
                ("affluent_spenders", 0.22),
                ("careful_earners", 0.20),
                ("young_spenders", 0.18),
                ("average", 0.25),
                ("budget_seniors", 0.10),
                ("students", 0.05),
            ),
            kind="customers",
            hard="customer table, a categorical column, 5% segment",
        ),
    )
}

# customer_table's segments: mean age, income (k$), spending score, and the channel most of them use
PROFILES = {
    "affluent_spenders": (38.0, 95.0, 82.0, "store"),
    "careful_earners": (45.0, 90.0, 18.0, "store"),
    "young_spenders": (24.0, 30.0, 80.0, "app"),
    "average": (42.0, 58.0, 50.0, "online"),
    "budget_seniors": (66.0, 28.0, 22.0, "store"),
    "students": (20.0, 12.0, 45.0, "app"),
}
CHANNELS = ("store", "online", "app")


def scenario(name: str) -> Scenario:
    """The scenario called ``name``, or a ``ConfigError`` listing them."""
    if name not in SCENARIOS:
        raise ConfigError(f"--scenario: expected one of {', '.join(SCENARIOS)}, got {name!r}")
    return SCENARIOS[name]


def _assign(shares: tuple[tuple[str, float], ...], customers: int, rng: np.random.Generator) -> np.ndarray:
    """Each customer's behaviour index, in counts as close to the shares as whole numbers allow."""
    exact = np.array([share for _, share in shares]) * customers / sum(share for _, share in shares)
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: customers - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _spend(kind: str, customers: int, rng: np.random.Generator) -> np.ndarray:
    """A per-customer multiplier of basket quantities: typical 1, heavy-tailed above."""
    if kind == "pareto":
        return (1.0 + rng.pareto(1.5, size=customers)) / 1.6
    return np.exp(rng.normal(0.0, 0.5, size=customers))


def transactions(spec: Scenario, customers: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log (Online Retail columns, as ``generate.generate``'s, dirty lines included) and the truth."""
    rng = np.random.default_rng(seed)
    behaviours = [BEHAVIOURS[name] for name, _ in spec.shares]
    of = _assign(spec.shares, customers, rng)
    ids = 12346 + rng.permutation(customers * 2)[:customers]
    countries = rng.choice(generate.COUNTRIES, size=customers)
    spend = _spend(spec.spend, customers, rng)

    means = np.array([behaviours[b].mean_orders for b in of])
    low = np.array([behaviours[b].min_orders for b in of])
    high = np.array([behaviours[b].max_orders or 10_000 for b in of])
    orders_per = np.clip(rng.poisson(means), low, high)
    customer = np.repeat(np.arange(customers), orders_per)
    near = np.array([behaviours[of[c]].window[0] for c in customer])
    far = np.array([behaviours[of[c]].window[1] for c in customer])
    days_before = np.floor(rng.uniform(near, far))
    minutes = rng.integers(8 * 60, 19 * 60, size=len(customer))
    end = pd.Timestamp(generate.END)
    ts = end.normalize() - pd.to_timedelta(days_before, unit="D") + pd.to_timedelta(minutes, unit="m")
    orders = pd.DataFrame(
        {
            "customer": customer,
            "ts": ts.where(ts <= end, end),
            "lines": [behaviours[of[c]].lines_per_order for c in customer],
            "scale": [behaviours[of[c]].quantity_scale * spend[c] for c in customer],
        }
    )
    log = generate.order_lines(orders, ids, countries, rng=rng)
    log = generate.finish(pd.concat([log, generate.cancellations(log, rng)], ignore_index=True), rng, dirty=True)
    truth = pd.DataFrame({"CustomerID": ids.astype(str), "persona": [behaviours[b].label for b in of]})
    return log, truth


def customer_table(spec: Scenario, customers: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A customer table (``CustomerID``, ``Age``, ``Income``, ``SpendingScore``, ``Channel``, ``Gender``) and
    the truth. ``Channel`` is the segment's own for 80% of its customers; ``Gender`` says nothing."""
    rng = np.random.default_rng(seed)
    of = _assign(spec.shares, customers, rng)
    profiles = [PROFILES[name] for name, _ in spec.shares]
    age = np.array([profiles[b][0] for b in of]) + rng.normal(0, 4.0, customers)
    income = np.array([profiles[b][1] for b in of]) * np.exp(rng.normal(0, 0.12, customers))
    score = np.array([profiles[b][2] for b in of]) + rng.normal(0, 6.0, customers)
    own = np.array([CHANNELS.index(profiles[b][3]) for b in of])
    other = (own + rng.integers(1, len(CHANNELS), customers)) % len(CHANNELS)
    channel = np.where(rng.random(customers) < 0.8, own, other)
    ids = 100001 + rng.permutation(customers * 2)[:customers]
    table = pd.DataFrame(
        {
            "CustomerID": ids.astype(str),
            "Age": np.clip(np.round(age), 16, 90).astype(int),
            "Income": np.round(np.clip(income, 5.0, None), 1),
            "SpendingScore": np.clip(np.round(score), 1, 100).astype(int),
            "Channel": np.array(CHANNELS)[channel],
            "Gender": rng.choice(["Female", "Male"], size=customers),
        }
    )
    truth = pd.DataFrame({"CustomerID": table["CustomerID"], "persona": [spec.shares[b][0] for b in of]})
    return table, truth


CUSTOMER_SETTINGS = (
    "input.kind=customers",
    "input.customers.numeric_columns=[Age, Income, SpendingScore]",
    "input.customers.categorical_columns=[Channel]",
    "input.customers.log_columns=[Income]",
)


def euclidean_silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """The usual silhouette (scikit-learn's ``silhouette_score``): Euclidean distances, exact, singletons 0.

    O(n^2) memory and time: for a sample of a sweep (a few thousand points), to check that the choice of k does
    not depend on Spark's silhouette being computed on squared distances.
    """
    distances = np.sqrt(np.maximum(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1), 0.0))
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return float("nan")
    sums = np.stack([distances[:, labels == c].sum(1) for c in clusters], axis=1)
    sizes = np.array([(labels == c).sum() for c in clusters])
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(labels)), own] / np.maximum(own_size - 1, 1), 0.0)
    others = sums / sizes
    others[np.arange(len(labels)), own] = np.inf
    b = others.min(1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def usual_silhouettes(
    vectors_df: DataFrame, fitted: Mapping[int, KMeansModel], *, sample: int = 2000
) -> dict[int, float]:
    """Each fitted k's usual (Euclidean) silhouette on a seeded sample of at most ``sample`` of the sweep's
    vectors, computed exactly on the driver: what the sweep's own silhouette would be without squared distances."""
    total = vectors_df.count()
    subset = vectors_df.sample(fraction=min(1.0, sample / max(total, 1)), seed=1)
    values = {}
    for k, fit in fitted.items():
        local: Any = fit.transform(subset).select(vector_to_array(F.col(VECTOR)).alias("v"), CLUSTER).toPandas()
        values[k] = euclidean_silhouette(np.array(local["v"].tolist(), dtype=float), local[CLUSTER].to_numpy())
    return values


def settings(spec: Scenario) -> tuple[str, ...]:
    """The ``--set`` overrides a user gives the job for this scenario's data."""
    return CUSTOMER_SETTINGS if spec.kind == "customers" else ("features.as_of=2011-12-09",)


def write(path: str, name: str, *, customers: int = 3000, seed: int = 7, truth_path: str | None = None) -> int:
    """Write scenario ``name``: a CSV log (gzip when ``path`` ends in .gz), or a customer table as CSV; the rows."""
    spec = scenario(name)
    if spec.kind == "customers":
        if not path.endswith(".csv"):
            raise ConfigError(f"--output: scenario {name} writes a plain CSV customer table; expected a .csv path")
        table, truth = customer_table(spec, customers, seed)
        return generate.write_table(path, table, truth, truth_path=truth_path)
    log, truth = transactions(spec, customers, seed)
    return generate.write_log(path, log, truth, truth_path=truth_path)
