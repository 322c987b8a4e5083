"""A deterministic generator of realistic transaction logs (Online Retail's columns and date format).

Customers follow one of several behaviours (champions, loyal, big spenders, new, at risk, hibernating);
some orders are cancelled later (``C`` invoices with negative quantities); and a share of lines is
dirty the way real logs are: no customer id, exact duplicates, bad dates, zero prices, broken CSV rows.
The same seed gives the same bytes.

``generate_periods`` writes a log of two periods of 182 days, ending on ``AS_OF_1`` (2011-06-10) and
``AS_OF_2`` (2011-12-09), for runs at those as-of dates with a window of 182 days. Within each period a
customer buys as one of ``PERIOD_PERSONAS`` (period 1 has four: champions, regulars, at_risk, starters;
period 2 adds big_spenders), with these planted moves (shares of all customers, ``PERIOD_PATHS``):

- champions stay champions (13.5%), except 10% of them (1.5%) who lapse to at_risk;
- regulars stay regulars (30%); at_risk stay at_risk (12.5%);
- half of at_risk (12.5%) buy nothing in period 2 (inactive);
- the starters of period 1 (10%) become regulars;
- new customers appear in period 2 as starters (10%) and as big_spenders (10%), a behaviour period 1 lacks.

So 80% of customers buy in period 1 and 75% in period 2.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation.demo import buyers
from segmentation.errors import ConfigError

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
END = dt.datetime(2011, 12, 9, 12, 50)


@dataclass(frozen=True)
class Persona:
    """How a kind of customer buys: orders in a window of days before the end, basket and price sizes."""

    name: str
    share: float
    mean_orders: float
    min_orders: int
    window: tuple[int, int]  # days before the end date: (most recent, oldest)
    lines_per_order: float
    quantity_scale: float


PERSONAS = (
    Persona("champions", 0.10, 22.0, 8, (0, 365), 22.0, 1.6),
    Persona("loyal", 0.18, 8.0, 4, (0, 365), 14.0, 1.0),
    Persona("big_spenders", 0.07, 2.5, 1, (0, 300), 10.0, 12.0),
    Persona("new", 0.15, 1.3, 1, (0, 30), 12.0, 1.0),
    Persona("at_risk", 0.20, 6.0, 3, (120, 373), 14.0, 1.0),
    Persona("hibernating", 0.30, 1.3, 1, (150, 373), 9.0, 0.8),
)
# Well-separated behaviours for planting a known number of segments (the first K are used).
PLANTED = (
    Persona("champions", 1.0, 26.0, 16, (0, 365), 20.0, 1.6),
    Persona("hibernating", 1.0, 1.0, 1, (250, 373), 6.0, 0.6),
    Persona("new", 1.0, 1.0, 1, (0, 14), 12.0, 1.0),
    Persona("big_spenders", 1.0, 2.0, 2, (60, 160), 12.0, 14.0),
    Persona("at_risk", 1.0, 9.0, 6, (170, 373), 14.0, 1.0),
    Persona("regulars", 1.0, 5.0, 4, (0, 365), 4.0, 0.5),
)
COUNTRIES = np.array(["United Kingdom"] * 8 + ["Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium"])


def generate(
    customers: int = 3000, seed: int = 7, *, dirty: bool = True, planted: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The log (Online Retail columns, all text) and the truth (``CustomerID``, ``persona``).

    ``planted=K`` draws customers from the first K of ``PLANTED``, K well-separated behaviours in equal
    shares, so that the right number of segments is known.
    """
    if planted is not None and not 1 <= planted <= len(PLANTED):
        raise ConfigError(f"--planted: expected 1 to {len(PLANTED)} segments, got {planted}")
    personas = PLANTED[:planted] if planted else PERSONAS
    rng = np.random.default_rng(seed)
    shares = np.array([p.share for p in personas])
    persona_of = rng.choice(len(personas), size=customers, p=shares / shares.sum())
    ids = 12346 + rng.permutation(customers * 2)[:customers]
    countries = rng.choice(COUNTRIES, size=customers)

    orders_per = np.array(
        [max(personas[p].min_orders, rng.poisson(personas[p].mean_orders)) for p in persona_of], dtype=int
    )
    order_customer = np.repeat(np.arange(customers), orders_per)
    order_persona = persona_of[order_customer]
    near = np.array([personas[p].window[0] for p in order_persona])
    far = np.array([personas[p].window[1] for p in order_persona])
    days_before = rng.uniform(near, far)
    minutes = rng.integers(8 * 60, 19 * 60, size=len(order_customer))
    order_ts = (
        pd.Timestamp(END.date()) - pd.to_timedelta(np.floor(days_before), unit="D") + pd.to_timedelta(minutes, unit="m")
    )
    order_ts = order_ts.where(order_ts <= pd.Timestamp(END), pd.Timestamp(END))
    lines_mean = np.array([personas[p].lines_per_order for p in order_persona])
    scale = np.array([personas[p].quantity_scale for p in order_persona])
    orders = pd.DataFrame({"customer": order_customer, "ts": order_ts, "lines": lines_mean, "scale": scale})
    log = order_lines(orders, ids, countries, rng=rng)
    log = finish(pd.concat([log, cancellations(log, rng)], ignore_index=True), rng, dirty=dirty)
    truth = pd.DataFrame({"CustomerID": ids.astype(str), "persona": [personas[p].name for p in persona_of]})
    return log, truth


