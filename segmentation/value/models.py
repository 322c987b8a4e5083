"""Buy-till-you-die models without Spark: BG/NBD, Pareto/NBD and Gamma-Gamma fitted by weighted maximum likelihood
on summary tuples, their conditional expectations (P(alive), E[X(t)], E[M]) and a discounted customer value.

Inputs are numpy arrays per summary tuple: ``x`` repeat purchases (purchase periods after the first), ``t_x`` the
time from the first to the last purchase, ``T`` the time from the first purchase to the end of calibration, and
``weight`` how many customers share the tuple. The log-likelihood is the weighted sum over tuples, so a fit on
tuples equals the fit on customers. Parameters are positive; the optimiser minimises the negative log-likelihood
per customer plus ``penalty`` · Σ θ² (squared parameters, as lifetimes' penalizer) over their logarithms: L-BFGS-B,
then Newton steps to a zero gradient (a Nelder-Mead polish first when Newton cannot finish from there). Standard
errors come from a central-difference Hessian of that (total) objective in log space, mapped to the parameters by
the delta method: se(θ) = θ · se(ln θ).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

from segmentation.errors import RunFailed

Array = NDArray[np.float64]
Loglik = Callable[[Array], Array]

BGNBD = "bgnbd"
PARETO_NBD = "pareto_nbd"
GAMMA_GAMMA = "gamma_gamma"
NAMES: dict[str, tuple[str, ...]] = {
    BGNBD: ("r", "alpha", "a", "b"),
    PARETO_NBD: ("r", "alpha", "s", "beta"),
    GAMMA_GAMMA: ("p", "q", "v"),
}
LOG_BOUND = 25.0  # log-parameters are searched in [-25, 25]; an optimum on that bound is not identified
HESSIAN_STEP = 1e-4  # central differences in log space: about eps ** (1/4)
GRADIENT_STEP = 1e-5  # and about eps ** (1/3) for the gradient of the Newton polish
GRADIENT_TOLERANCE = 1e-7  # the objective is per customer: a gradient below this (in log space) is an optimum
A_NEAR_ONE = 1e-4  # BG/NBD E[X(t)] divides by a - 1: within this of 1 it averages a = 1 ± A_NEAR_ONE
FAILED = 1e10  # the objective where the likelihood is not finite, so the optimiser backs away


@dataclass(frozen=True)
class Tuples:
    """Summary tuples: ``x``, ``t_x`` and ``T`` (arrays of one length) and ``weight``, how many customers share
    each tuple (ones when None)."""

    x: ArrayLike
    t_x: ArrayLike
    T: ArrayLike
    weight: ArrayLike | None = None

    def arrays(self) -> tuple[Array, Array, Array]:
        """``x``, ``t_x`` and ``T`` as float arrays."""
        return (
            np.asarray(self.x, dtype=float),
            np.asarray(self.t_x, dtype=float),
            np.asarray(self.T, dtype=float),
        )


@dataclass(frozen=True)
class Fit:
    """A fitted model: estimates with standard errors, the unpenalised weighted log-likelihood and how it went."""

    model: str
    names: tuple[str, ...]
    estimates: tuple[float, ...]
    standard_errors: tuple[float, ...]
    log_likelihood: float
    customers: float  # the sum of the weights
    tuples: int
    converged: bool
    iterations: int
    penalty: float = 0.0

    @property
    def params(self) -> dict[str, float]:
        """The estimates by parameter name."""
        return dict(zip(self.names, self.estimates, strict=True))

    @property
    def errors(self) -> dict[str, float]:
        """The standard errors by parameter name."""
        return dict(zip(self.names, self.standard_errors, strict=True))


@dataclass(frozen=True)
class _Levels:
    """The distinct values of ``x`` and where each tuple's ``x`` is among them: a term that depends on ``x`` alone
    (``gammaln(r + x)``, ``betaln(a, b + x)``) is computed once per distinct ``x`` (a few hundred at most) rather
    than once per tuple, to the same doubles."""

    values: Array
    index: NDArray[np.intp]

    @classmethod
    def of(cls, x: Array) -> _Levels:
        values, index = np.unique(x, return_inverse=True)
        return cls(values, index)

    def map(self, term: Callable[[Array], Array]) -> Array:
        """``term`` of every tuple's ``x``."""
        return np.asarray(term(self.values), dtype=float)[self.index]


