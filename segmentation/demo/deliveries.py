"""Planted daily deliveries of a log, for incremental runs (tests and ``make bench``): one CSV file per day in
Online Retail's columns and formats, with what nightly exports hold besides the day's purchases.

Each day's file holds that day's orders (one to three lines each, some customers buying on several days) and:

- same-day duplicates: a few of the day's lines twice;
- returns: a ``C`` invoice with a negative quantity for a product the customer bought earlier;
- an overlap with the previous file: its last lines again (as two overlapping exports give them);
- late lines (every fifth day): purchases dated a few days before the file's day, not in any earlier file;
- dirty lines: no customer id, a quantity that is no number, a zero price, a date that is no date, and a
  malformed row (too few fields) last.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
COUNTRIES = ("United Kingdom", "France", "Germany", "EIRE")


def _line(
    invoice: str, product: int, quantity: int, when: dt.datetime, price: float, customer: str, country: str
) -> str:
    stamp = f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}"
    return f"{invoice},P{product:03d},PRODUCT {product:03d},{quantity},{stamp},{price:.2f},{customer},{country}"


def daily_lines(
    days: int = 30, *, customers: int = 60, seed: int = 11, start: dt.date = dt.date(2024, 3, 1)
) -> list[list[str]]:
    """The data lines of each day's file (without the header), day 0 first; the same arguments, the same lines."""
    rng = random.Random(seed)
    ids = [str(12000 + i) for i in range(customers)]
    country = {c: rng.choice(COUNTRIES) for c in ids}
    bought: dict[str, list[tuple[int, float]]] = {}
    invoice = 600000
    files: list[list[str]] = []

    def order(customer: str, when: dt.datetime) -> list[str]:
        nonlocal invoice
        invoice += 1
        lines = []
        for _ in range(rng.randint(1, 3)):
            product, price = rng.randint(1, 40), round(rng.uniform(0.5, 20.0), 2)
            bought.setdefault(customer, []).append((product, price))
            lines.append(_line(str(invoice), product, rng.randint(1, 12), when, price, customer, country[customer]))
        return lines

    for day in range(days):
        date = start + dt.timedelta(days=day)
        at = lambda hour, minute, on=date: dt.datetime.combine(on, dt.time(hour, minute))  # noqa: E731
        lines: list[str] = []
        for customer in rng.sample(ids, k=max(2, customers // 5)):
            lines += order(customer, at(rng.randint(8, 17), rng.randint(0, 59)))
        lines += rng.sample(lines, k=2)  # same-day duplicates
        returner = rng.choice(sorted(bought))
        product, price = rng.choice(bought[returner])
        invoice += 1
        lines.append(_line(f"C{invoice}", product, -1, at(18, 5), price, returner, country[returner]))
        if day % 5 == 4:  # late lines: dated two to four days before this file's day
            late = dt.datetime.combine(date - dt.timedelta(days=rng.randint(2, 4)), dt.time(19, 30))
            lines += order(rng.choice(ids), late)
        lines += [
            _line(f"{invoice}9", 7, 2, at(9, 0), 1.5, "", "France"),  # no customer id
            _line(f"{invoice}8", 7, 2, at(9, 1), 1.5, ids[day % customers], "France").replace(",2,", ",two,", 1),
            _line(f"{invoice}7", 8, 1, at(9, 2), 0.0, ids[(day + 1) % customers], "France"),  # zero price
        ]
        if day % 3 == 0:
            lines.append(f"{invoice}6,P009,PRODUCT 009,1,not a date,2.50,{ids[(day + 2) % customers]},France")
        if day:
            lines = files[-1][-6:-1] + lines  # the previous export's last lines again (not its malformed row)
        lines.append(f"{invoice}5,P010,BROKEN ROW WITH TOO FEW FIELDS,3")
        files.append(lines)
    return files


def write_daily(folder: str | Path, *, days: int = 30, customers: int = 60, seed: int = 11) -> list[Path]:
    """Write ``day-000.csv``, ``day-001.csv``, ... into ``folder``; their paths, day 0 first."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for day, lines in enumerate(daily_lines(days, customers=customers, seed=seed)):
        path = Path(folder) / f"day-{day:03d}.csv"
        path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
