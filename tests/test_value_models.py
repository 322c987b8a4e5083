"""The buy-till-you-die models' math (``segmentation.value.models``), without Spark: the published CDNOW fits,
weighted tuples against customers, closed forms computed by hand, edge cases and a planted-truth recovery."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special

from segmentation.errors import RunFailed
from segmentation.value import models
from segmentation.value.models import Fit

# The module takes a ``Tuples`` of (x, t_x, T, weight); these adapters keep the tests' calls on plain columns.


def fit_bgnbd(x, t_x, T, weight=None, *, penalty: float = 0.0) -> Fit:  # type: ignore[no-untyped-def]
    return models.fit_bgnbd(models.Tuples(x, t_x, T, weight), penalty=penalty)


def fit_pareto_nbd(x, t_x, T, weight=None, *, penalty: float = 0.0) -> Fit:  # type: ignore[no-untyped-def]
    return models.fit_pareto_nbd(models.Tuples(x, t_x, T, weight), penalty=penalty)


def p_alive(fit: Fit, x, t_x, T):  # type: ignore[no-untyped-def]
    return models.p_alive(fit, models.Tuples(x, t_x, T))


def expected_purchases(fit: Fit, t, x, t_x, T):  # type: ignore[no-untyped-def]
    return models.expected_purchases(fit, t, models.Tuples(x, t_x, T))


def discounted_value(fit: Fit, gg_fit: Fit, x, t_x, T, m_x, **options):  # type: ignore[no-untyped-def]
    return models.discounted_value(fit, gg_fit, models.Tuples(x, t_x, T), m_x=m_x, **options)


def bgnbd_log_likelihood(params, x, t_x, T):  # type: ignore[no-untyped-def]
    return models.bgnbd_log_likelihood(params, models.Tuples(x, t_x, T))


def pareto_nbd_log_likelihood(params, x, t_x, T):  # type: ignore[no-untyped-def]
    return models.pareto_nbd_log_likelihood(params, models.Tuples(x, t_x, T))


CDNOW = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    """The CDNOW sample's 2,357 customers: x, t_x, T (weeks) and zbar (the mean repeat purchase value)."""
    if not CDNOW.exists():
        pytest.skip(f"the CDNOW summary is not at {CDNOW}")
    table = np.genfromtxt(CDNOW, delimiter=",", names=True)
    return {name: np.asarray(table[name], dtype=float) for name in ("x", "t_x", "T", "zbar")}


@pytest.fixture(scope="module")
def bgnbd(cdnow: dict[str, np.ndarray]) -> Fit:
    return fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def pareto(cdnow: dict[str, np.ndarray]) -> Fit:
    return fit_pareto_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])


@pytest.fixture(scope="module")
def gamma_gamma(cdnow: dict[str, np.ndarray]) -> Fit:
    return models.fit_gamma_gamma(cdnow["x"], cdnow["zbar"])


def _close(fit: Fit, published: dict[str, float], rel: float) -> None:
    for name, value in published.items():
        assert fit.params[name] == pytest.approx(value, rel=rel), name


# --- the published CDNOW figures -----------------------------------------------------------------------------------


def test_bgnbd_reproduces_fader_hardie_lee(bgnbd: Fit) -> None:
    _close(bgnbd, {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}, rel=1e-3)
    assert bgnbd.log_likelihood == pytest.approx(-9582.43, rel=1e-3)
    assert (bgnbd.model, bgnbd.customers, bgnbd.tuples, bgnbd.converged) == ("bgnbd", 2357, 2357, True)


def test_bgnbd_conditional_expectation_with_a_below_one(bgnbd: Fit) -> None:
    assert bgnbd.params["a"] < 1
    value = expected_purchases(bgnbd, 39.0, 2.0, 30.43, 38.86)
    assert float(value) == pytest.approx(1.226, rel=1e-3)


def test_pareto_nbd_reproduces_the_published_fit(pareto: Fit) -> None:
    _close(pareto, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, rel=1e-2)
    assert pareto.log_likelihood == pytest.approx(-9595.0, rel=1e-3)


def test_gamma_gamma_reproduces_the_published_fit(gamma_gamma: Fit) -> None:
    _close(gamma_gamma, {"p": 6.25, "q": 3.74, "v": 15.44}, rel=1e-2)
    assert gamma_gamma.customers == 946


def test_standard_errors_are_finite_and_positive(bgnbd: Fit, pareto: Fit, gamma_gamma: Fit) -> None:
    for fit in (bgnbd, pareto, gamma_gamma):
        errors = np.array(fit.standard_errors)
        assert np.all(np.isfinite(errors)) and np.all(errors > 0), fit.model
    # Fader, Hardie & Lee's BG/NBD standard errors (lifetimes prints the same)
    assert bgnbd.errors["r"] == pytest.approx(0.0128, rel=0.05)
    assert bgnbd.errors["alpha"] == pytest.approx(0.3780, rel=0.05)