def _log_hyp2f1(a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike) -> Array:
    """ln 2F1(a, b; c; z) for a, b, c > 0 and 0 <= z < 1 (a series of positive terms).

    scipy first; where it is not finite, Euler's transformation 2F1 = (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z); where
    that is not finite either, the series itself summed in log space.
    """
    a_, b_, c_, z_ = (np.array(v, dtype=float) for v in np.broadcast_arrays(a, b, c, z))
    with np.errstate(all="ignore"):
        out = np.array(np.log(special.hyp2f1(a_, b_, c_, z_)), dtype=float)
        bad = ~np.isfinite(out)
        if bad.any():
            ab, bb, cb, zb = a_[bad], b_[bad], c_[bad], z_[bad]
            out[bad] = (cb - ab - bb) * np.log1p(-zb) + np.log(special.hyp2f1(cb - ab, cb - bb, cb, zb))
            bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = _log_hyp2f1_series(a_[bad], b_[bad], c_[bad], z_[bad])
    return np.asarray(out, dtype=float)


def _log_hyp2f1_series(a: Array, b: Array, c: Array, z: Array, chunk: int = 1000, most: int = 20_000) -> Array:
    """ln Σ (a)_n (b)_n / ((c)_n n!) z^n in log space, until the last term is e^-40 of the sum; NaN where that
    takes more than ``most`` terms (z^n alone needs 40 / -ln z), so the optimiser backs away instead of waiting."""
    total, last = np.zeros(a.shape), np.zeros(a.shape)  # the n = 0 term is 1
    hopeful = -np.log(z) * most > 40.0  # the others stay NaN
    a, b, c, log_z = a[hopeful, None], b[hopeful, None], c[hopeful, None], np.log(z)[hopeful, None]
    for start in range(0, most, chunk):
        k = start + np.arange(chunk, dtype=float)[None, :]
        ratio = np.log(a + k) + np.log(b + k) - np.log(c + k) - np.log1p(k) + log_z  # ln(term k+1 / term k)
        terms = last[hopeful, None] + np.cumsum(ratio, axis=1)
        total[hopeful] = np.logaddexp(total[hopeful], special.logsumexp(terms, axis=1))
        last[hopeful] = terms[:, -1]
        if np.all(last[hopeful] < total[hopeful] - 40.0):
            break
    return np.where(hopeful & (last < total - 40.0), total, np.nan)


def bgnbd_log_likelihood(params: ArrayLike, tuples: Tuples) -> Array:
    """BG/NBD (Fader, Hardie & Lee 2005) log-likelihood of each tuple; params are (r, alpha, a, b)."""
    return _bgnbd_log_likelihood(params, *tuples.arrays())


def _bgnbd_log_likelihood(params: ArrayLike, x: Array, t_x: Array, T: Array, levels: _Levels | None = None) -> Array:
    r, alpha, a, b = np.asarray(params, dtype=float)
    by_x = levels or _Levels.of(x)
    repeat = x > 0
    common = by_x.map(lambda u: special.gammaln(r + u)) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    alive = by_x.map(lambda u: special.betaln(a, b + u)) - (r + x) * np.log(alpha + T)
    # u = 0 is scored as 1 so that b + u - 1 > 0 where the term is masked out
    dead_beta = by_x.map(lambda u: special.betaln(a + 1, b + np.where(u > 0, u, 1.0) - 1))
    dead = np.where(repeat, dead_beta - (r + x) * np.log(alpha + t_x), -np.inf)
    return np.asarray(common + np.logaddexp(alive, dead), dtype=float)


def _pareto_terms(
    params: ArrayLike, x: Array, t_x: Array, T: Array, levels: _Levels | None = None
) -> tuple[Array, Array, Array]:
    """Pareto/NBD log-likelihood in three parts: the common factor, alive at T, and died in (t_x, T]."""
    r, alpha, s, beta = np.asarray(params, dtype=float)
    by_x = levels or _Levels.of(x)
    common = by_x.map(lambda u: special.gammaln(r + u)) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    big, second = (alpha, s + 1) if alpha >= beta else (beta, r + x)  # Fader & Hardie's case split
    gap, rsx = abs(alpha - beta), r + s + x
    at_tx = _log_hyp2f1(rsx, second, rsx + 1, gap / (big + t_x)) - rsx * np.log(big + t_x)
    at_T = _log_hyp2f1(rsx, second, rsx + 1, gap / (big + T)) - rsx * np.log(big + T)
    with np.errstate(divide="ignore", invalid="ignore"):  # A0 = 0 where t_x = T
        log_a0 = at_tx + np.log(-np.expm1(np.minimum(at_T - at_tx, 0.0)))
    dead = np.log(s) - np.log(rsx) + log_a0
    return common, alive, dead


