"""Customers simulated from the value models themselves: BG/NBD purchases and Gamma-Gamma spend with known
parameters, as a purchase log in the CDNOW shape. What the value models fit on such a log can be checked against
the parameters that made it (planted truth).

Per customer, in weeks: a purchase rate λ ~ Gamma(r, rate alpha) and a dropout probability p ~ Beta(a, b); the first
purchase on a day of the first ``first_weeks`` weeks; after it, purchases at rate λ (a Poisson process), the
customer dropping out after each purchase with probability p. Each purchase's value is Gamma(p_spend, rate nu) with
nu ~ Gamma(q, rate v) per customer. Purchases are dated by day (two on one day are two lines of that day).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

HEADER = ["customer_id", "date", "number_of_cds", "dollar_value"]  # as the published CDNOW files
START = pd.Timestamp("1997-01-01")
END = pd.Timestamp("1998-06-30")
PRICE_PER_ITEM = 15.0  # number_of_cds is 1 + Poisson(value / this - 1)


@dataclass(frozen=True)
class Truth:
    """The parameters a log is simulated with (time in weeks): BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v."""

    r: float = 0.2426
    alpha: float = 4.4136
    a: float = 0.7929
    b: float = 2.4259
    p: float = 6.25
    q: float = 3.74
    v: float = 15.44

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


CDNOW = Truth()  # the estimates Fader, Hardie and Lee (2005) published for CDNOW


def simulate(
    customers: int,
    truth: Truth = CDNOW,
    *,
    seed: int = 7,
    first_weeks: int = 12,
    zero_share: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A log (``HEADER``, one line per purchase, sorted by date) and each customer's truth (``customer_id``,
    ``rate``, ``dropout``, ``purchases``, ``alive_at_end``, ``spend_rate``); ``zero_share`` of the lines get a
    value of 0 (the real log has a few)."""
    rng = np.random.default_rng(seed)
    weeks = (END - START).days / 7
    rates = rng.gamma(truth.r, 1 / truth.alpha, size=customers)
    dropouts = rng.beta(truth.a, truth.b, size=customers)
    nus = rng.gamma(truth.q, 1 / truth.v, size=customers)
    firsts = rng.integers(0, first_weeks * 7, size=customers) / 7
    rows, truths = [], []
    for customer in range(customers):
        times, alive, now = [firsts[customer]], True, firsts[customer]
        while True:
            if rng.random() < dropouts[customer] and len(times) > 1:
                alive = False
                break
            now += rng.exponential(1 / rates[customer]) if rates[customer] > 0 else np.inf
            if now > weeks:
                break
            times.append(now)
        values = rng.gamma(truth.p, 1 / nus[customer], size=len(times))
        for time, value in zip(times, values, strict=True):
            day = START + pd.Timedelta(days=int(time * 7))
            items = 1 + rng.poisson(max(value / PRICE_PER_ITEM - 1, 0.0))
            rows.append((customer + 1, day.strftime("%Y%m%d"), items, round(float(value), 2)))
        truths.append((customer + 1, rates[customer], dropouts[customer], len(times), alive, nus[customer]))
    log = pd.DataFrame(rows, columns=HEADER)
    if zero_share:
        log.loc[rng.random(len(log)) < zero_share, "dollar_value"] = 0.0
    log = log.sort_values(["date", "customer_id"], kind="stable").reset_index(drop=True)
    columns = ["customer_id", "rate", "dropout", "purchases", "alive_at_end", "spend_rate"]
    return log, pd.DataFrame(truths, columns=columns)
