"""``segmentation config show`` and ``config check``: the effective configuration without Spark, and the same
messages a run gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segmentation import cli
from segmentation.config import load

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "log.csv"
    path.parent.mkdir()
    path.write_text("InvoiceNo\n1\n")
    return path


def test_config_show_says_where_each_value_came_from_and_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("base: " + str(REPO / "conf/local.yaml") + "\nmodel:\n  k_max: 7\n")
    argv = ["config", "show", "--config", str(mine), "--set", "model.seed=3", "--as-of", "2011-12-01"]
    assert cli.main([*argv, "--input", "some.csv", "--output", "out"]) == cli.EXIT_OK
    shown = capsys.readouterr().out
    lines = {line.split(":", 1)[0].strip(): line for line in shown.splitlines()}
    assert lines["k_max"].endswith(f"7  # {mine}")
    assert lines["seed"].endswith("3  # --set model.seed")
    assert lines["as_of"].endswith("'2011-12-01'  # --as-of")
    assert lines["master"].endswith("local[*]  # " + str(REPO / "conf/local.yaml"))
    assert lines["min_shared_customers"].endswith(" # " + str(REPO / "conf/base.yaml"))  # the base of local.yaml
    assert "  path: some.csv  # --input\n" in shown and "  path: out  # --output\n" in shown
    # what it prints is a configuration file: read back, it is the same configuration
    (tmp_path / "shown.yaml").write_text(shown)
    assert yaml.safe_load(shown)["model"]["k_max"] == 7
    expected = load(
        [mine],
        ["model.seed=3", "features.as_of=2011-12-01"],
        input_path="some.csv",
        check_paths=False,
        output_path="out",
    )
    assert load([tmp_path / "shown.yaml"], check_paths=False) == expected


def test_config_check_passes_or_gives_the_runs_own_message(
    tmp_path: Path, log_file: Path, capsys: pytest.CaptureFixture
) -> None:
    ok = ["config", "check", "--input", str(log_file), "--output", str(tmp_path / "out")]
    assert cli.main([*ok, "--as-of", "2011-12-09"]) == cli.EXIT_OK
    assert capsys.readouterr().out.strip() == (
        f"configuration ok: transactions from {log_file}, published to {tmp_path / 'out'}, as of 2011-12-09"
    )
    for bad in (["--set", "model.k_min=1"], ["--as-of", "2011-13-01"], ["--set", "value.modle=bgnbd"]):
        assert cli.main([*ok, *bad]) == cli.EXIT_USAGE
        checked = capsys.readouterr().err
        run = ["run", "--input", str(log_file), "--output", str(tmp_path / "out"), *bad]
        assert cli.main(run) == cli.EXIT_USAGE  # refused before any Spark session
        assert capsys.readouterr().err == checked and checked.startswith("configuration error: ")
    assert cli.main(["config", "check", "--config", str(REPO / "conf/local.yaml"), "--input", str(log_file)]) == 2
    assert "output.path: no output given; pass --output PATH" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