def pareto_nbd_log_likelihood(params: ArrayLike, tuples: Tuples) -> Array:
    """Pareto/NBD (Schmittlein et al. 1987; Fader & Hardie's note) log-likelihood per tuple; (r, alpha, s, beta)."""
    common, alive, dead = _pareto_terms(params, *tuples.arrays())
    return np.asarray(common + np.logaddexp(alive, dead), dtype=float)


def gamma_gamma_log_likelihood(
    params: ArrayLike, x: ArrayLike, m_x: ArrayLike, *, levels: _Levels | None = None
) -> Array:
    """Gamma-Gamma (Colombo & Jiang 1999) log-likelihood of mean repeat value m_x over x > 0; params (p, q, v)."""
    p, q, v = np.asarray(params, dtype=float)
    x, m_x = np.asarray(x, dtype=float), np.asarray(m_x, dtype=float)
    by_x = levels or _Levels.of(x)
    px = p * x
    head = by_x.map(lambda u: special.gammaln(p * u + q) - special.gammaln(p * u) + p * u * np.log(u))
    head = head - special.gammaln(q) + q * np.log(v)
    return np.asarray(head + (px - 1) * np.log(m_x) - (px + q) * np.log(x * m_x + v), dtype=float)


def _column(values: ArrayLike, name: str, *, signed: bool = False) -> Array:
    """One finite 1-d float array, non-negative unless ``signed``, or ValueError naming it."""
    out = np.asarray(values, dtype=float)
    if out.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array, got {out.ndim} dimensions")
    if not np.all(np.isfinite(out)) or (not signed and np.any(out < 0)):
        raise ValueError(f"{name} must be finite" + ("" if signed else " and non-negative"))
    return out


def _columns(named: dict[str, ArrayLike], weight: ArrayLike | None) -> tuple[Array, ...]:
    """The arrays of ``named`` (``m_x`` may be negative) then the weights (ones by default), all of one length."""
    arrays = [_column(v, k, signed=k == "m_x") for k, v in named.items()]
    w = np.ones(arrays[0].shape) if weight is None else _column(weight, "weight")
    lengths = {len(a) for a in [*arrays, w]}
    if len(lengths) != 1:
        raise ValueError(f"{', '.join(named)} and weight must have the same length, got lengths {sorted(lengths)}")
    if not len(w):
        raise ValueError("there are no customers to fit")
    if np.any(w <= 0):
        raise ValueError("weight must be positive")
    return (*arrays, w)


def _summary(model: str, tuples: Tuples) -> tuple[Array, ...]:
    """Validated (x, t_x, T, weight) for a purchase model, refusing data without any repeat purchase."""
    xs, txs, Ts, w = _columns({"x": tuples.x, "t_x": tuples.t_x, "T": tuples.T}, tuples.weight)
    if np.any(txs > Ts):
        raise ValueError("t_x must not exceed T")
    if not np.any(xs > 0):
        raise RunFailed(
            f"value model {model}: every customer made one purchase only (x = 0): repeat purchases cannot be modelled"
        )
    return xs, txs, Ts, w


def _hessian(f: Callable[[Array], float], phi: Array, h: float = HESSIAN_STEP) -> Array:
    """The Hessian of f at phi by central differences with step h."""
    k = len(phi)
    steps = np.eye(k) * h
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = steps[i], steps[j]
            value = f(phi + ei + ej) - f(phi + ei - ej) - f(phi - ei + ej) + f(phi - ei - ej)
            hess[i, j] = hess[j, i] = value / (4 * h * h)
    return hess


def _gradient(f: Callable[[Array], float], phi: Array) -> Array:
    """The gradient of f at phi by central differences."""
    return np.array([(f(phi + e) - f(phi - e)) / (2 * GRADIENT_STEP) for e in np.eye(len(phi)) * GRADIENT_STEP])


