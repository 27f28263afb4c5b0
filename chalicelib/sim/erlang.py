"""Queueing bounds the simulator's results are compared with: Erlang C (M/M/n) and Erlang A (M/M/n+M).

Both treat every server as able to take every contact (one pooled queue, first come first served,
exponential handle times), so they are what perfect pooling of the same staff would achieve: a skills-based
router can approach them, not beat them by more than noise. Erlang A adds exponential patience: a waiting
customer leaves at rate ``1 / mean_patience``; its service level counts those who left as not answered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The queue length beyond which Erlang A's state probabilities are dropped (each below this share).
_TAIL = 1e-12


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits (Erlang C), for ``load`` Erlangs on ``servers``; 1 when overloaded."""
    if servers <= 0 or load >= servers:
        return 1.0
    if load <= 0:
        return 0.0
    # Erlang B by the stable recursion, then C from B.
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return servers * b / (servers - load * (1 - b))


def erlang_c_service_level(servers: int, arrival_rate: float, mean_handle: float, target: float) -> float:
    """P(wait <= ``target`` seconds) in M/M/n: ``1 - C * exp(-(n - A) * target / mean_handle)``."""
    load = arrival_rate * mean_handle
    if servers <= 0 or load >= servers:
        return 0.0
    return 1.0 - erlang_c(servers, load) * math.exp(-(servers - load) * target / mean_handle)


def erlang_c_mean_wait(servers: int, arrival_rate: float, mean_handle: float) -> float:
    """Mean wait in M/M/n (seconds); infinite when overloaded."""
    load = arrival_rate * mean_handle
    if servers <= 0 or load >= servers:
        return math.inf
    return erlang_c(servers, load) * mean_handle / (servers - load)


@dataclass(frozen=True)
class ErlangA:
    """What an arrival meets in M/M/n+M: answered within the target, abandoned, and the mean wait."""

    service_level: float  # P(answered within target), abandoned counting as not answered
    abandonment: float  # share of arrivals who leave before being answered
    delay_probability: float  # share who find every server busy
    mean_wait: float  # mean time in queue over all arrivals (until answered or gone), seconds


def erlang_a(servers: int, arrival_rate: float, mean_handle: float, mean_patience: float, target: float) -> ErlangA:
    """Erlang A (Palm's M/M/n+M), numerically.

    The number in the system is a birth-death chain: births ``arrival_rate``; deaths ``k * mu`` up to ``n``,
    then ``n * mu + (k - n) * theta``. An arrival sees its stationary state (PASTA). Finding ``i`` ahead in the
    queue, it is answered after ``i + 1`` transitions of rates ``n * mu + j * theta`` (``j = i .. 0``: a
    server frees, or someone ahead leaves) unless its own patience runs out first; that absorption
    probability by ``target`` is computed by uniformisation, for every ``i`` at once.
    """
    lam, mu, theta = arrival_rate, 1.0 / mean_handle, 1.0 / mean_patience
    n = servers
    if n <= 0:
        return ErlangA(0.0, 1.0, 1.0, mean_patience)
    # Stationary probabilities, unnormalised in log space to stay finite for large loads.
    logs = [0.0]
    k = 0
    while True:
        death = min(k + 1, n) * mu + max(0, k + 1 - n) * theta
        logs.append(logs[-1] + math.log(lam / death))
        k += 1
        if k > n and logs[-1] - max(logs) < math.log(_TAIL) and logs[-1] < logs[-2]:
            break
    top = max(logs)
    weights = np.exp(np.array(logs) - top)
    p = weights / weights.sum()
    waiting = p[n:]  # an arrival finds i = 0, 1, ... ahead in the queue
    delay_probability = float(waiting.sum())
    ahead = np.arange(len(waiting))
    queue_length = float((ahead * waiting).sum())
    abandonment = theta * queue_length / lam
    # Uniformisation over states i = 0..K of "i ahead of us": down at n*mu + i*theta, gone at theta.
    rates = n * mu + ahead * theta
    uniform = float(rates[-1] + theta)
    down, stay = rates / uniform, 1.0 - (rates + theta) / uniform
    served = np.zeros(len(waiting))
    answered = np.zeros(len(waiting))
    mass = uniform * target
    weight = math.exp(-mass) if mass < 700 else 0.0
    log_weight = -mass
    steps = int(mass + 12 * math.sqrt(mass + 1) + 20)
    for m in range(steps + 1):
        if m > 0:
            log_weight += math.log(mass) - math.log(m)
            weight = math.exp(log_weight)
            below = np.concatenate(([1.0], served[:-1]))
            served = down * below + stay * served
        answered += weight * served
    answered_within = float((waiting * answered).sum())
    # Mean wait: Little's law on the queue (those who leave and those answered both count their time).
    mean_wait = queue_length / lam
    return ErlangA(
        service_level=(1.0 - delay_probability) + answered_within,
        abandonment=abandonment,
        delay_probability=delay_probability,
        mean_wait=mean_wait,
    )