# --- weighted tuples --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", [fit_bgnbd, fit_pareto_nbd])
def test_a_fit_on_weighted_tuples_equals_the_fit_on_customers(cdnow: dict[str, np.ndarray], fit: Callable[..., Fit]):
    columns = np.column_stack([cdnow["x"], cdnow["t_x"], cdnow["T"]])
    tuples, counts = np.unique(columns, axis=0, return_counts=True)
    assert len(tuples) < len(columns)
    each = fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    grouped = fit(tuples[:, 0], tuples[:, 1], tuples[:, 2], counts)
    np.testing.assert_allclose(grouped.estimates, each.estimates, rtol=1e-6)
    assert grouped.log_likelihood == pytest.approx(each.log_likelihood, rel=1e-6)
    assert (grouped.customers, grouped.tuples) == (len(columns), len(tuples))


def test_gamma_gamma_on_weighted_pairs_equals_the_fit_on_customers(cdnow: dict[str, np.ndarray], gamma_gamma: Fit):
    pairs, counts = np.unique(np.column_stack([cdnow["x"], cdnow["zbar"]]), axis=0, return_counts=True)
    grouped = models.fit_gamma_gamma(pairs[:, 0], pairs[:, 1], counts)
    np.testing.assert_allclose(grouped.estimates, gamma_gamma.estimates, rtol=1e-6)
    assert grouped.log_likelihood == pytest.approx(gamma_gamma.log_likelihood, rel=1e-6)


# --- closed forms computed by hand ------------------------------------------------------------------------------------

CUSTOMERS = [(0.0, 0.0, 38.86), (2.0, 30.43, 38.86), (7.0, 20.0, 33.0)]


@pytest.mark.parametrize(("x", "t_x", "T"), CUSTOMERS)
def test_bgnbd_p_alive_and_expectation_by_hand(bgnbd: Fit, x: float, t_x: float, T: float) -> None:
    r, alpha, a, b = bgnbd.estimates
    odds = (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    alive = 1 / (1 + odds)
    t = 26.0
    tail = ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    expected = (a + b + x - 1) / (a - 1) * (1 - tail) * alive
    assert float(p_alive(bgnbd, x, t_x, T)) == pytest.approx(alive, rel=1e-12)
    assert float(expected_purchases(bgnbd, t, x, t_x, T)) == pytest.approx(expected, rel=1e-10)
    if x == 0:
        assert float(p_alive(bgnbd, x, t_x, T)) == 1.0


def test_bgnbd_expectation_for_a_new_customer(bgnbd: Fit) -> None:
    r, alpha, a, b = bgnbd.estimates
    t = 52.0
    tail = (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    by_hand = (a + b - 1) / (a - 1) * (1 - tail)
    assert float(models.expected_purchases_new(bgnbd, t)) == pytest.approx(by_hand, rel=1e-10)


def test_pareto_nbd_expectation_for_a_new_customer(pareto: Fit) -> None:
    r, alpha, s, beta = pareto.estimates
    t = 52.0
    by_hand = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    assert float(models.expected_purchases_new(pareto, t)) == pytest.approx(by_hand, rel=1e-12)


def _pareto_a0_by_quadrature(params: tuple[float, ...], x: float, t_x: float, T: float) -> float:
    """A0 = (r+s+x) ∫_{t_x}^{T} (alpha+τ)^-(r+x) (beta+τ)^-(s+1) dτ: the likelihood's death term, without 2F1."""
    r, alpha, s, beta = params
    value, _ = integrate.quad(lambda tau: (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1), t_x, T)
    return (r + s + x) * value


@pytest.mark.parametrize(("x", "t_x", "T"), CUSTOMERS)
def test_pareto_nbd_p_alive_and_expectation_by_hand(pareto: Fit, x: float, t_x: float, T: float) -> None:
    r, alpha, s, beta = pareto.estimates
    a0 = _pareto_a0_by_quadrature(pareto.estimates, x, t_x, T)
    alive = 1 / (1 + s / (r + s + x) * (alpha + T) ** (r + x) * (beta + T) ** s * a0)
    t = 26.0
    grow = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    assert float(p_alive(pareto, x, t_x, T)) == pytest.approx(alive, rel=1e-8)
    assert float(expected_purchases(pareto, t, x, t_x, T)) == pytest.approx(grow * alive, rel=1e-8)


@pytest.mark.parametrize("params", [(0.55, 10.6, 0.61, 11.7), (0.8, 15.0, 1.3, 4.0), (2.0, 3.0, 0.4, 3.0)])
def test_pareto_nbd_likelihood_on_both_sides_of_alpha_equal_beta(params: tuple[float, ...]) -> None:
    r, alpha, s, beta = params
    for x, t_x, T in CUSTOMERS:
        head = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
        alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
        dead = s / (r + s + x) * _pareto_a0_by_quadrature(params, x, t_x, T)
        by_hand = head + math.log(alive + dead)
        assert float(pareto_nbd_log_likelihood(params, x, t_x, T)) == pytest.approx(by_hand, rel=1e-9)


def test_gamma_gamma_expected_spend_by_hand(gamma_gamma: Fit) -> None:
    p, q, v = gamma_gamma.estimates
    population = p * v / (q - 1)
    x, m_x = np.array([3.0, 0.0, 2.0]), np.array([40.0, 0.0, -5.0])
    spend = models.expected_spend(gamma_gamma, x, m_x)
    own = (q - 1) / (p * 3 + q - 1) * population + p * 3 / (p * 3 + q - 1) * 40.0
    np.testing.assert_allclose(spend, [own, population, population], rtol=1e-12)
    assert models.mean_spend(gamma_gamma) == pytest.approx(population)


def test_discounted_value_telescopes_without_discount_and_shrinks_with_it(bgnbd: Fit, gamma_gamma: Fit) -> None:
    x, t_x, T, m_x = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86]), np.array([22.35, 0.0])
    spend = models.expected_spend(gamma_gamma, x, m_x)
    flat = discounted_value(bgnbd, gamma_gamma, x, t_x, T, m_x, horizon=52, discount_rate_per_period=0, steps=13)
    np.testing.assert_allclose(flat, expected_purchases(bgnbd, 52.0, x, t_x, T) * spend, rtol=1e-12)
    weekly = models.per_period_rate(0.10, 7 / 365.25)
    assert (1 + weekly) ** (365.25 / 7) == pytest.approx(1.10)
    discounted = discounted_value(
        bgnbd, gamma_gamma, x, t_x, T, m_x, horizon=52, discount_rate_per_period=weekly, steps=13
    )
    assert np.all(discounted < flat) and np.all(discounted > flat / 1.11)


