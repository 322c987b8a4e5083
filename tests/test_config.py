"""Configuration: layering, overrides, types and the errors that name the key and the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydantic
import pytest
import yaml

from segmentation import config
from segmentation.config import ConfigError, CustomerTableOptions, InputConfig, JobConfig, PrivacyConfig, load

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
    cfg = JobConfig.model_validate({k: v for k, v in values.items() if k != "__source__"})
    assert cfg == JobConfig()


def test_defaults_as_a_plain_dict_are_base_yaml() -> None:
    assert JobConfig().to_dict() == yaml.safe_load((REPO / "conf/base.yaml").read_text())


def test_local_overlay_layers_on_base(tmp_path: Path) -> None:
    cfg = load([REPO / "conf/demo.yaml"], check_paths=False)
    assert cfg.input.path == "data/generated/transactions.csv.gz"
    assert cfg.output.path == "output/demo"
    assert cfg.spark.master == "local[*]"
    assert dict(cfg.spark.conf) == {}  # the local session's defaults are the code's (session.LOCAL_DEFAULTS)
    assert cfg.input.columns.customer_id == "CustomerID"  # from base.yaml
    assert cfg.model.k_max == 10


def test_the_local_config_names_no_output_so_a_run_without_output_is_refused(log_file: Path) -> None:
    # the demo's output is the demo's: a run of one's own data with conf/local.yaml and no --output stops
    with pytest.raises(ConfigError, match=r"^output\.path: no output given; pass --output PATH"):
        load([REPO / "conf/local.yaml"], input_path=str(log_file))
    with pytest.raises(ConfigError, match=r"input\.path: no input given"):
        load([REPO / "conf/local.yaml"])
    assert load([REPO / "conf/demo.yaml"], check_paths=False).output.path == "output/demo"


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
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.model.k_min = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.spark.conf["spark.sql.shuffle.partitions"] = "1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model:\n  k_mn: 3\n", r"bad\.yaml: model\.k_mn: unknown key"),
        (
            "selection:\n  silhouette_tolerance: 0.01\n",
            r"bad\.yaml: selection\.silhouette_tolerance: no longer a setting: in the combined rule every criterion",
        ),
        ("model:\n  k_min: three\n", r"bad\.yaml: model\.k_min: expected a whole number, got 'three'"),
        ("model:\n  k_min: 1\n", r"bad\.yaml: model\.k_min: expected at least 2"),
        ("model:\n  k_min: 5\n  k_max: 4\n", r"bad\.yaml: model\.k_max: expected at least model\.k_min \(5\)"),
        ("quality:\n  max_quarantine_share: 1.5\n", r"bad\.yaml: quality\.max_quarantine_share"),
        ("features:\n  model_features: [recency, monetary]\n", r"bad\.yaml: features\.model_features\[?.*'recency'"),
        ("features:\n  as_of: yesterday\n", r"bad\.yaml: features\.as_of: expected a date"),
        ("input:\n  kind: orders\n", r"bad\.yaml: input\.kind: expected one of transactions, customers"),
        ("input:\n  csv:\n    multiline: maybe\n", r"bad\.yaml: input\.csv\.multiline: expected true or false"),
        ("- just\n- a list\n", r"bad\.yaml: expected a mapping"),
        ("value:\n  model: gamma\n", r"bad\.yaml: value\.model: expected one of bgnbd, pareto_nbd"),
        ("value:\n  time_unit: month\n", r"bad\.yaml: value\.time_unit: expected one of day, week"),
        ("value:\n  discount_rate: 1.5\n", r"bad\.yaml: value\.discount_rate: expected an annual rate from 0"),
        ("value:\n  horizon_days: 0\n", r"bad\.yaml: value\.horizon_days: expected a horizon of at least 1 day"),
        ("value:\n  holdout_days: 30\n", r"bad\.yaml: value\.holdout_days: a holdout length needs value\.holdout"),
        ("value:\n  holdout: true\n", r"bad\.yaml: value\.holdout: a holdout needs features\.as_of"),
        ("input:\n  exact_copies: drop\n", r"bad\.yaml: input\.exact_copies: expected one of quarantine, keep"),
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


def error_of(tmp_path: Path, log_file: Path, text: str = "", overrides: tuple[str, ...] = ()) -> str:
    """The message of the ConfigError that ``load`` raises for ``text`` (as bad.yaml) and ``overrides``."""
    bad = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load([bad], overrides, input_path=str(log_file), output_path=str(tmp_path / "out"))
    return str(caught.value).removeprefix(f"{bad}: ")


KEY_IN_FILE = (
    "privacy.key: the key is never read from a config file; put it in the environment variable named by "
    "privacy.key_env, or in a Databricks secret (privacy.secret_scope, secret_key)"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # int_type: a bool, a float with a fraction and a text are no whole numbers
        ("model:\n  k_min: true\n", "model.k_min: expected a whole number, got True"),
        ("model:\n  k_min: 2.5\n", "model.k_min: expected a whole number, got 2.5"),
        ("model:\n  k_min: three\n", "model.k_min: expected a whole number, got 'three'"),
        ("model:\n  tol: small\n", "model.tol: expected a number, got 'small'"),
        # bool_type: only YAML's true and false
        ("input:\n  csv:\n    multiline: maybe\n", "input.csv.multiline: expected true or false, got 'maybe'"),
        ("mlflow:\n  enabled: 1\n", "mlflow.enabled: expected true or false, got 1"),
        # string_type, string_too_short
        ("input:\n  columns:\n    country: 5\n", "input.columns.country: expected a non-empty text, got 5"),
        ("input:\n  timestamp_formats: ['']\n", "input.timestamp_formats[0]: expected a non-empty text, got ''"),
        # model_type, dict_type, tuple_type: a list where a mapping is expected, and the other way round
        ("model: [2, 3]\n", "model: expected a mapping, got list"),
        ("spark:\n  conf: [a]\n", "spark.conf: expected a mapping of settings, got ['a']"),
        ("input:\n  timestamp_formats: {a: b}\n", "input.timestamp_formats: expected a list, got {'a': 'b'}"),
        # literal_error
        ("input:\n  kind: orders\n", "input.kind: expected one of transactions, customers, got 'orders'"),
        ("model:\n  init_mode: fast\n", "model.init_mode: expected one of k-means||, random, got 'fast'"),
        # bounds: greater_than_equal, less_than, less_than_equal, too_short, string_too_long, string_pattern_mismatch
        ("model:\n  k_min: 1\n", "model.k_min: expected at least 2 (one segment is no segmentation), got 1"),
        (
            "model:\n  outlier_max_share: 0.5\n",
            "model.outlier_max_share: expected a share from 0 to below 0.5, got 0.5",
        ),
        (
            "quality:\n  max_quarantine_share: 1.5\n",
            "quality.max_quarantine_share: expected a share from 0 to 1, got 1.5",
        ),
        (
            "input:\n  timestamp_formats: []\n",
            "input.timestamp_formats: expected at least one timestamp pattern, got []",
        ),
        ("input:\n  csv:\n    delimiter: ';;'\n", "input.csv.delimiter: expected one character, got ';;'"),
        (
            "features:\n  window_days: 0\n",
            "features.window_days: expected a number of days of at least 1, or null for all history, got 0",
        ),
        (
            "output:\n  run_id: ../nightly\n",
            "output.run_id: expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "got '../nightly'",
        ),
        # date_type
        ("features:\n  as_of: 2011-13-45\n", "features.as_of: expected a date like 2011-12-09, got '2011-13-45'"),
        # extra_forbidden
        (
            "model:\n  k_mn: 3\n",
            "model.k_mn: unknown key; expected one of: customers_per_partition, init_mode, init_steps, k, k_max, "
            "k_min, max_iter, order_by, outlier_fence_iqr, outlier_max_share, seed, seeds, sweep_engine, "
            "sweep_max_customers, sweep_parallelism, tol",
        ),
        ("privacy:\n  key: do-not-echo\n", KEY_IN_FILE),
        # cross-field rules
        ("model:\n  k_min: 5\n  k_max: 4\n", "model.k_max: expected at least model.k_min (5), got 4"),
        (
            "privacy:\n  secret_scope: segmentation\n",
            "privacy.secret_key: set both privacy.secret_scope and privacy.secret_key, or neither",
        ),
        (
            "report:\n  scatter_features: monetary\n",
            "report.scatter_features: expected two feature names or none, got ['monetary']",
        ),
        (
            "features:\n  model_features: [recency]\n",
            "features.model_features: unknown feature 'recency'; expected names from: "
            + ", ".join(config.TRANSACTION_FEATURES),
        ),
        (
            "input:\n  kind: customers\n  customers:\n    numeric_columns: [a, b]\n    categorical_columns: [b]\n",
            "input.customers.categorical_columns: also listed as numeric: ['b']",
        ),
    ],
)
def test_exact_messages(tmp_path: Path, log_file: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, log_file, text) == expected


def test_set_override_errors_name_the_flag_and_the_key(tmp_path: Path, log_file: Path) -> None:
    message = error_of(tmp_path, log_file, overrides=("model.k_min=1",))
    assert message == "--set model.k_min: model.k_min: expected at least 2 (one segment is no segmentation), got 1"
    message = error_of(tmp_path, log_file, overrides=("privacy.key=do-not-echo",))
    assert message == f"--set privacy.key: {KEY_IN_FILE}"


def test_spark_conf_values_become_text(tmp_path: Path, log_file: Path) -> None:
    cfg = load([], ["spark.conf={a: true, b: 3}"], input_path=str(log_file), output_path=str(tmp_path / "o"))
    assert dict(cfg.spark.conf) == {"a": "true", "b": "3"}
    assert cfg.to_dict()["spark"]["conf"] == {"a": "true", "b": "3"}


def test_a_single_name_is_a_one_tuple(tmp_path: Path, log_file: Path) -> None:
    cfg = load([], ["features.model_features=monetary"], input_path=str(log_file), output_path=str(tmp_path / "o"))
    assert cfg.features.model_features == ("monetary",)
    assert cfg.to_dict()["features"]["model_features"] == ["monetary"]


def test_models_built_in_code_check_rules_only_on_the_whole_job() -> None:
    JobConfig()  # the defaults are valid
    partial = InputConfig(kind="customers")  # the customer columns are a rule of the whole job
    with pytest.raises(pydantic.ValidationError, match="a customer table needs at least one feature column"):
        JobConfig(input=partial)
    table = CustomerTableOptions(id_column="id", numeric_columns=("age", "income"), categorical_columns=("gender",))
    cfg = JobConfig(input=InputConfig(kind="customers", customers=table))
    assert cfg.input.customers.numeric_columns == ("age", "income")
    with pytest.raises(pydantic.ValidationError, match=r"privacy\.secret_key"):
        JobConfig(privacy=PrivacyConfig(secret_scope="segmentation"))


def test_holdout_days_on_the_command_line_set_the_value_holdout(tmp_path: Path, log_file: Path) -> None:
    from segmentation import cli

    args = cli.build_parser().parse_args(["run", "--holdout-days", "90", "--set", "features.as_of=2011-12-09"])
    cfg, origin = config.load_with_origins(
        [], cli._overrides(args), input_path=str(log_file), output_path=str(tmp_path / "out"), flags=cli._flags(args)
    )
    assert cfg.value.holdout is True and cfg.value.holdout_days == 90
    assert origin["value.holdout_days"] == "--holdout-days" and origin["features.as_of"] == "--set features.as_of"
    assert JobConfig().value.holdout is False and JobConfig().value.enabled is True  # defaults