def _newton(f: Callable[[Array], float], phi: Array, rounds: int = 6) -> tuple[Array, bool]:
    """Newton steps with central differences from phi, and whether they reached a point where the gradient is
    below ``GRADIENT_TOLERANCE`` (near an optimum Newton gains digits in a step or two; far from one it stops)."""
    for _ in range(rounds):
        gradient = _gradient(f, phi)
        if np.all(np.abs(gradient) < GRADIENT_TOLERANCE):
            return phi, True
        try:
            step = np.linalg.solve(_hessian(f, phi), gradient)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.abs(step) < 0.1) or f(phi - step) > f(phi) + 1e-13:
            break
        phi = phi - step
    return phi, bool(np.all(np.abs(_gradient(f, phi)) < GRADIENT_TOLERANCE))


def _fit(model: str, loglik: Loglik, weight: Array, start: ArrayLike, penalty: float) -> Fit:
    """Maximise the weighted log-likelihood in log-parameter space; RunFailed if it does not converge or identify."""
    if penalty < 0:
        raise ValueError(f"penalty must be non-negative, got {penalty}")
    total = float(weight.sum())

    def objective(phi: Array) -> float:  # per customer, so tolerances do not depend on the number of customers
        theta = np.exp(phi)
        with np.errstate(all="ignore"):
            value = -float(weight @ loglik(theta)) / total + penalty * float(theta @ theta)
        return value if np.isfinite(value) else FAILED

    phi0 = np.log(np.asarray(start, dtype=float))
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(phi0)
    first = optimize.minimize(objective, phi0, method="L-BFGS-B", bounds=bounds)
    phi, converged = _newton(objective, first.x)
    iterations = int(first.nit)
    if not converged:  # Newton could not finish from there: a Nelder-Mead polish, then Newton again
        simplex = first.x + np.vstack([np.zeros(len(phi0)), 1e-3 * np.eye(len(phi0))])
        options = {"xatol": 1e-9, "fatol": 1e-13, "maxiter": 2000, "initial_simplex": simplex}
        polish = optimize.minimize(objective, first.x, method="Nelder-Mead", bounds=bounds, options=options)
        if not polish.success or objective(polish.x) >= FAILED:
            raise RunFailed(f"value model {model}: the fit did not converge ({polish.message})")
        phi, _ = _newton(objective, polish.x)
        iterations += int(polish.nit)
    if np.any(np.abs(phi) >= LOG_BOUND - 1e-3):
        raise RunFailed(f"value model {model}: an estimate ran to the edge of the search: the data cannot identify it")
    hess = _hessian(objective, phi) * total
    try:
        root = np.linalg.inv(np.linalg.cholesky(hess))  # H = L L^T, so diag(H^-1) = column sums of (L^-1)^2
    except np.linalg.LinAlgError as exc:
        message = f"value model {model}: the likelihood is flat at the optimum: the data cannot identify it"
        raise RunFailed(message) from exc
    theta = np.exp(phi)
    return Fit(
        model=model,
        names=NAMES[model],
        estimates=tuple(float(v) for v in theta),
        standard_errors=tuple(float(v) for v in theta * np.sqrt(np.sum(root * root, axis=0))),
        log_likelihood=float(weight @ loglik(theta)),
        customers=total,
        tuples=len(weight),
        converged=True,
        iterations=iterations,
        penalty=penalty,
    )


def _start(x: Array, T: Array, w: Array) -> tuple[float, float]:
    """A start for (r = 1, alpha): alpha = r / (the mean repeat-purchase rate)."""
    rate = float(w @ x) / float(w @ np.maximum(T, 1e-9))
    return 1.0, 1.0 / max(rate, 1e-6)


def fit_bgnbd(tuples: Tuples, *, penalty: float = 0.0) -> Fit:
    """Fit BG/NBD (r, alpha, a, b) to weighted (x, t_x, T) tuples; penalty · Σ θ² is added per customer."""
    xs, txs, Ts, w = _summary(BGNBD, tuples)
    r, alpha = _start(xs, Ts, w)
    by_x = _Levels.of(xs)
    start = (r, alpha, 1.0, 1.0)
    return _fit(BGNBD, lambda theta: _bgnbd_log_likelihood(theta, xs, txs, Ts, by_x), w, start, penalty)