PERIOD_DAYS = 182
# Behaviours within one period. Windows are days before the period's end for a 182-day period, scaled to
# other lengths; the oldest (176) leaves the period's first days empty, so a window of the period's length
# holds all of them.
PERIOD_PERSONAS = {
    p.name: p
    for p in (
        Persona("champions", 1.0, 14.0, 8, (0, 176), 20.0, 1.6),
        Persona("regulars", 1.0, 8.0, 6, (0, 176), 4.0, 0.5),
        Persona("at_risk", 1.0, 5.0, 3, (110, 176), 20.0, 1.6),
        Persona("starters", 1.0, 1.5, 1, (0, 40), 10.0, 1.0),
        Persona("big_spenders", 1.0, 2.0, 2, (10, 80), 12.0, 14.0),
    )
}
# (persona in period 1, persona in period 2, share of all customers); "" = no line in that period.
PERIOD_PATHS = (
    ("champions", "champions", 0.135),
    ("champions", "at_risk", 0.015),  # 10% of champions lapse
    ("regulars", "regulars", 0.30),
    ("at_risk", "at_risk", 0.125),
    ("at_risk", "", 0.125),  # half of those at risk buy nothing more (inactive)
    ("starters", "regulars", 0.10),  # the starters of period 1 settle as regulars
    ("", "starters", 0.10),  # new customers
    ("", "big_spenders", 0.10),  # new customers, in a behaviour period 1 does not have
)


def period_as_of(period_days: int = PERIOD_DAYS) -> tuple[dt.date, dt.date]:
    """The as-of dates of the two periods: period 2 ends on ``END``'s day, period 1 ``period_days`` earlier."""
    return END.date() - dt.timedelta(days=period_days), END.date()


AS_OF_1, AS_OF_2 = period_as_of()  # 2011-06-10, 2011-12-09


