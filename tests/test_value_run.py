"""Customer value in the run: the published CDNOW sample through the command line (``conf/examples/cdnow.yaml``),
planted BG/NBD and Gamma-Gamma customers recovered, and the edge cases of a log that cannot support a fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from segmentation import cli
from segmentation.publish import files, storage

REPO = Path(__file__).resolve().parents[1]
CDNOW_SAMPLE = REPO.parent / "shared" / "data" / "cdnow" / "cdnow_sample.csv"
CDNOW_CONFIG = REPO / "conf" / "examples" / "cdnow.yaml"
PUBLISHED = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259, "p": 6.25, "q": 3.74, "v": 15.44}


def read_table(spark: SparkSession, folder: str | Path, name: str) -> pd.DataFrame:
    return spark.read.parquet(str(Path(folder) / name)).toPandas()


def committed_run(root: Path) -> Path:
    return Path(files.resolve_run(storage.for_root(None, str(root))))


@pytest.mark.slow
@pytest.mark.skipif(not CDNOW_SAMPLE.exists(), reason="the shared CDNOW sample is not here")
def test_the_cdnow_sample_through_the_command_line(spark: SparkSession, tmp_path: Path) -> None:
    argv = ["run", "--config", str(CDNOW_CONFIG), "--input", str(CDNOW_SAMPLE), "--output", str(tmp_path / "out")]
    assert cli.main([*argv, "--set", "model.k=4", "-q"]) == 0
    folder = committed_run(tmp_path / "out")
    manifest = json.loads((folder / "manifest.json").read_text())

    # the published estimates, within 1%: the run quarantines the 8 zero-value lines the published fit kept (so 8
    # customers whose only purchase in the 39 weeks was worth 0 are not in it)
    fitted = read_table(spark, folder, "value_model").set_index("parameter")
    for name, published in PUBLISHED.items():
        assert fitted.loc[name, "estimate"] == pytest.approx(published, rel=0.01), name
    assert set(fitted["model"]) == {"bgnbd", "gamma_gamma"}
    assert (fitted["time_unit"] == "week").all() and (fitted["horizon_days"] == 365).all()
    assert fitted.loc["r", "customers"] == 2357 - 8

    # the holdout: weeks 40 to 78 (1997-10-01 to 1998-06-30), calibration frequencies 0 to 7+
    calibration = read_table(spark, folder, "value_calibration")
    assert calibration["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert set(calibration["holdout_start"].astype(str)) == {"1997-10-01"}
    assert set(calibration["holdout_end"].astype(str)) == {"1998-06-30"}
    assert calibration["customers"].sum() == 2357 - 8
    assert calibration["mean_predicted"].is_monotonic_increasing
    assert np.corrcoef(calibration["mean_predicted"], calibration["mean_actual"])[0, 1] > 0.95
    numbers = manifest["value"]["calibration"]
    assert numbers["span"] == pytest.approx(273 / 7)
    log = pd.read_csv(CDNOW_SAMPLE, dtype={"customer_id": str, "date": str})
    holdout = log[(log["date"] > "19970930") & (log["dollar_value"] != 0)]
    known = holdout[holdout["customer_id"].isin(log.loc[log["date"] <= "19970930", "customer_id"])]
    assert numbers["actual_total"] == known.groupby("customer_id")["date"].nunique().sum()
    assert numbers["auc_expected_purchases"] > 0.7

    # every customer valued; exact copies in the window counted and kept
    values = read_table(spark, folder, "customer_value")
    assert len(values) == 2357 - 8 and values["customer_id"].is_unique
    assert values["p_alive"].between(0, 1).all() and (values["clv"] >= 0).all()
    assert (values["clv"] <= values["expected_value"] + 1e-6).all()  # discounting only lowers the value
    window = log[(log["date"] <= "19970930") & (log["dollar_value"] != 0)]
    assert manifest["counts"]["exact_copies"] == int(window.duplicated(keep="first").sum())
    assert manifest["input"]["exact_copies"] == "keep"
    assert "duplicate_line" not in manifest["counts"]["quarantined_by_reason"]
