"""The generator without Spark: the single-period log is unchanged, the two-period log has its planted moves."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from segmentation.demo import generate


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


def test_the_single_period_log_is_unchanged() -> None:
    # hashes of main's generator before the two-period log was added
    assert digest(generate.generate(customers=60, seed=3)[0]) == (
        "c1dd4f249e2469d27e8b8bd8cdf7589231551ec4876cc9fc32ae60b841272268"
    )
    assert digest(generate.generate(customers=60, seed=3, planted=4)[0]) == (
        "20b1d551493d6a229ede70f0ddaf0bd8070a859f2d7398f713bec76919a1e470"
    )
    assert digest(generate.generate(customers=60, seed=3, dirty=False)[0]) == (
        "12fadb4ff9dcdc3159c1013ee75758396b80b0831f3d1393ec452bd63d1837d6"
    )


@pytest.fixture(scope="module")
def periods() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate.generate_periods(customers=2000, seed=5, dirty=False)


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    lines = generate.write_periods(str(first), customers=200, seed=4, truth_path=str(tmp_path / "truth.csv"))
    assert generate.write_periods(str(second), customers=200, seed=4) == lines
    generate.write_periods(str(other), customers=200, seed=5)
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    with gzip.open(first, "rt") as handle:
        text = handle.read()
    assert text.endswith("\n".join(generate.MALFORMED_LINES) + "\n")
    assert text.count("\n") == lines + 1  # and the header
    truth = pd.read_csv(tmp_path / "truth.csv", dtype=str)
    assert generate.planted_moves(truth)["customers"].sum() == 200


def test_the_as_of_dates_are_the_documented_ones() -> None:
    dates = generate.period_as_of()
    assert dates == (dt.date(2011, 6, 10), dt.date(2011, 12, 9)) == (generate.AS_OF_1, generate.AS_OF_2)
    assert dates[1] == generate.END.date()
    assert generate.period_as_of(91) == (dt.date(2011, 9, 9), dt.date(2011, 12, 9))


def test_the_planted_moves_have_the_documented_shares(periods: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, truth = periods
    moves = generate.planted_moves(truth).set_index(["persona_1", "persona_2"])["customers"]
    documented = {
        ("champions", "champions"): 0.135,
        ("champions", "at_risk"): 0.015,  # 10% of champions lapse
        ("regulars", "regulars"): 0.30,
        ("at_risk", "at_risk"): 0.125,
        ("at_risk", "inactive"): 0.125,
        ("starters", "regulars"): 0.10,
        ("new", "starters"): 0.10,
        ("new", "big_spenders"): 0.10,
    }
    assert set(moves.index) == set(documented)
    for move, share in documented.items():  # rounded to whole customers: within one of the exact share
        assert abs(moves[move] - share * 2000) <= 1, move
    assert moves.sum() == len(truth) == truth["CustomerID"].nunique() == 2000
    champions = moves[("champions", "champions")] + moves[("champions", "at_risk")]
    assert moves[("champions", "at_risk")] == round(0.1 * champions)
    assert set(truth.loc[truth["persona_1"] != "", "persona_1"]) == {"champions", "regulars", "at_risk", "starters"}
    assert "big_spenders" in set(truth["persona_2"])
    assert not ((truth["persona_1"] == "") & (truth["persona_2"] == "")).any()  # nobody is in neither period


def test_every_customer_buys_only_in_its_periods(periods: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    log, truth = periods
    days = pd.to_datetime(log["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.normalize()
    window = pd.Timedelta(days=generate.PERIOD_DAYS)
    first = (days > pd.Timestamp(generate.AS_OF_1) - window) & (days <= pd.Timestamp(generate.AS_OF_1))
    second = (days > pd.Timestamp(generate.AS_OF_2) - window) & (days <= pd.Timestamp(generate.AS_OF_2))
    assert (first ^ second).all()  # every line, cancellations too, in exactly one window
    seen = pd.DataFrame({"CustomerID": log["CustomerID"], "first": first, "second": second})
    seen = seen.groupby("CustomerID")[["first", "second"]].any()
    expected = truth.set_index("CustomerID")[["persona_1", "persona_2"]] != ""
    expected.columns = ["first", "second"]
    pd.testing.assert_frame_equal(seen.sort_index(), expected.sort_index())


def test_invoice_numbers_are_unique_and_follow_time(periods: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    log, _ = periods
    orders = log[~log["InvoiceNo"].str.startswith("C")]
    per_invoice = orders.groupby("InvoiceNo")[["InvoiceDate", "CustomerID"]].nunique()
    assert (per_invoice == 1).all().all()  # one order: one time, one customer
    firsts = orders.drop_duplicates("InvoiceNo")
    ordered = firsts.assign(
        number=firsts["InvoiceNo"].astype(int), ts=pd.to_datetime(firsts["InvoiceDate"], format="%m/%d/%Y %H:%M")
    ).sort_values("number")
    assert ordered["ts"].is_monotonic_increasing
    cancelled = log.loc[log["InvoiceNo"].str.startswith("C"), "InvoiceNo"].str[1:]
    assert cancelled.isin(orders["InvoiceNo"]).all()


def test_the_dirty_log_has_the_clean_one_as_its_lines() -> None:
    clean, _ = generate.generate_periods(customers=150, seed=8, dirty=False)
    dirty, _ = generate.generate_periods(customers=150, seed=8)
    assert len(dirty) > len(clean)
    assert (dirty["CustomerID"] == "").any() and (dirty["InvoiceDate"] == "not a date").any()
    assert list(dirty.columns) == generate.HEADER


def test_planted_moves_reads_missing_personas_as_new_and_inactive() -> None:
    truth = pd.DataFrame(
        {"CustomerID": ["1", "2", "3", "4"], "persona_1": ["a", "a", None, "b"], "persona_2": ["a", "", "c", None]}
    )
    moves = generate.planted_moves(truth)
    assert list(moves.columns) == ["persona_1", "persona_2", "customers"]
    assert set(moves.itertuples(index=False, name=None)) == {
        ("a", "a", 1),
        ("a", "inactive", 1),
        ("new", "c", 1),
        ("b", "inactive", 1),
    }


def test_the_command_writes_the_two_period_log(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from segmentation import cli  # imports pyspark: only here

    out, truth = tmp_path / "log.csv.gz", tmp_path / "truth.csv"
    argv = ["generate", "--periods", "2", "--output", str(out), "--truth", str(truth), "--customers", "120"]
    assert cli.main([*argv, "--seed", "6"]) == cli.EXIT_OK
    printed = capsys.readouterr().out
    assert "over two periods" in printed
    assert "as-of 2011-06-10 and 2011-12-09 with features.window_days=182" in printed
    generate.write_periods(str(tmp_path / "same.csv.gz"), customers=120, seed=6)
    assert out.read_bytes() == (tmp_path / "same.csv.gz").read_bytes()
    assert list(pd.read_csv(truth).columns) == ["CustomerID", "persona_1", "persona_2"]
    assert cli.main([*argv, "--planted", "3"]) == cli.EXIT_USAGE
    assert "--planted: only for a one-period log" in capsys.readouterr().err


def test_the_file_name_picks_plain_or_gzip_csv(tmp_path: Path) -> None:
    plain, packed = tmp_path / "log.csv", tmp_path / "log.csv.gz"
    assert generate.write(str(plain), customers=20, seed=1) == generate.write(str(packed), customers=20, seed=1)
    assert plain.read_bytes().startswith(",".join(generate.HEADER).encode())
    assert packed.read_bytes()[:2] == b"\x1f\x8b" and gzip.decompress(packed.read_bytes()) == plain.read_bytes()