# --- numerically delicate corners -------------------------------------------------------------------------------------


def test_expectations_stay_finite_and_increasing_far_out(cdnow: dict[str, np.ndarray], bgnbd: Fit, pareto: Fit):
    # at t = 1e15 weeks z = t / (alpha + T + t) is 1 - 4e-14 and scipy's hyp2f1 returns inf for x = 0: Euler's
    # transformation takes over
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    for fit in (bgnbd, pareto):
        values = [expected_purchases(fit, t, x, t_x, T) for t in (39.0, 1e4, 1e9, 1e15)]
        assert all(np.all(np.isfinite(v)) for v in values), fit.model
        assert all(np.all(later > earlier) for earlier, later in itertools.pairwise(values)), fit.model


def test_the_hypergeometric_fallbacks() -> None:
    a, b, c = np.array([0.5, 29.2]), np.array([2.4, 31.4]), np.array([2.2, 32.2])
    z = np.array([0.9, 0.99])
    np.testing.assert_allclose(models._log_hyp2f1_series(a, b, c, z), np.log(special.hyp2f1(a, b, c, z)), rtol=1e-12)
    assert np.isnan(models._log_hyp2f1_series(a, b, c, np.full(2, 1 - 1e-7))).all()  # too slow to sum: NaN
    # BG/NBD's E[X(t)] at x = 0 and t = 1e15 weeks on CDNOW: scipy returns inf, Euler's transformation does not
    r, b, c, near_one = 0.2426, 2.4259, 2.2188, 1 - 4e-14
    assert not np.isfinite(special.hyp2f1(r, b, c, near_one))
    euler = (c - r - b) * math.log1p(-near_one) + math.log(special.hyp2f1(c - r, c - b, c, near_one))
    assert float(models._log_hyp2f1(r, b, c, near_one)) == pytest.approx(euler, rel=1e-12)


def test_bgnbd_expectation_is_continuous_through_a_equal_one(bgnbd: Fit) -> None:
    r, alpha, _, b = bgnbd.estimates
    x, t_x, T = np.array([0.0, 2.0, 29.0]), np.array([0.0, 30.43, 38.0]), np.full(3, 38.86)

    def at(a: float) -> np.ndarray:
        fit = Fit("bgnbd", models.NAMES["bgnbd"], (r, alpha, a, b), (0.0,) * 4, 0.0, 1.0, 1, True, 0)
        return expected_purchases(fit, 39.0, x, t_x, T)

    np.testing.assert_allclose(at(1.0), (at(1 - 1e-3) + at(1 + 1e-3)) / 2, rtol=1e-5)
    assert np.all(np.isfinite(at(1.0)))


