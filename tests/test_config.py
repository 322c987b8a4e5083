"""Configuration: layering, overrides, types and the errors that name the key and the file."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from segmentation import config
from segmentation.config import ConfigError, JobConfig, load

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "log.csv"
    path.parent.mkdir()
    path.write_text("InvoiceNo\n1\n")
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_base_yaml_states_exactly_the_code_defaults() -> None:
    values = config.read_yaml(REPO / "conf/base.yaml")
    cfg = config._build(JobConfig, {k: v for k, v in values.items() if k != "__source__"}, "", {})
    assert cfg == JobConfig()


def test_local_overlay_layers_on_base(tmp_path: Path) -> None:
    cfg = load([REPO / "conf/local.yaml"], check_paths=False)
    assert cfg.input.path == "data/generated/transactions.csv.gz"
    assert cfg.output.path == "output"
    assert cfg.spark.master == "local[*]"
    assert cfg.spark.conf["spark.sql.shuffle.partitions"] == "8"
    assert cfg.input.columns.customer_id == "CustomerID"  # from base.yaml
    assert cfg.model.k_max == 10


def test_input_output_and_set_override_files(tmp_path: Path, log_file: Path) -> None:
    cfg = load(
        [REPO / "conf/local.yaml"],
        ["model.k_max=6", "features.as_of=2011-12-01", "input.columns.customer_id=Customer ID", "model.k=null"],
        input_path=str(log_file),
        output_path=str(tmp_path / "out"),
    )
    assert cfg.input.path == str(log_file)
    assert cfg.output.path == str(tmp_path / "out")
    assert cfg.model.k_max == 6
    assert cfg.model.k is None
    assert cfg.features.as_of == dt.date(2011, 12, 1)
    assert cfg.input.columns.customer_id == "Customer ID"


def test_config_is_frozen(tmp_path: Path, log_file: Path) -> None:
    cfg = load([], input_path=str(log_file), output_path=str(tmp_path / "out"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.k_min = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model:\n  k_mn: 3\n", r"bad\.yaml: model\.k_mn: unknown key"),
        ("model:\n  k_min: three\n", r"bad\.yaml: model\.k_min: expected a whole number, got 'three'"),
        ("model:\n  k_min: 1\n", r"bad\.yaml: model\.k_min: expected at least 2"),
        ("model:\n  k_min: 5\n  k_max: 4\n", r"bad\.yaml: model\.k_max: expected at least model\.k_min \(5\)"),
        ("quality:\n  max_quarantine_share: 1.5\n", r"bad\.yaml: quality\.max_quarantine_share"),
        ("features:\n  model_features: [recency, monetary]\n", r"bad\.yaml: features\.model_features\[?.*'recency'"),
        ("features:\n  as_of: yesterday\n", r"bad\.yaml: features\.as_of: expected a date"),
        ("input:\n  kind: orders\n", r"bad\.yaml: input\.kind: expected one of transactions, customers"),
        ("input:\n  csv:\n    multiline: maybe\n", r"bad\.yaml: input\.csv\.multiline: expected true or false"),
        ("- just\n- a list\n", r"bad\.yaml: expected a mapping"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, log_file: Path, text: str, expected: str) -> None:
    bad = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=expected):
        load([bad], input_path=str(log_file), output_path=str(tmp_path / "out"))


def test_set_override_errors_name_the_flag(tmp_path: Path, log_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set model\.k_max: model\.k_max: expected a whole number"):
        load([], ["model.k_max=lots"], input_path=str(log_file), output_path=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        load([], ["model.k_max"], input_path=str(log_file), output_path=str(tmp_path / "o"))


def test_missing_input_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"input\.path: no input given"):
        load([], output_path=str(tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"--input: input\.path: no file or folder matches"):
        load([], input_path=str(tmp_path / "nothing-*.csv"), output_path=str(tmp_path / "out"))


def test_output_inside_input_folder_is_an_error(tmp_path: Path, log_file: Path) -> None:
    folder = str(log_file.parent)
    with pytest.raises(ConfigError, match=r"--output: output\.path: the output .* is inside the input"):
        load([], input_path=folder, output_path=str(log_file.parent / "out"))
    with pytest.raises(ConfigError, match=r"output\.path: the output .* is inside the input"):
        load([], input_path=folder + "/*.csv", output_path=folder + "/segments")
    # beside the input file is fine
    cfg = load([], input_path=str(log_file), output_path=str(tmp_path / "out"))
    assert cfg.output.path == str(tmp_path / "out")


def test_dot_dot_in_paths(tmp_path: Path, log_file: Path) -> None:
    # a local path with '..' is resolved: it works, and cannot sneak the output into the input folder
    cfg = load([], input_path=str(log_file.parent / ".." / "in" / "log.csv"), output_path=str(tmp_path / "o"))
    assert cfg.input.path.endswith("in/../in/log.csv")
    with pytest.raises(ConfigError, match=r"output\.path: the output .* is inside the input"):
        load([], input_path=str(log_file.parent), output_path=str(tmp_path / "o" / ".." / "in" / "out"))
    with pytest.raises(ConfigError, match=r"input\.path: '\.\.' is not allowed in a s3: path"):
        load([], input_path="s3://bucket/logs/../other/*.csv", output_path=str(tmp_path / "o"))


def test_customer_table_needs_feature_columns(tmp_path: Path, log_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"input\.customers\.numeric_columns: a customer table needs"):
        load([], ["input.kind=customers"], input_path=str(log_file), output_path=str(tmp_path / "o"))


def test_base_chain_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        config.read_yaml(tmp_path / "a.yaml")


def test_to_dict_is_json_friendly(tmp_path: Path, log_file: Path) -> None:
    cfg = load([], ["features.as_of=2011-12-09"], input_path=str(log_file), output_path=str(tmp_path / "o"))
    plain = cfg.to_dict()
    assert plain["features"]["as_of"] == "2011-12-09"
    assert plain["model"]["k_max"] == 10
    assert plain["spark"]["conf"] == {}
