"""Reference: customer segmentation done the usual single-machine way, with pandas and scikit-learn.

The same filters and features as the project's job (segmentation/input/, segmentation/features/table.py), the
five model features through a signed log1p and standardised, then KMeans for k = 2..10 and the k with the
highest silhouette. No outlier caps (the usual way). Writes ``<output>/segments/part-0.parquet``
(customer_id, segment) and prints one JSON line: ``{"chosen_k": ..., "customers": ..., "silhouettes": {...}}``.

    python bench/reference_sklearn.py --input PATH --output DIR
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]
K_RANGE = range(2, 11)
SEED = 42
SILHOUETTE_SAMPLE = 10_000


def csv_files(path: str) -> list[str]:
    """The file itself, or every CSV part file in a folder, in name order."""
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "*.csv*")))
    return [path]


def read_log(path: str) -> pd.DataFrame:
    """All part files concatenated; pandas handles the gzip. Ids as text, as people do to keep ``C536379``."""
    text = {"InvoiceNo": str, "StockCode": str, "CustomerID": str}
    return pd.concat([pd.read_csv(f, dtype=text) for f in csv_files(path)], ignore_index=True)


def clean(log: pd.DataFrame) -> pd.DataFrame:
    """Valid lines with a normalised customer id, timestamp, quantity and price; exact duplicates dropped."""
    customer = log["CustomerID"].str.strip().str.replace(r"^(\d+)\.0*$", r"\1", regex=True)
    invoice = log["InvoiceNo"].str.strip()
    ts = pd.to_datetime(log["InvoiceDate"].astype(str).str.strip(), format="%m/%d/%Y %H:%M", errors="coerce")
    quantity = pd.to_numeric(log["Quantity"], errors="coerce")
    price = pd.to_numeric(log["UnitPrice"], errors="coerce")
    valid = (
        customer.notna()
        & (customer != "")
        & invoice.notna()
        & (invoice != "")
        & ts.notna()
        & np.isfinite(quantity)
        & np.isfinite(price)
        & (price > 0)
    )
    keep = log[valid].drop_duplicates().index  # exact duplicate lines: the first copy stays
    return pd.DataFrame(
        {
            "customer_id": customer[keep],
            "invoice": invoice[keep],
            "ts": ts[keep],
            "quantity": quantity[keep],
            "price": price[keep],
        }
    )


def customer_features(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per customer: the five model features, days counted against the date of the latest line."""
    as_of = lines["ts"].max().normalize()
    day = lines["ts"].dt.normalize()
    is_return = lines["invoice"].str.upper().str.startswith("C") | (lines["quantity"] < 0)
    amount = (lines["quantity"] * lines["price"]).abs()
    amount = amount.where(~is_return, -amount)
    frame = pd.DataFrame({"customer_id": lines["customer_id"], "invoice": lines["invoice"], "day": day})
    frame["amount"] = amount
    everything = frame.groupby("customer_id")
    buys = frame[~is_return].groupby("customer_id")
    out = pd.DataFrame({"last_seen": everything["day"].max(), "first_seen": everything["day"].min()})
    out["monetary"] = everything["amount"].sum()
    out["last_purchase"] = buys["day"].max()
    out["frequency"] = buys["invoice"].nunique()
    out["gross"] = buys["amount"].sum()
    out[["frequency", "gross"]] = out[["frequency", "gross"]].fillna(0.0)
    out["recency_days"] = (as_of - out["last_purchase"].fillna(out["last_seen"])).dt.days
    out["tenure_days"] = (as_of - out["first_seen"]).dt.days
    out["avg_order_value"] = (out["gross"] / out["frequency"]).where(out["frequency"] > 0, 0.0)
    return out[FEATURES].astype(float)


def model_matrix(features: pd.DataFrame) -> np.ndarray:
    """Signed log1p of every feature, then standardised."""
    values = features.to_numpy()
    return StandardScaler().fit_transform(np.sign(values) * np.log1p(np.abs(values)))


def sweep(matrix: np.ndarray) -> tuple[dict[int, float], dict[int, np.ndarray]]:
    """KMeans for every k; silhouette on a sample of at most 10,000 customers.

    The exact silhouette needs all pairwise distances, O(n^2): infeasible for hundreds of thousands of
    customers, so it is estimated on a seeded sample, which is what people do.
    """
    n = len(matrix)
    silhouettes, labels = {}, {}
    for k in (k for k in K_RANGE if k < n):
        fitted = KMeans(n_clusters=k, random_state=SEED, n_init="auto").fit(matrix)
        labels[k] = fitted.labels_
        silhouettes[k] = float(
            silhouette_score(matrix, fitted.labels_, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=SEED)
        )
    return silhouettes, labels


def write_segments(output: str, customer_ids: pd.Index, labels: np.ndarray) -> None:
    """``<output>/segments/part-0.parquet`` with customer_id (text) and segment (int)."""
    folder = os.path.join(output, "segments")
    os.makedirs(folder, exist_ok=True)
    frame = pd.DataFrame({"customer_id": customer_ids.astype(str), "segment": labels.astype("int32")})
    frame.to_parquet(os.path.join(folder, "part-0.parquet"), index=False)


def main(argv: list[str] | None = None) -> int:
    """Read, clean, featurise, sweep k, write the chosen segmentation and print the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="CSV file or folder of CSV part files (gzip works)")
    parser.add_argument("--output", required=True, help="output folder")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    log = read_log(args.input)
    lines_in = len(log)
    lines = clean(log)
    del log
    timings["read_clean"] = time.perf_counter() - start
    features = customer_features(lines)
    timings["features"] = time.perf_counter() - start - sum(timings.values())
    silhouettes, labels = sweep(model_matrix(features))
    chosen = max(silhouettes, key=lambda k: silhouettes[k])
    timings["sweep"] = time.perf_counter() - start - sum(timings.values())
    write_segments(args.output, features.index, labels[chosen])
    timings["write"] = time.perf_counter() - start - sum(timings.values())
    summary = {
        "chosen_k": chosen,
        "customers": len(features),
        "silhouettes": {str(k): round(v, 6) for k, v in silhouettes.items()},
        "lines_in": lines_in,
        "lines_clean": len(lines),
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