def generate_periods(
    customers: int = 3000, seed: int = 7, *, period_days: int = PERIOD_DAYS, dirty: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two-period log (as ``generate``'s) and the truth (``CustomerID``, ``persona_1``, ``persona_2``).

    Each customer follows ``PERIOD_PATHS`` (counts as close to the shares as whole numbers allow); a persona
    is ``""`` in a period where the customer has no line.
    """
    if period_days < 30:
        raise ConfigError(f"period_days: expected at least 30 days, got {period_days}")
    rng = np.random.default_rng(seed)
    path_of = rng.permutation(np.repeat(np.arange(len(PERIOD_PATHS)), _path_counts(customers)))
    ids = 12346 + rng.permutation(customers * 2)[:customers]
    countries = rng.choice(COUNTRIES, size=customers)
    truth = pd.DataFrame(
        {
            "CustomerID": ids.astype(str),
            "persona_1": [PERIOD_PATHS[i][0] for i in path_of],
            "persona_2": [PERIOD_PATHS[i][1] for i in path_of],
        }
    )
    end_1 = pd.Timestamp(END) - pd.Timedelta(days=period_days)
    orders = pd.concat(
        [
            _period_orders(truth["persona_1"], end_1, period_days, rng),
            _period_orders(truth["persona_2"], pd.Timestamp(END), period_days, rng),
        ],
        ignore_index=True,
    )
    log = order_lines(orders, ids, countries, rng=rng)
    until = pd.Series(pd.Timestamp(END), index=log.index).where(log["ts"] > end_1, end_1)  # its period's end
    log = finish(pd.concat([log, cancellations(log, rng, until)], ignore_index=True), rng, dirty=dirty)
    return log, truth


def _path_counts(customers: int) -> np.ndarray:
    """How many customers follow each of ``PERIOD_PATHS``: the shares rounded by largest remainder."""
    exact = np.array([share for _, _, share in PERIOD_PATHS]) * customers
    counts = np.floor(exact).astype(int)
    extra = np.argsort(-(exact - counts), kind="stable")[: customers - counts.sum()]
    counts[extra] += 1
    return counts


def _period_orders(personas: pd.Series, end: pd.Timestamp, period_days: int, rng: np.random.Generator) -> pd.DataFrame:
    """The orders of one period (``customer``, ``ts``, ``lines``, ``scale``) of the customers with a persona."""
    active = np.flatnonzero(personas.to_numpy() != "")
    behaviour = [PERIOD_PERSONAS[name] for name in personas.to_numpy()[active]]
    means = np.array([p.mean_orders for p in behaviour])
    orders_per = np.maximum([p.min_orders for p in behaviour], rng.poisson(means)).astype(int)
    order_behaviour = np.repeat(np.arange(len(behaviour)), orders_per)
    stretch = period_days / PERIOD_DAYS
    near = np.array([behaviour[i].window[0] for i in order_behaviour]) * stretch
    far = np.array([behaviour[i].window[1] for i in order_behaviour]) * stretch
    days_before = np.floor(rng.uniform(near, far))
    minutes = rng.integers(8 * 60, 19 * 60, size=len(order_behaviour))
    ts = end.normalize() - pd.to_timedelta(days_before, unit="D") + pd.to_timedelta(minutes, unit="m")
    return pd.DataFrame(
        {
            "customer": active[order_behaviour],
            "ts": ts.where(ts <= end, end),
            "lines": [behaviour[i].lines_per_order for i in order_behaviour],
            "scale": [behaviour[i].quantity_scale for i in order_behaviour],
        }
    )


def planted_moves(truth: pd.DataFrame) -> pd.DataFrame:
    """Customers per move in a two-period truth: ``persona_1`` (``new`` if none), ``persona_2`` (``inactive``).

    Empty personas may be ``""`` or missing (as ``pd.read_csv`` reads them).
    """
    moves = pd.DataFrame(
        {
            "persona_1": truth["persona_1"].fillna("").replace("", "new"),
            "persona_2": truth["persona_2"].fillna("").replace("", "inactive"),
        }
    )
    counts = moves.groupby(["persona_1", "persona_2"]).size().rename("customers").reset_index()
    return counts.sort_values("customers", ascending=False, kind="stable").reset_index(drop=True)


def order_lines(
    orders: pd.DataFrame, ids: np.ndarray, countries: np.ndarray, *, rng: np.random.Generator
) -> pd.DataFrame:
    """The lines of ``orders`` (``customer``, ``ts``, mean ``lines``, quantity ``scale``), one per product.

    Invoice numbers follow the orders' times, from 536365.
    """
    order_index = np.argsort(orders["ts"].values, kind="stable")
    invoice_no = np.empty(len(order_index), dtype=np.int64)
    invoice_no[order_index] = 536365 + np.arange(len(order_index))
    lines_per = np.maximum(1, rng.poisson(orders["lines"].to_numpy()))
    line_order = np.repeat(np.arange(len(orders)), lines_per)
    n_lines = len(line_order)

    products = 900
    product_price = np.round(np.exp(rng.normal(0.9, 0.8, size=products)), 2).clip(0.19, 150.0)
    product_code = np.array([f"{20000 + i}" for i in range(products)])
    product_name = np.array([f"PRODUCT {i:03d} GIFT ITEM" for i in range(products)])
    popularity = rng.zipf(1.6, size=n_lines) % products
    scale = orders["scale"].to_numpy()[line_order]
    quantity = np.maximum(1, np.round(rng.gamma(1.5, 5.0, size=n_lines) * scale)).astype(int)

    cust = orders["customer"].to_numpy()[line_order]
    log = pd.DataFrame(
        {
            "InvoiceNo": invoice_no[line_order].astype(str),
            "StockCode": product_code[popularity],
            "Description": product_name[popularity],
            "Quantity": quantity,
            "ts": orders["ts"].values[line_order],
            "UnitPrice": product_price[popularity],
            "CustomerID": ids[cust].astype(str),
            "Country": countries[cust],
        }
    )
    return log.drop_duplicates(["InvoiceNo", "StockCode"]).reset_index(drop=True)


def finish(log: pd.DataFrame, rng: np.random.Generator, *, dirty: bool) -> pd.DataFrame:
    """Sorted by time, all columns as text in Online Retail's formats, dirty lines added if ``dirty``."""
    log = log.sort_values(["ts", "InvoiceNo"], kind="stable").reset_index(drop=True)
    log["InvoiceDate"] = _format_ts(log.pop("ts"))
    log["Quantity"] = log["Quantity"].astype(str)
    log["UnitPrice"] = log["UnitPrice"].map(lambda v: f"{v:g}")
    if dirty:
        log = _dirty(log, rng)
    return log[HEADER]


def cancellations(log: pd.DataFrame, rng: np.random.Generator, until: pd.Series | None = None) -> pd.DataFrame:
    """About 3% of orders get a later cancellation of one of their lines, at the latest ``until`` (per line).

    Without ``until``, at the latest ``END``.
    """
    firsts = log.drop_duplicates("InvoiceNo")
    chosen = firsts[rng.random(len(firsts)) < 0.03].copy()
    chosen["InvoiceNo"] = "C" + chosen["InvoiceNo"]
    chosen["Quantity"] = -np.maximum(1, (chosen["Quantity"] * rng.uniform(0.2, 1.0, len(chosen))).round()).astype(int)
    later = pd.to_timedelta(rng.integers(1, 5 * 24 * 60, size=len(chosen)), unit="m")
    cap = pd.Timestamp(END) if until is None else until.loc[chosen.index]
    chosen["ts"] = (chosen["ts"] + later).where(chosen["ts"] + later <= cap, cap)
    return chosen


def _format_ts(ts: pd.Series) -> pd.Series:
    """Online Retail's ``M/d/yyyy H:mm``."""
    return (
        ts.dt.month.astype(str)
        + "/"
        + ts.dt.day.astype(str)
        + "/"
        + ts.dt.year.astype(str)
        + " "
        + ts.dt.hour.astype(str)
        + ":"
        + ts.dt.minute.map("{:02d}".format)
    )


def _dirty(log: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Blank customer ids (5%), bad dates (0.1%), zero prices (0.2%), then exact duplicates (0.5%)."""
    log = log.copy()
    n = len(log)
    log.loc[rng.random(n) < 0.05, "CustomerID"] = ""
    log.loc[rng.random(n) < 0.001, "InvoiceDate"] = "not a date"
    log.loc[rng.random(n) < 0.002, "UnitPrice"] = "0"
    dupes = log[rng.random(n) < 0.005]
    return pd.concat([log, dupes]).sort_index(kind="stable").reset_index(drop=True)


MALFORMED_LINES = (
    "581999,22222,BROKEN LINE WITH TOO FEW FIELDS,3",
    '581998,22223,"UNCLOSED QUOTE,2,12/9/2011 9:00,1.25,12346,United Kingdom',
    "581997,22224,TOO,MANY,FIELDS,HERE,2,12/9/2011 9:00,1.25,12346,United Kingdom",
)


def write(
    path: str, customers: int = 3000, seed: int = 7, *, truth_path: str | None = None, planted: int | None = None
) -> int:
    """Write a CSV log, gzip when ``path`` ends in ``.gz`` (and optionally the truth as CSV); return the number
    of data lines."""
    log, truth = generate(customers=customers, seed=seed, planted=planted)
    return write_log(path, log, truth, truth_path=truth_path)


def write_periods(
    path: str, customers: int = 3000, seed: int = 7, *, truth_path: str | None = None, period_days: int = PERIOD_DAYS
) -> int:
    """Write the two-period log as CSV, gzip when ``path`` ends in ``.gz`` (and optionally its truth as CSV);
    return the number of data lines."""
    log, truth = generate_periods(customers=customers, seed=seed, period_days=period_days)
    return write_log(path, log, truth, truth_path=truth_path)


def write_log(path: str, log: pd.DataFrame, truth: pd.DataFrame, *, truth_path: str | None) -> int:
    """The log as CSV, gzip when ``path`` ends in ``.gz`` (no timestamp in gzip's header, so the same log gives
    the same bytes), malformed lines last."""
    buffer = io.StringIO()
    log.to_csv(buffer, index=False, lineterminator="\n")
    text = (buffer.getvalue() + "\n".join(MALFORMED_LINES) + "\n").encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as raw:
        if path.lower().endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
                handle.write(text)
        else:
            raw.write(text)
    if truth_path:
        truth.to_csv(truth_path, index=False)
    return len(log) + len(MALFORMED_LINES)


def write_table(path: str, table: pd.DataFrame, truth: pd.DataFrame, *, truth_path: str | None) -> int:
    """Write a customer table as plain CSV (and optionally the truth as CSV); return the number of rows."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    table.to_csv(path, index=False)
    if truth_path:
        truth.to_csv(truth_path, index=False)
    return len(table)


# ---------------------------------------------------------------- other shapes of the same kind of data


def cdnow(customers: int = 2000, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A log shaped like the CDNOW purchase log and each customer's truth (``demo.buyers``): customers simulated
    from BG/NBD and Gamma-Gamma at the estimates published for CDNOW, first buying in the first quarter of 1997
    and followed to mid-1998; one line per purchase (customer id, the day as ``yyyyMMdd``, the number of CDs and
    the purchase's dollar value), no invoice, no product, no unit price; 0.3% of lines have a value of 0, as in
    the real log."""
    return buyers.simulate(customers, buyers.CDNOW, seed=seed, zero_share=0.003)


def write_cdnow(path: str, customers: int = 2000, seed: int = 7, *, truth_path: str | None = None) -> int:
    """Write a CDNOW-shaped log as plain CSV with a header (and optionally the truth); the number of lines."""
    log, truth = cdnow(customers, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    log.to_csv(path, index=False, lineterminator="\n")
    if truth_path:
        truth.to_csv(truth_path, index=False)
    return len(log)


MALFORMED_JSON_LINES = ('{"InvoiceNo": "581999", "StockCode": "22222", "Quantity": 3', "not json at all")


def json_lines(log: pd.DataFrame) -> str:
    """The log's lines as JSON objects, one per line, with numbers as JSON numbers where they read as numbers
    (the customer id as an integer, as an export would write it), and ``MALFORMED_JSON_LINES`` last."""

    def typed(value: str, kind: type) -> object:
        try:
            number = kind(float(value)) if kind is int else kind(value)
        except ValueError:
            return value if value != "" else None
        return number

    records = []
    for row in log.itertuples(index=False):
        record = dict(zip(log.columns, row, strict=True))
        record["Quantity"] = typed(record["Quantity"], int)
        record["UnitPrice"] = typed(record["UnitPrice"], float)
        record["CustomerID"] = typed(record["CustomerID"], int)
        records.append(json.dumps(record, ensure_ascii=False))
    return "\n".join([*records, *MALFORMED_JSON_LINES]) + "\n"


def write_json_lines(path: str, customers: int = 3000, seed: int = 7, *, truth_path: str | None = None) -> int:
    """Write ``generate``'s log as JSON lines (gzip when ``path`` ends in ``.gz``); the number of lines."""
    log, truth = generate(customers=customers, seed=seed)
    text = json_lines(log).encode("utf-8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as raw:
        if path.lower().endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
                handle.write(text)
        else:
            raw.write(text)
    if truth_path:
        truth.to_csv(truth_path, index=False)
    return len(log) + len(MALFORMED_JSON_LINES)
