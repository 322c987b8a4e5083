"""The generator without Spark: the single-period log is unchanged, the two-period log has its planted moves."""

from __future__ import annotations

import hashlib

from segmentation import generate


def digest(frame: object) -> str:
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
