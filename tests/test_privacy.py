"""Pseudonymised customer ids: no raw id in any output byte, the same pseudonym everywhere, the key kept out of
logs, manifest and query plan, and clear errors when the key is missing."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import re
import sys
import types
from pathlib import Path

import pytest
from pyspark import cloudpickle
from pyspark.sql import SparkSession

from segmentation.config import PrivacyConfig
from segmentation.demo import generate
from segmentation.errors import ConfigError
from segmentation.jobs import segment
from segmentation.publish import privacy

from .conftest import job_config

KEY = "test-key-0123456789-abcdefghij"
RAW_ID = re.compile(rb"Kunde\d+Z")


@pytest.fixture(scope="module")
def text_id_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log whose customer ids are text no hash can contain by chance (``Kunde12347Z``)."""
    folder = tmp_path_factory.mktemp("privacy")
    generated = folder / "generated.csv.gz"
    generate.write(str(generated), customers=100, seed=4)
    lines = gzip.decompress(generated.read_bytes()).decode("utf-8").splitlines(keepends=True)
    # the id is the field before the last (Country); the generator's malformed lines may keep theirs
    renamed = [re.sub(r",(\d+)(?:\.0)?,([^,\n]*)$", r",Kunde\1Z,\2", line) for line in lines]
    path = folder / "log.csv"
    path.write_text("".join(renamed), encoding="utf-8")
    return path


def raw_ids_in_files(root: Path) -> set[bytes]:
    """Every raw customer id found in the bytes of any file under ``root``."""
    return {match for path in root.rglob("*") if path.is_file() for match in RAW_ID.findall(path.read_bytes())}


def run_uncompressed(spark: SparkSession, tmp_path: Path, log: Path, out: str, *overrides: str):
    """A run whose Parquet files are uncompressed, so a raw id in them would be visible as bytes."""
    before = spark.conf.get("spark.sql.parquet.compression.codec")
    spark.conf.set("spark.sql.parquet.compression.codec", "uncompressed")
    try:
        return segment.run(spark, job_config(tmp_path, str(log), "model.k=3", *overrides, output=out))
    finally:
        spark.conf.set("spark.sql.parquet.compression.codec", before)


def test_no_raw_customer_id_in_any_output_byte(
    spark: SparkSession,
    tmp_path: Path,
    text_id_log: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw_ids = set(RAW_ID.findall(text_id_log.read_bytes()))
    assert len(raw_ids) >= 90

    # without pseudonymisation the raw ids are in the output files: the byte scan sees them
    plain = run_uncompressed(spark, tmp_path, text_id_log, str(tmp_path / "plain"))
    assert raw_ids_in_files(tmp_path / "plain") == raw_ids

    monkeypatch.setenv("SEGMENTATION_ID_KEY", KEY)
    caplog.set_level("DEBUG")
    hidden = run_uncompressed(spark, tmp_path, text_id_log, str(tmp_path / "hidden"), "privacy.pseudonymize_ids=true")
    assert raw_ids_in_files(tmp_path / "hidden") == set()
    everything = b"".join(p.read_bytes() for p in (tmp_path / "hidden").rglob("*") if p.is_file())
    assert KEY.encode() not in everything and KEY not in caplog.text

    # the same customers, the same segments, under their pseudonyms
    expected = {hmac.new(KEY.encode(), i, hashlib.sha256).hexdigest(): i.decode() for i in raw_ids}
    pseudonymised = plain_ids(spark, hidden)
    assert set(pseudonymised) <= set(expected) and len(pseudonymised) == hidden.customers
    assert {expected[p]: s for p, s in pseudonymised.items()} == plain_ids(spark, plain)
    features = spark.read.parquet(str(Path(hidden.run_folder) / "features"))
    assert {r["customer_id"] for r in features.collect()} == set(pseudonymised)
    quarantine = spark.read.parquet(str(Path(hidden.run_folder) / "quarantine"))
    assert "raw_line" not in quarantine.columns and "raw_line_hmac" in quarantine.columns
    manifest = json.loads((Path(hidden.run_folder) / "manifest.json").read_text())
    assert manifest["config"]["privacy"]["pseudonymize_ids"] is True


def plain_ids(spark: SparkSession, result: segment.RunResult) -> dict[str, int]:
    """customer id -> segment, as published."""
    segments = spark.read.parquet(str(Path(result.run_folder) / "segments"))
    return {r["customer_id"]: r["segment"] for r in segments.collect()}


def test_the_key_is_out_of_the_plan_text_but_inside_the_shipped_function(
    spark: SparkSession, capsys: pytest.CaptureFixture
) -> None:
    frame = spark.createDataFrame([("Kunde1Z", "x")], "customer_id string, raw_line string")
    protected = privacy.protect(frame, KEY.encode())
    protected.explain(extended=True)
    plan = capsys.readouterr().out
    assert "digest" in plan and "raw_line_hmac" in plan  # the plan's text shows the function, not its key
    assert KEY not in plan
    row = protected.first()
    assert row["customer_id"] == hmac.new(KEY.encode(), b"Kunde1Z", hashlib.sha256).hexdigest()
    # what privacy.py says: the function Spark ships to the executors is pickled with its closure, key included
    shipped = cloudpickle.dumps(privacy.pseudonym(KEY.encode()).func)
    assert KEY.encode() in shipped


def test_a_missing_or_short_key_stops_the_run_naming_the_setting(
    spark: SparkSession, tmp_path: Path, text_id_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENTATION_ID_KEY", raising=False)
    cfg = job_config(tmp_path, str(text_id_log), "model.k=3", "privacy.pseudonymize_ids=true")
    with pytest.raises(ConfigError, match=r"privacy\.key_env: the environment variable SEGMENTATION_ID_KEY"):
        segment.run(spark, cfg)
    assert not (tmp_path / "out" / "runs").exists()
    monkeypatch.setenv("SEGMENTATION_ID_KEY", "short")
    with pytest.raises(ConfigError, match="fewer than 16 characters") as raised:
        segment.run(spark, cfg)
    assert "short" not in str(raised.value).replace("fewer", "")  # the key itself is never echoed
    assert not (tmp_path / "out" / "runs").exists()


def test_the_key_from_a_databricks_secret_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    class Secrets:
        @staticmethod
        def get(scope: str, key: str) -> str:
            asked.append((scope, key))
            return KEY

    runtime = types.ModuleType("databricks.sdk.runtime")
    runtime.dbutils = types.SimpleNamespace(secrets=Secrets())  # type: ignore[attr-defined]
    cfg = PrivacyConfig(pseudonymize_ids=True, secret_scope="segmentation", secret_key="id-key")
    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", runtime)
    assert privacy.load_key(cfg, environ={}) == KEY.encode()
    assert asked == [("segmentation", "id-key")]

    monkeypatch.setitem(sys.modules, "databricks.sdk.runtime", None)  # not on Databricks: import fails
    with pytest.raises(ConfigError, match=r"privacy\.secret_scope: Databricks secrets are not available"):
        privacy.load_key(cfg, environ={})
    assert privacy.load_key(PrivacyConfig(), environ={}) is None  # off: no key needed
