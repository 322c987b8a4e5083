"""Progress while the job runs: stages in order with their times, every fit of the sweep with an estimate."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from segmentation import cli
from segmentation.demo import generate
from segmentation.runtime.progress import SweepProgress

STAGES = ["read_validate", "features", "sweep", "final_model", "profiles", "value", "history", "drift", "write"]
STAGES += ["report", "publish"]


def test_sweep_progress_estimates_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    progress = SweepProgress(4, clock=lambda: now[0])
    caplog.set_level("INFO", logger="segmentation.progress")
    for k, seed in [(2, 42), (2, 43), (3, 42), (3, 43)]:
        progress.fitting(k, seed)
        now[0] += 10.0  # every fit takes 10 s
    assert caplog.messages == [
        "sweep: fitting k=2 seed 42 (fit 1 of 4)",
        "sweep: fitting k=2 seed 43 (fit 2 of 4, about 30 s left)",
        "sweep: fitting k=3 seed 42 (fit 3 of 4, about 20 s left)",
        "sweep: fitting k=3 seed 43 (fit 4 of 4, about 10 s left)",
    ]


@pytest.mark.slow
def test_progress_lines_of_a_small_run(spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = tmp_path / "log.csv.gz"
    generate.write(str(log), customers=80, seed=51)
    argv = ["run", "--input", str(log), "--output", str(tmp_path / "out")]
    argv += ["--set", "model.k_min=2", "--set", "model.k_max=3", "--set", "model.seeds=2"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err  # not a terminal: plain log lines
    started = re.findall(r"stage (\w+): started", err)
    finished = re.findall(r"stage (\w+): [\d.]+ s", err)
    assert started == finished == STAGES
    fits = re.findall(r"sweep: fitting k=(\d) seed (\d+) \(fit (\d) of 4", err)
    assert sorted((k, seed) for k, seed, _ in fits) == [("2", "42"), ("2", "43"), ("3", "42"), ("3", "43")]
    assert [n for _, _, n in fits] == ["1", "2", "3", "4"]  # fits run at once, numbered as they start
    assert "s left)" in err and "\r" not in err

    assert cli.main([*argv, "-q"]) == 0
    assert "stage" not in capsys.readouterr().err  # -q: warnings and errors only


def test_on_a_terminal_progress_rewrites_one_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    handler = cli.LiveStatusHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)

    handler.emit(record("segmentation.stages", "stage sweep: started"))
    handler.emit(record("segmentation.progress", "sweep: fitting k=2 seed 42 (fit 1 of 4)"))
    handler.emit(record("segmentation.stages", "stage sweep: 3.0 s"))
    assert screen.getvalue() == (
        "\r\x1b[Kstage sweep: started\r\x1b[Ksweep: fitting k=2 seed 42 (fit 1 of 4)\r\x1b[KINFO stage sweep: 3.0 s\n"
    )
