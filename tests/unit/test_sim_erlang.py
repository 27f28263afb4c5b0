"""The Erlang bounds the simulator is compared with, against known values and exact special cases."""

from __future__ import annotations

import math

import pytest

from chalicelib.sim import erlang


def test_erlang_c_matches_the_textbook_value() -> None:
    # 10 Erlangs on 11 agents: 68.21 % of callers wait (the classic table value).
    assert erlang.erlang_c(11, 10.0) == pytest.approx(0.6821, abs=1e-4)
    assert erlang.erlang_c(30, 30.0) == 1.0  # overloaded: everyone waits


def test_erlang_c_service_level_is_one_minus_c_times_the_exponential_tail() -> None:
    n, rate, handle, t = 30, 0.85 * 30 / 180, 180.0, 20.0
    c = erlang.erlang_c(n, rate * handle)
    assert erlang.erlang_c_service_level(n, rate, handle, t) == pytest.approx(1 - c * math.exp(-(n - 25.5) * t / 180))
    assert erlang.erlang_c_service_level(n, rate, handle, 0.0) == pytest.approx(1 - c)


def test_erlang_a_without_patience_limit_is_erlang_c() -> None:
    n, rate, handle = 30, 0.9 * 30 / 180, 180.0
    found = erlang.erlang_a(n, rate, handle, mean_patience=1e12, target=20.0)
    assert found.service_level == pytest.approx(erlang.erlang_c_service_level(n, rate, handle, 20.0), abs=1e-6)
    assert found.delay_probability == pytest.approx(erlang.erlang_c(n, rate * handle), abs=1e-6)
    assert found.abandonment == pytest.approx(0.0, abs=1e-6)


def test_erlang_a_with_patience_equal_to_handle_time_is_the_poisson_of_an_infinite_server_queue() -> None:
    # When customers leave at the service rate, everyone present departs at rate mu: the number in the
    # system is Poisson(A), exactly as in M/M/infinity.
    n, load, handle = 10, 8.0, 180.0
    poisson = [math.exp(-load + k * math.log(load) - math.lgamma(k + 1)) for k in range(200)]
    found = erlang.erlang_a(n, load / handle, handle, mean_patience=handle, target=30.0)
    assert found.delay_probability == pytest.approx(sum(poisson[n:]), abs=1e-9)
    assert found.abandonment == pytest.approx(sum((k - n) * p for k, p in enumerate(poisson) if k > n) / load, abs=1e-9)
    # P(answered within 30 s), checked by an independent closed form for theta = mu: with i ahead, the time to
    # a server is a sum of exponentials of rates (n + j) mu and the customer's own patience races it.
    mu = 1 / handle
    expected = sum(poisson[:n])
    for i in range(0, 60):
        rates = [(n + j) * mu + mu for j in range(i + 1)]  # each phase also ends if the customer leaves
        expected += poisson[n + i] * _hypoexponential_within(rates, [(n + j) * mu for j in range(i + 1)], 30.0)
    assert found.service_level == pytest.approx(expected, abs=1e-6)


def _hypoexponential_within(total_rates: list[float], onward_rates: list[float], t: float) -> float:
    """P(pass every phase by t), phase j lasting Exp(total_rates[j]) and passing on with onward/total."""
    # Passing every phase: product of the onward shares times the CDF of the sum of the phases' durations,
    # whose rates are distinct (the closed form of the hypoexponential distribution).
    share = math.prod(o / r for o, r in zip(onward_rates, total_rates, strict=True))
    cdf = 1.0
    for j, rj in enumerate(total_rates):
        coefficient = math.prod(rk / (rk - rj) for k, rk in enumerate(total_rates) if k != j)
        cdf -= coefficient * math.exp(-rj * t)
    return share * cdf