# --- refusals and the penalty -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fit", "name"), [(fit_bgnbd, "bgnbd"), (fit_pareto_nbd, "pareto_nbd")])
def test_no_repeat_purchase_at_all_is_refused(fit: Callable[..., Fit], name: str) -> None:
    with pytest.raises(RunFailed, match=rf"value model {name}: every customer made one purchase only \(x = 0\)"):
        fit([0, 0, 0], [0.0, 0.0, 0.0], [10.0, 20.0, 30.0])


@pytest.mark.parametrize(("fit", "name"), [(fit_bgnbd, "bgnbd"), (fit_pareto_nbd, "pareto_nbd")])
def test_data_that_cannot_identify_the_model_is_refused(fit: Callable[..., Fit], name: str) -> None:
    with pytest.raises(RunFailed, match=rf"value model {name}: (the fit did not converge|.*cannot identify it)"):
        fit([1, 1, 1], [10.0, 20.0, 30.0], [10.0, 20.0, 30.0])


def test_gamma_gamma_without_a_qualifying_customer_is_refused() -> None:
    with pytest.raises(RunFailed, match="value model gamma_gamma: no customer"):
        models.fit_gamma_gamma([0, 2, 3], [10.0, 0.0, -4.0])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (([1, 0], [2.0, 0.0], [5.0, 5.0, 5.0], None), "same length"),
        (([1, 0], [2.0, 0.0], [5.0, 5.0], [1.0]), "same length"),
        (([1, 0], [6.0, 0.0], [5.0, 5.0], None), "t_x must not exceed T"),
        (([1, -1], [2.0, 0.0], [5.0, 5.0], None), "x must be finite and non-negative"),
        (([1, 0], [2.0, 0.0], [5.0, 5.0], [1.0, 0.0]), "weight must be positive"),
    ],
)
def test_bad_inputs_are_value_errors(columns: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(*columns)


def test_gamma_gamma_bad_inputs_and_scoring_the_wrong_model_are_value_errors(gamma_gamma: Fit, bgnbd: Fit) -> None:
    with pytest.raises(ValueError, match="same length"):
        models.fit_gamma_gamma([1, 2], [3.0])
    with pytest.raises(ValueError, match="needs a bgnbd or pareto_nbd fit"):
        p_alive(gamma_gamma, [1.0], [2.0], [3.0])
    with pytest.raises(ValueError, match="needs a gamma_gamma fit"):
        models.expected_spend(bgnbd, [1.0], [2.0])


def test_the_penalty_shrinks_estimates_and_reports_the_unpenalised_likelihood(cdnow, bgnbd: Fit) -> None:
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    shrunk = fit_bgnbd(x, t_x, T, penalty=0.01)
    assert all(after < before for after, before in zip(shrunk.estimates, bgnbd.estimates, strict=True))
    unpenalised = float(bgnbd_log_likelihood(shrunk.estimates, x, t_x, T).sum())
    assert shrunk.log_likelihood == pytest.approx(unpenalised, rel=1e-12)
    assert shrunk.log_likelihood < bgnbd.log_likelihood
    assert shrunk.penalty == 0.01


# --- planted truth ----------------------------------------------------------------------------------------------------


def _simulate_bgnbd(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float):
    """BG/NBD customers: Poisson purchases at rate λ ~ Gamma(r, 1/alpha) over (0, T]; after each repeat purchase
    the customer dies with probability p ~ Beta(a, b). The x-th of k arrivals in (0, T] is T · Beta(x, k - x + 1)."""
    rate, death = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(26.0, 52.0, n)
    arrivals = rng.poisson(rate * T)
    x = np.minimum(arrivals, rng.geometric(death))  # the geometric counts purchases up to the fatal one
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    return x.astype(float), t_x, T


def test_bgnbd_recovers_planted_parameters() -> None:
    truth = {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.5}
    x, t_x, T = _simulate_bgnbd(np.random.default_rng(20240605), 5000, *truth.values())
    fit = fit_bgnbd(x, t_x, T)
    for name, value in truth.items():
        # within 4 standard errors (which shrink as 1/sqrt(n)), and loosely within 50% whatever the seed
        assert abs(fit.params[name] - value) < 4 * fit.errors[name], (name, fit.params[name], fit.errors[name])
        assert fit.params[name] == pytest.approx(value, rel=0.5), name