def fit_pareto_nbd(tuples: Tuples, *, penalty: float = 0.0) -> Fit:
    """Fit Pareto/NBD (r, alpha, s, beta) to weighted (x, t_x, T) tuples; penalty · Σ θ² is added per customer."""
    xs, txs, Ts, w = _summary(PARETO_NBD, tuples)
    r, alpha = _start(xs, Ts, w)
    start = (r, alpha, 1.0, float(w @ Ts) / float(w.sum()))
    by_x = _Levels.of(xs)

    def loglik(theta: Array) -> Array:
        common, alive, dead = _pareto_terms(theta, xs, txs, Ts, by_x)
        return np.asarray(common + np.logaddexp(alive, dead), dtype=float)

    return _fit(PARETO_NBD, loglik, w, start, penalty)


def fit_gamma_gamma(x: ArrayLike, m_x: ArrayLike, weight: ArrayLike | None = None, *, penalty: float = 0.0) -> Fit:
    """Fit Gamma-Gamma (p, q, v) to the customers with x > 0 and m_x > 0; the others are left out."""
    xs, ms, w = _columns({"x": x, "m_x": m_x}, weight)
    keep = (xs > 0) & (ms > 0)
    if not keep.any():
        raise RunFailed(
            f"value model {GAMMA_GAMMA}: no customer has a repeat purchase with a positive mean value "
            "(x > 0 and m_x > 0): spend cannot be modelled"
        )
    xs, ms, w = xs[keep], ms[keep], w[keep]
    start = (1.0, 2.0, float(w @ ms) / float(w.sum()))  # the population mean p v / (q - 1) starts at the data's
    by_x = _Levels.of(xs)
    return _fit(GAMMA_GAMMA, lambda theta: gamma_gamma_log_likelihood(theta, xs, ms, levels=by_x), w, start, penalty)


def _arrays(*values: ArrayLike) -> tuple[Array, ...]:
    return tuple(np.asarray(v, dtype=float) for v in values)


def p_alive(fit: Fit, tuples: Tuples) -> Array:
    """P(alive at T | x, t_x, T) under a BG/NBD or Pareto/NBD fit (1 for x = 0 under BG/NBD)."""
    return _p_alive(fit, *tuples.arrays())


def _p_alive(fit: Fit, xs: Array, txs: Array, Ts: Array) -> Array:
    if fit.model == BGNBD:
        r, alpha, a, b = fit.estimates
        x1 = np.where(xs > 0, xs, 1.0)
        odds = np.log(a) - np.log(b + x1 - 1) + (r + xs) * (np.log(alpha + Ts) - np.log(alpha + txs))
        return np.asarray(np.where(xs > 0, special.expit(-odds), 1.0), dtype=float)
    if fit.model == PARETO_NBD:
        _, alive, dead = _pareto_terms(fit.estimates, xs, txs, Ts)
        return np.asarray(special.expit(alive - dead), dtype=float)
    raise ValueError(f"p_alive needs a {BGNBD} or {PARETO_NBD} fit, got {fit.model}")


def _bgnbd_expected(params: tuple[float, ...], t: Array, x: Array, T: Array) -> Array:
    """E[X(t)] given alive at T, BG/NBD; for a < 1 the same expression holds, and near a = 1 it is averaged."""
    r, alpha, a, b = params
    if abs(a - 1) >= A_NEAR_ONE:
        return _bgnbd_alive_expected(r, alpha, a, b, t, x, T)
    below, above = (_bgnbd_alive_expected(r, alpha, 1 + side * A_NEAR_ONE, b, t, x, T) for side in (-1, 1))
    return (below + above) / 2


def _bgnbd_alive_expected(r: float, alpha: float, a: float, b: float, t: Array, x: Array, T: Array) -> Array:
    """((a+b+x-1)/(a-1)) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))], a != 1."""
    z = t / (alpha + T + t)
    log_tail = (r + x) * np.log1p(-z) + _log_hyp2f1(r + x, b + x, a + b + x - 1, z)
    return np.asarray((a + b + x - 1) / (a - 1) * -np.expm1(log_tail), dtype=float)


def _pareto_expected(params: tuple[float, ...], t: Array, x: Array, T: Array) -> Array:
    """E[X(t)] given alive at T, Pareto/NBD: (r+x)(beta+T)/((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]."""
    r, alpha, s, beta = params
    span = np.log1p(t / (beta + T))
    growth = span if abs(s - 1) < 1e-10 else -np.expm1(-(s - 1) * span) / (s - 1)
    return np.asarray((r + x) / (alpha + T) * (beta + T) * growth, dtype=float)


