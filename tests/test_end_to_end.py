"""The whole job, end to end, in local mode: the real Online Retail log, renamed columns, a customer table,
re-runs of the same date, and the command line."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segmentation import cli
from segmentation.config import SelectionConfig
from segmentation.demo import generate
from segmentation.errors import InputError
from segmentation.jobs import score, segment
from segmentation.model import sweep
from segmentation.publish import files, storage

from .conftest import ONLINE_RETAIL, job_config

pytestmark = pytest.mark.slow
TABLES = ("segments", "features", "sweep", "profiles", "quarantine")


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "log.csv.gz"
    generate.write(str(path), customers=400, seed=11)
    return path


def partition_values(folder: Path, name: str) -> list[str]:
    return sorted(p.name.split("=", 1)[1] for p in folder.iterdir() if p.name.startswith(f"{name}="))


@pytest.mark.skipif(
    not ONLINE_RETAIL.exists() and not os.environ.get("CI"), reason="the Online Retail log is not beside this repo"
)
def test_online_retail_log_end_to_end(spark: SparkSession, tmp_path: Path) -> None:
    cfg = job_config(tmp_path, str(ONLINE_RETAIL))
    result = segment.run(spark, cfg)
    counts = result.counts

    assert counts.lines_in == 541_909
    assert counts.lines_in == counts.lines_clean + counts.lines_quarantined  # nothing after the latest date
    assert counts.out_of_window == 0
    assert counts.quarantined["missing_customer_id"] == 135_080
    assert "implausible_value" not in counts.quarantined  # the default input.limits pass the real log unchanged
    assert result.as_of == dt.date(2011, 12, 9)

    # an independent count of customers with at least one valid line, in pandas
    log = pd.read_csv(ONLINE_RETAIL, dtype=str)
    price = pd.to_numeric(log["UnitPrice"], errors="coerce")
    quantity = pd.to_numeric(log["Quantity"], errors="coerce")
    valid = log["CustomerID"].notna() & (price > 0) & np.isfinite(quantity)
    expected_customers = log.loc[valid, "CustomerID"].str.replace(r"\.0$", "", regex=True).nunique()
    assert result.customers == expected_customers

    root = Path(result.output_root)
    run = Path(result.run_folder)
    assert run.parent == root / "runs" / "as_of_date=2011-12-09" / "run_id=main"
    assert json.loads((run.parent / "_commits" / "00000001.json").read_text())["attempt_id"] == run.name[8:]
    for table in (*TABLES, "model"):
        assert (run / table).is_dir(), table
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["extremes"] == [  # clean lines over 1,000 times the log's median (docs: Checks before publishing)
        {"column": "quantity", "lines": 5, "median": 6.0, "largest": 80995.0, "factor": 1000.0},
        {"column": "unit_price", "lines": 21, "median": 1.95, "largest": 38970.0, "factor": 1000.0},
        {"column": "value", "lines": 6, "median": 11.9, "largest": 168469.6, "factor": 1000.0},
    ]
    assert (run / "_SUCCESS").exists()
    assert (root / "latest").read_text() == "runs/as_of_date=2011-12-09/run_id=main\n"
    assert not (root / "_work").exists()  # the job's Parquet copy of the lines is gone
    assert manifest["counts"]["lines_in"] == 541_909
    assert manifest["counts"]["quarantined_by_reason"]["missing_customer_id"] == 135_080
    assert manifest["chosen_k"] == result.choice.k
    assert manifest["choice_reason"] == result.choice.reason
    # the combined rule's choice on the real log, in one sentence: k=3, first on silhouette and stability
    assert result.choice.k == 3
    assert manifest["choice_reason"].startswith("k=3: 2 of 5 criteria put it first (silhouette (0.476, on squared")
    assert manifest["sweep_sample"] == {"used": False, "customers": expected_customers}
    names = [s["name"] for s in manifest["segments"]]
    assert len(set(names)) == len(names) == result.choice.k
    assert set(manifest["timings_seconds"]) >= {"read_validate", "features", "sweep", "final_model", "write"}

    segments = spark.read.parquet(str(run / "segments"))
    assert segments.count() == expected_customers
    assert segments.select("customer_id").distinct().count() == expected_customers
    assert partition_values(run / "segments", "segment") == [str(s) for s in range(1, result.choice.k + 1)]
    quarantine = spark.read.parquet(str(run / "quarantine"))
    by_reason = {r["reason"]: r["count"] for r in quarantine.groupBy("reason").count().collect()}
    assert by_reason == dict(counts.quarantined)
    sweep = spark.read.parquet(str(run / "sweep")).orderBy("k").collect()
    rules = SelectionConfig()
    assert [r["k"] for r in sweep] == list(range(2, 11))
    assert [r["k"] for r in sweep if r["chosen"]] == [result.choice.k]
    # the other two seeds went to k=2..7, in contention after one seed; k=8..10 had a segment under 2% on it
    assert [(r["k"], r["seeds"]) for r in sweep] == [(k, 3 if k <= 7 else 1) for k in range(2, 11)]
    assert all(r["smallest_cluster_share"] < rules.min_segment_share for r in sweep if r["seeds"] == 1)
    assert all(r["calinski_harabasz"] > 0 and r["davies_bouldin"] > 0 for r in sweep)
    assert all(r["non_empty_clusters"] == r["k"] for r in sweep)
    assert all(-1.0 <= r["stability"] <= 1.0 if r["seeds"] == 3 else r["stability"] is None for r in sweep)
    chosen = next(r for r in sweep if r["chosen"])
    assert chosen["smallest_cluster_share"] >= rules.min_segment_share and chosen["stability"] >= rules.min_stability
    profiles = spark.read.parquet(str(run / "profiles")).orderBy("segment").collect()
    assert sum(r["customers"] for r in profiles) == expected_customers
    assert sum(r["revenue_share"] for r in profiles) == pytest.approx(1.0)
    means = [r["mean_monetary"] for r in profiles]
    assert means == sorted(means, reverse=True)  # segment 1 has the highest mean monetary value
    assert [r["segment_name"] for r in profiles] == names
    weighted_lift = sum(r["lift_monetary"] * r["customers"] for r in profiles) / expected_customers
    assert weighted_lift == pytest.approx(1.0)  # lifts average to 1 over the population
    named = spark.read.parquet(str(run / "segments")).select("segment", "segment_name").distinct()
    assert {(r["segment"], r["segment_name"]) for r in named.collect()} == {
        (s["segment"], s["name"]) for s in manifest["segments"]
    }
    # the saved model, loaded on its own, puts every customer back in its published segment
    model = PipelineModel.load(str(run / "model"))
    features = spark.read.parquet(str(run / "features"))
    to_segment = {int(k): v for k, v in manifest["cluster_to_segment"].items()}
    rescored = model.transform(features.drop("segment", "segment_name")).select(
        "customer_id",
        F.element_at(F.create_map(*[F.lit(v) for kv in to_segment.items() for v in kv]), F.col("cluster"))
        .cast("int")
        .alias("segment"),
    )
    assert_df_equality(rescored, segments.select("customer_id", "segment"), ignore_row_order=True, ignore_nullable=True)


def test_renamed_columns_by_config_only_give_the_same_segments(spark: SparkSession, tmp_path: Path) -> None:
    log, _ = generate.generate(customers=400, seed=11)
    original = tmp_path / "original" / "log.csv"
    original.parent.mkdir()
    log.to_csv(original, index=False)
    renamed = log.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    stamp = pd.to_datetime(renamed["InvoiceDate"], format="%m/%d/%Y %H:%M", errors="coerce")
    renamed["InvoiceDate"] = stamp.dt.strftime("%Y-%m-%d %H:%M:%S").fillna(renamed["InvoiceDate"])
    renamed["Customer ID"] = renamed["Customer ID"].map(lambda v: f"{v}.0" if v else v)
    other = tmp_path / "other" / "log.csv"
    other.parent.mkdir()
    renamed.to_csv(other, index=False)

    mapping = [
        "input.columns.invoice_id=Invoice",
        "input.columns.unit_price=Price",
        "input.columns.customer_id=Customer ID",
    ]
    fixed = ["model.k_min=3", "model.k_max=5"]
    first = segment.run(spark, job_config(tmp_path, str(original), *fixed, output=str(tmp_path / "a")))
    second = segment.run(spark, job_config(tmp_path, str(other), *fixed, *mapping, output=str(tmp_path / "b")))

    assert second.customers == first.customers
    assert second.choice == first.choice
    assert second.counts == first.counts
    assert second.counts.quarantined["missing_customer_id"] > 0
    a = spark.read.parquet(str(Path(first.run_folder) / "segments"))
    b = spark.read.parquet(str(Path(second.run_folder) / "segments"))
    assert_df_equality(a, b, ignore_row_order=True, ignore_column_order=True)


def test_customer_table_end_to_end(spark: SparkSession, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    centres = [(25, 20), (25, 80), (55, 50), (90, 15), (90, 85)]
    rows = []
    for i in range(250):
        income, score = centres[i % 5]
        rows.append(
            {
                "CustomerID": i + 1,
                "Gender": "Female" if i % 2 else "Male",
                "Age": int(rng.integers(18, 70)),
                "Annual Income (k$)": income + rng.normal(0, 4),
                "Spending Score (1-100)": score + rng.normal(0, 4),
            }
        )
    rows.append(
        {"CustomerID": None, "Gender": "Male", "Age": 30, "Annual Income (k$)": 50.0, "Spending Score (1-100)": 50.0}
    )
    table = tmp_path / "mall" / "customers.parquet"
    table.parent.mkdir()
    pd.DataFrame(rows).to_parquet(table)

    settings = [
        "input.kind=customers",
        "input.customers.numeric_columns=[Annual Income (k$), Spending Score (1-100)]",
        "features.as_of=2024-01-31",
        "model.k_max=7",
    ]
    result = segment.run(spark, job_config(tmp_path, str(table), *settings))
    assert result.counts.lines_in == 251
    assert dict(result.counts.quarantined) == {"missing_customer_id": 1}
    assert result.customers == 250
    assert result.choice.k == 5
    assert sorted(result.segment_sizes.values()) == [50, 50, 50, 50, 50]

    profiles = spark.read.parquet(str(Path(result.run_folder) / "profiles")).orderBy("segment").collect()
    means = [r["mean_Annual Income (k$)"] for r in profiles]
    assert means == sorted(means, reverse=True)  # ordered by the first numeric column
    assert "revenue_share" not in profiles[0].asDict()

    def nearest(income: float, score: float) -> str:
        row = min(
            profiles,
            key=lambda r: (
                (r["mean_Annual Income (k$)"] - income) ** 2 + (r["mean_Spending Score (1-100)"] - score) ** 2
            ),
        )
        return row["segment_name"]

    assert nearest(90, 15) == "High annual income, low spending score"
    assert nearest(25, 80) == "Low annual income, high spending score"
    assert nearest(55, 50) == "Average customers"

    with_gender = segment.run(
        spark,
        job_config(
            tmp_path,
            str(table),
            *settings,
            "input.customers.categorical_columns=[Gender]",
            "model.k=5",
            output=str(tmp_path / "g"),
        ),
    )
    assert with_gender.choice.k == 5 and with_gender.customers == 250


def snapshot(folder: Path) -> list[tuple[Path, int, int]]:
    """Every file under ``folder`` with its size and modification time, to prove it was not touched."""
    return sorted((p.relative_to(folder), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.mark.extended  # keeps make test in its budget (make test-extended runs it)
def test_rerun_replaces_only_its_own_run(spark: SparkSession, tmp_path: Path, small_log: Path) -> None:
    out = tmp_path / "out"
    latest = out / "latest"
    first = segment.run(spark, job_config(tmp_path, str(small_log), "model.k=4", "features.as_of=2011-12-09"))
    assert latest.read_text() == "runs/as_of_date=2011-12-09/run_id=main\n"
    other_date = segment.run(spark, job_config(tmp_path, str(small_log), "model.k=3", "features.as_of=2011-11-30"))
    assert latest.read_text() == "runs/as_of_date=2011-12-09/run_id=main\n"  # a backfill does not move latest
    other_id = segment.run(
        spark, job_config(tmp_path, str(small_log), "model.k=2", "features.as_of=2011-12-09", "output.run_id=trial")
    )
    assert latest.read_text() == "runs/as_of_date=2011-12-09/run_id=trial\n"
    assert (first.choice.k, other_date.choice.k, other_id.choice.k) == (4, 3, 2)
    assert "implausible_value" not in first.counts.quarantined  # the default input.limits pass the demo log
    untouched = {Path(r.run_folder): snapshot(Path(r.run_folder)) for r in (other_date, other_id)}

    rerun = segment.run(spark, job_config(tmp_path, str(small_log), "model.k=3", "features.as_of=2011-12-09"))
    assert rerun.choice.k == 3 and Path(rerun.run_folder).parent == Path(first.run_folder).parent
    assert not Path(first.run_folder).exists()  # the replaced attempt is removed once the new one is committed
    assert sorted(p.name for p in (Path(rerun.run_folder).parent / "_commits").iterdir()) == [
        "00000001.json",
        "00000002.json",
    ]
    assert partition_values(Path(rerun.run_folder) / "segments", "segment") == ["1", "2", "3"]
    assert {folder: snapshot(folder) for folder in untouched} == untouched
    assert files.committed_runs(storage.for_root(None, str(out))) == [
        (dt.date(2011, 11, 30), "main"),
        (dt.date(2011, 12, 9), "main"),
        (dt.date(2011, 12, 9), "trial"),
    ]
    assert latest.read_text() == "runs/as_of_date=2011-12-09/run_id=main\n"
    segments = spark.read.parquet(str(Path(rerun.run_folder) / "segments"))
    assert segments.count() == segments.select("customer_id").distinct().count() == rerun.customers  # no append

    # lines after 30 Nov are not silently used: counted out of window, and not copied into the quarantine
    assert other_date.counts.out_of_window > 0 and "out_of_window" not in other_date.counts.quarantined
    quarantine = spark.read.parquet(str(Path(other_date.run_folder) / "quarantine"))
    assert quarantine.count() == other_date.counts.lines_quarantined


def test_command_line_run_and_config_error(
    spark: SparkSession, tmp_path: Path, small_log: Path, capsys: pytest.CaptureFixture
) -> None:
    # the command line reuses the active session (the fixture's), as it does on Databricks
    code = cli.main(["run", "--input", str(small_log), "--output", str(tmp_path / "cli"), "--set", "model.k=3", "-q"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "chosen k       k=3: fixed by model.k" in printed
    assert list((tmp_path / "cli" / "runs" / "as_of_date=2011-12-09" / "run_id=main").glob("attempt=*/_SUCCESS"))
    report = printed.split("report         ", 1)[1].splitlines()[0]  # the summary says where the report is
    assert report.endswith("/report.html") and Path(report).is_file()
    assert Path(report).parent == Path(printed.split("published      ", 1)[1].splitlines()[0])

    # --json: one object on stdout for an orchestrator; --as-of sets the date
    root = str(tmp_path / "cli")
    argv = ["run", "--input", str(small_log), "--output", root, "--as-of", "2011-12-01", "--run-id", "j", "--json"]
    assert cli.main([*argv, "--set", "model.k=3", "-q"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "published" and record["as_of_date"] == "2011-12-01" and record["chosen_k"] == 3
    assert sum(s["customers"] for s in record["segments"]) == record["customers"] > 0
    assert Path(record["report"]).is_file() and record["run_folder"] in record["report"]
    assert record["counts"]["lines_in"] > 0 and record["timings_seconds"]["total"] > 0

    # runs: both published runs of the root, oldest as-of date first, with k, customers and report
    assert cli.main(["runs", root]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["as-of", "date", "run"]
    assert [line.split()[:2] for line in listed[1:]] == [["2011-12-01", "j"], ["2011-12-09", "main"]]
    assert listed[1].split()[-1] == record["report"]
    assert cli.main(["runs", root, "--run-id", "j", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["as_of_date"], r["run_id"], r["chosen_k"], r["customers"]) for r in rows] == [
        ("2011-12-01", "j", 3, record["customers"])
    ]
    (tmp_path / "empty").mkdir()
    assert cli.main(["runs", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.startswith("no published run in")
    assert cli.main(["runs", str(tmp_path / "empty"), "--json"]) == 0
    assert capsys.readouterr().out == ""  # nothing, not an empty line
    assert cli.main(["runs", str(tmp_path / "mistyped")]) == cli.EXIT_FAILED
    assert f"error: no output root at {tmp_path / 'mistyped'}" in capsys.readouterr().err

    code = cli.main(["run", "--input", str(small_log), "--output", str(tmp_path / "x"), "--set", "model.k_min=1"])
    assert code == 2
    assert "--set model.k_min: model.k_min: expected at least 2" in capsys.readouterr().err


def test_too_many_bad_lines_publish_nothing(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "bad" / "log.csv.gz"
    path.parent.mkdir()
    good = "1,A,x,1,12/1/2010 8:26,1.0,10,UK\n"
    bad = "2,A,x,1,12/1/2010 8:26,1.0,,UK\n"
    with gzip.open(path, "wt") as handle:
        handle.write(",".join(generate.HEADER) + "\n" + good + bad * 3)
    with pytest.raises(InputError, match=r"quality\.max_quarantine_share: 75\.0% of the 4 lines"):
        segment.run(spark, job_config(tmp_path, str(path)))
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / "latest").exists()


def test_scoring_the_training_log_reproduces_its_segments(spark: SparkSession, tmp_path: Path, small_log: Path) -> None:
    trained = segment.run(spark, job_config(tmp_path, str(small_log), "model.k_min=3", "model.k_max=5"))
    cfg = job_config(tmp_path, str(small_log), output=str(tmp_path / "scored"))
    scored = score.score(spark, cfg, trained.output_root)
    assert scored.model_as_of == trained.as_of == scored.as_of
    assert scored.customers == trained.customers
    assert scored.segment_names == trained.segment_names
    before = spark.read.parquet(str(Path(trained.run_folder) / "segments"))
    after = spark.read.parquet(str(Path(scored.run_folder) / "segments"))
    assert_df_equality(before, after, ignore_row_order=True, ignore_column_order=True)
    assert (Path(scored.run_folder) / "_SUCCESS").exists()
    assert score.score(spark, cfg, trained.run_folder).segment_sizes == scored.segment_sizes  # a run folder works

    customers_cfg = job_config(
        tmp_path,
        str(small_log),
        "input.kind=customers",
        "input.customers.numeric_columns=[Quantity]",
        output=str(tmp_path / "wrong"),
    )
    with pytest.raises(InputError, match=r"input\.kind: the model in .* was trained on a transactions input"):
        score.score(spark, customers_cfg, trained.output_root)

    shutil.rmtree(Path(trained.run_folder).parent / "_commits")  # as if the run had never committed
    with pytest.raises(InputError, match="this attempt is not the committed run of its date and run id"):
        score.score(spark, cfg, trained.run_folder)
    with pytest.raises(InputError, match="no committed attempt, so this run is incomplete"):
        score.score(spark, cfg, trained.output_root)  # through latest
    with pytest.raises(InputError, match=r"no published run for as-of date 2011-12-09"):
        score.score(spark, cfg, trained.output_root, model_as_of=trained.as_of)


@pytest.mark.parametrize("engine", ["spark", "driver"])
def test_sweep_on_a_sample_then_final_fit_on_everyone(
    spark: SparkSession, tmp_path: Path, small_log: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ["model.k_min=3", "model.k_max=4", "model.sweep_max_customers=200", "model.seeds=2"]
    final_fits: list[tuple[int, int]] = []
    original = sweep.fit_best

    def spied(vectors_df, k, model_settings):  # type: ignore[no-untyped-def]
        final_fits.append((vectors_df.count(), k))
        return original(vectors_df, k, model_settings)

    monkeypatch.setattr(sweep, "fit_best", spied)
    result = segment.run(spark, job_config(tmp_path, str(small_log), *settings, f"model.sweep_engine={engine}"))
    assert final_fits == [(result.customers, result.choice.k)]  # the final model is fitted on every customer
    manifest = json.loads((Path(result.run_folder) / "manifest.json").read_text())
    assert manifest["sweep_sample"]["used"] is True
    assert 120 < manifest["sweep_sample"]["customers"] < 280
    assert sum(result.sweep[0].cluster_sizes) == manifest["sweep_sample"]["customers"]
    assert sum(result.segment_sizes.values()) == result.customers > 380  # the final model assigns everyone
