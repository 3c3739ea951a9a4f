"""Independent reference computations of epsilon, written from the papers, for the tests.

* ``rdp_epsilon``: RDP of the Poisson-subsampled Gaussian mechanism at integer orders,
  ``A_a = sum_k C(a, k) (1 - q)^(a - k) q^k exp((k^2 - k) / (2 sigma^2))`` and
  ``RDP(a) = log(A_a) / (a - 1)`` (Mironov, Talwar and Zhang 2019, section 3.3), converted
  to (epsilon, delta) with Balle et al. 2020, theorem 21:
  ``eps = RDP(a) + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1)``.
  Checked against the example in Opacus' ``analysis/rdp.py`` docstring (epsilon 0.336
  at order 23 for the two-part history given there).
* ``gaussian_epsilon``: the exact epsilon of ``T`` compositions of the Gaussian mechanism
  without subsampling, a Gaussian mechanism with ``mu = sqrt(T) / sigma``, whose privacy
  curve is ``delta(eps) = Phi(-eps / mu + mu / 2) - exp(eps) Phi(-eps / mu - mu / 2)``
  (Balle and Wang 2018, theorem 8), solved for ``eps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from scipy.optimize import brentq
from scipy.stats import norm


def _log_binomial(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))


def subsampled_gaussian_rdp(q: float, sigma: float, order: int) -> float:
    """RDP at an integer order of one step of the Poisson-subsampled Gaussian mechanism."""
    terms = [
        _log_binomial(order, k) + k * math.log(q) + (order - k) * math.log1p(-q) + (k * k - k) / (2 * sigma**2)
        for k in range(order + 1)
    ]
    return _log_sum_exp(terms) / (order - 1)


def rdp_epsilon(history: Sequence[tuple[float, float, int]], delta: float, orders: Iterable[int]) -> float:
    """Epsilon of a history from RDP at the given integer orders."""
    best = math.inf
    for order in orders:
        rdp = sum(steps * subsampled_gaussian_rdp(q, sigma, order) for sigma, q, steps in history)
        epsilon = rdp + math.log((order - 1) / order) - (math.log(delta) + math.log(order)) / (order - 1)
        best = min(best, epsilon)
    return best


def gaussian_epsilon(sigma: float, steps: int, delta: float) -> float:
    """Exact epsilon of ``steps`` Gaussian mechanisms with sensitivity 1 and noise ``sigma``."""
    mu = math.sqrt(steps) / sigma

    def excess_delta(epsilon: float) -> float:
        return norm.cdf(-epsilon / mu + mu / 2) - math.exp(epsilon) * norm.cdf(-epsilon / mu - mu / 2) - delta

    return brentq(excess_delta, 0.0, 200.0, xtol=1e-12)
