"""Retention and reinforcement: the forgetting curve of a memory, after MemoryBank.

The rules (pure functions, tested against written-out values in ``tests/test_retention.py``):

- **Retention** ``R = exp(-t / S)`` (Ebbinghaus' exponential forgetting curve as MemoryBank
  uses it: Zhong et al., "MemoryBank: Enhancing Large Language Models with Long-Term
  Memory", AAAI 2024, section 2.3; ``forgetting_curve`` in
  github.com/zhongwanjun/MemoryBank-SiliconFriend). ``t`` is the days since the memory
  was last recalled, or since it was stored (``created_at``) if it never was; ``S`` is its
  ``strength`` in days (1 for a new memory, as in MemoryBank). ``t`` below 0 (a clock
  that stepped back) counts as 0; ``S`` is floored at ``MIN_STRENGTH_DAYS``.
- **Pinned** memories never decay: their retention is 1. Expiry (``expires_at``) is
  separate: an expired memory is excluded from search whatever its retention, as
  before, and the ``ttl`` forgetting policy archives it.
- **Reinforcement** when a memory is recalled (returned by a search) at time ``t`` after
  the previous recall: ``S' = S + RECALL_GAIN_DAYS * (1 - R(t, S))``, then ``t`` restarts
  at 0. MemoryBank adds 1 to ``S`` per recall (its code moves a recalled memory up one
  of three levels, ``S`` = 1, 2, 3 days). The factor ``1 - R`` is the spacing effect: a
  recall when the memory was nearly forgotten adds almost a full day, a recall right
  after another adds almost nothing. MemoryBank counts recalls per conversation, which
  spaces them; a search engine records every hit, and ten searches in one minute must
  not make a memory ten days stronger.

Times are naive UTC ``datetime`` values, as everywhere in remem.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import numpy.typing as npt

from remem.models import MemoryRecord

Floats = npt.NDArray[np.float64]
DAY_SECONDS = 86_400.0
MIN_STRENGTH_DAYS = 1e-3  # a stored strength at or below 0 decays as this (about 1.4 min)
RECALL_GAIN_DAYS = 1.0  # what a recall of a nearly forgotten memory adds to S (MemoryBank)


def retention(t_days: float, strength_days: float) -> float:
    """``exp(-t / S)``: the share of a memory retained ``t_days`` after its last recall
    with strength ``strength_days``; from 1 (just recalled, or infinitely strong) down
    towards 0. ``ValueError`` for NaN."""
    if math.isnan(t_days) or math.isnan(strength_days):
        raise ValueError(f"retention needs numbers, not t={t_days!r}, S={strength_days!r}")
    strength = max(strength_days, MIN_STRENGTH_DAYS)
    if math.isinf(strength):
        return 1.0
    return math.exp(-max(t_days, 0.0) / strength)


def retentions(t_days: Floats, strength_days: Floats) -> Floats:
    """``retention`` over arrays (for ranking a scope's rows). Stored data may hold
    anything, and a ranking must not turn to NaN: a NaN input gives 1 (no decay known)."""
    t = np.maximum(np.asarray(t_days, dtype=np.float64), 0.0)
    strength = np.maximum(np.asarray(strength_days, dtype=np.float64), MIN_STRENGTH_DAYS)
    with np.errstate(invalid="ignore", over="ignore"):
        out: Floats = np.exp(-t / strength)
    out[np.isinf(strength) | np.isnan(out)] = 1.0
    return out


def reinforce(strength_days: float, elapsed_days: float, gain: float = RECALL_GAIN_DAYS) -> float:
    """The strength after a recall ``elapsed_days`` after the previous one:
    ``S + gain * (1 - R(elapsed, S))`` (see the module docstring). Never lower than
    ``S``, never more than ``gain`` higher."""
    strength = max(strength_days, MIN_STRENGTH_DAYS)
    if math.isinf(strength):
        return strength
    return strength + gain * (1.0 - retention(elapsed_days, strength))


def days_between(earlier: datetime, later: datetime) -> float:
    """``later - earlier`` in days (negative if ``later`` comes first)."""
    return (later - earlier).total_seconds() / DAY_SECONDS


def reinforced(strength_days: float, previous: datetime, at: datetime) -> float:
    """The strength after a recall at ``at`` whose previous recall (or, for the first,
    the memory's storing) was at ``previous``: the ``reinforce`` rule over times. Stores
    apply it inside the write that records the recall (``Store.record_access``)."""
    return reinforce(strength_days, days_between(previous, at))


def last_recall(record: MemoryRecord) -> datetime:
    """When a memory's forgetting curve restarted: its last recall, else its storing."""
    return record.last_accessed_at or record.created_at


def memory_retention(record: MemoryRecord, now: datetime, *, ignore_pin: bool = False) -> float:
    """A memory's retention at ``now``: 1 if pinned (unless ``ignore_pin``), else
    ``exp(-t / S)`` with ``t`` the days since ``last_recall`` and ``S`` its strength."""
    if record.pinned and not ignore_pin:
        return 1.0
    return retention(days_between(last_recall(record), now), record.strength)


def expired(record: MemoryRecord, now: datetime) -> bool:
    """Whether a memory's time to live has run out (``expires_at`` at or before ``now``)."""
    return record.expires_at is not None and record.expires_at <= now