def expected_purchases(fit: Fit, t: ArrayLike, tuples: Tuples) -> Array:
    """E[X(t) | x, t_x, T]: the expected purchases in the next t time units, under a BG/NBD or Pareto/NBD fit.

    BG/NBD needs a + b + x - 1 > 0 (the hypergeometric's c); a < 1 is fine (the (a+b+x-1)/(a-1) factor and the
    bracket both change sign).
    """
    xs, txs, Ts = tuples.arrays()
    ts = np.asarray(t, dtype=float)
    if fit.model == BGNBD:
        return np.asarray(_bgnbd_expected(fit.estimates, ts, xs, Ts) * _p_alive(fit, xs, txs, Ts), dtype=float)
    if fit.model == PARETO_NBD:
        return np.asarray(_pareto_expected(fit.estimates, ts, xs, Ts) * _p_alive(fit, xs, txs, Ts), dtype=float)
    raise ValueError(f"expected_purchases needs a {BGNBD} or {PARETO_NBD} fit, got {fit.model}")


def expected_purchases_new(fit: Fit, t: ArrayLike) -> Array:
    """E[X(t)] for a customer just acquired (x = t_x = T = 0).

    For BG/NBD that is ((a+b-1)/(a-1)) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))].
    """
    ts = np.asarray(t, dtype=float)
    zero = np.zeros_like(ts)
    return expected_purchases(fit, ts, Tuples(zero, zero, zero))


def mean_spend(gg_fit: Fit) -> float:
    """The population mean spend per transaction p v / (q - 1); infinite when q <= 1."""
    p, q, v = gg_fit.estimates
    return p * v / (q - 1) if q > 1 else float("inf")


def expected_spend(gg_fit: Fit, x: ArrayLike, m_x: ArrayLike) -> Array:
    """E[M | x, m_x] under Gamma-Gamma: a weighted mean of the population mean and m_x; the former for x = 0."""
    if gg_fit.model != GAMMA_GAMMA:
        raise ValueError(f"expected_spend needs a {GAMMA_GAMMA} fit, got {gg_fit.model}")
    p, q, v = gg_fit.estimates
    xs, ms = _arrays(x, m_x)
    seen = (xs > 0) & (ms > 0)
    px = p * np.where(seen, xs, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = (p * v + px * np.where(seen, ms, 0.0)) / (px + q - 1)
    return np.asarray(np.where(seen, own, mean_spend(gg_fit)), dtype=float)


def per_period_rate(annual_rate: float, unit_in_years: float) -> float:
    """The discount rate per time unit for an annual rate: (1 + annual)^(unit in years) - 1 (a week: 7 / 365.25)."""
    return float((1 + annual_rate) ** unit_in_years - 1)


def discounted_purchases(
    fit: Fit, tuples: Tuples, *, horizon: float, discount_rate_per_period: float, steps: int
) -> Array:
    """Discounted expected purchases over ``horizon`` time units, in ``steps`` steps of Δ = horizon / steps:
    Σ_k (E[X(kΔ)] - E[X((k-1)Δ)]) / (1 + d)^(kΔ), d the discount rate per time unit (``per_period_rate``): each
    step's expected purchases are discounted from the end of that step."""
    if horizon <= 0 or steps < 1 or discount_rate_per_period <= -1:
        raise ValueError("horizon must be positive, steps at least 1 and the discount rate above -1")
    xs, txs, Ts = tuples.arrays()
    delta = horizon / steps
    value, before = np.zeros(xs.shape), np.zeros(xs.shape)
    for k in range(1, steps + 1):
        now = expected_purchases(fit, np.full(xs.shape, k * delta), Tuples(xs, txs, Ts))
        value += (now - before) / (1 + discount_rate_per_period) ** (k * delta)
        before = now
    return value


def discounted_value(
    fit: Fit,
    gg_fit: Fit,
    tuples: Tuples,
    *,
    m_x: ArrayLike,
    horizon: float,
    discount_rate_per_period: float,
    steps: int,
) -> Array:
    """Discounted expected value over ``horizon`` time units: ``discounted_purchases`` times E[M | x, m_x]."""
    purchases = discounted_purchases(
        fit, tuples, horizon=horizon, discount_rate_per_period=discount_rate_per_period, steps=steps
    )
    return np.asarray(purchases * expected_spend(gg_fit, tuples.arrays()[0], m_x), dtype=float)
