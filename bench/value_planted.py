"""Planted truth for the value models: customers simulated from BG/NBD and Gamma-Gamma (``demo.buyers``) at known
parameters, summarised as the job summarises them (purchase days, time in weeks, to the as-of date 1997-09-30),
fitted, and the estimates set against the truth with their standard errors, at growing numbers of customers.

    .venv/bin/python bench/value_planted.py [--customers 2000,8000,32000] [--seed 5]

The summary here is pandas' (the same rule as ``value.summary``, which ``tests/test_value_run.py`` checks in
Spark on the same kind of log); prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from segmentation.demo import buyers
from segmentation.value import models

AS_OF = pd.Timestamp("1997-09-30")


def summary(log: pd.DataFrame) -> pd.DataFrame:
    """x, t_x, T (weeks) and the mean repeat value per customer, from the lines up to the as-of date."""
    days = log.assign(day=pd.to_datetime(log["date"], format="%Y%m%d"))
    days = days[days["day"] <= AS_OF].groupby(["customer_id", "day"], as_index=False)["dollar_value"].sum()
    days = days.sort_values(["customer_id", "day"])
    grouped = days.groupby("customer_id")
    first, last = grouped["day"].min(), grouped["day"].max()
    x = grouped.size() - 1
    total, first_value = grouped["dollar_value"].sum(), grouped["dollar_value"].first()
    return pd.DataFrame(
        {
            "x": x,
            "t_x": (last - first).dt.days / 7,
            "T": (AS_OF - first).dt.days / 7,
            "mean_value": np.where(x > 0, (total - first_value) / x.clip(lower=1), np.nan),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", default="2000,8000,32000")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    truth = buyers.CDNOW
    print("| customers | parameter | truth | estimate | std error | (estimate - truth) / std error |")
    print("| --- | --- | --- | --- | --- | --- |")
    for customers in [int(c) for c in args.customers.split(",")]:
        log, _ = buyers.simulate(customers, truth, seed=args.seed)
        table = summary(log)
        fits = [models.fit_bgnbd(models.Tuples(table["x"], table["t_x"], table["T"]))]
        spenders = table[(table["x"] > 0) & (table["mean_value"] > 0)]
        fits.append(models.fit_gamma_gamma(spenders["x"], spenders["mean_value"]))
        for fit in fits:
            for name, estimate in fit.params.items():
                error, true = fit.errors[name], getattr(truth, name)
                gap = (estimate - true) / error
                print(f"| {customers} | {name} | {true:g} | {estimate:.4g} | {error:.3g} | {gap:+.2f} |")


if __name__ == "__main__":
    main()
