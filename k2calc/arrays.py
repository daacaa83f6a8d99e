"""Arithmetic that takes Python numbers or numpy arrays alike, so one physics function serves the
scalar :func:`k2calc.estimate.estimate` (numbers in, the same Python floats out as plain ``max``/``min``
give) and the planner's vectorized evaluator (arrays of candidates in, arrays out).

>>> maximum(2, 3), minimum(2.5, 1.0), ceil(2.1), where(True, 1, 2)
(3, 1.0, 3, 1)
>>> maximum(np.array([1.0, 4.0]), 2.0).tolist(), ceil(np.array([0.5, 2.0])).tolist()
([2.0, 4.0], [1.0, 2.0])
"""

from __future__ import annotations

import math

import numpy as np

_ARRAY = np.ndarray


def is_array(*values) -> bool:
    """True when any of `values` is a numpy array."""
    for v in values:
        if isinstance(v, _ARRAY):
            return True
    return False


# The three below run a few hundred times per planner configuration: no *args, no generator.
def maximum(a, b):
    """Element-wise larger of `a` and `b` (builtin ``max`` for numbers)."""
    return np.maximum(a, b) if isinstance(a, _ARRAY) or isinstance(b, _ARRAY) else max(a, b)


def minimum(a, b):
    """Element-wise smaller of `a` and `b` (builtin ``min`` for numbers)."""
    return np.minimum(a, b) if isinstance(a, _ARRAY) or isinstance(b, _ARRAY) else min(a, b)


def ceil(x):
    """Smallest whole number >= `x` (an int for a number, floats for an array)."""
    return np.ceil(x) if isinstance(x, _ARRAY) else math.ceil(x)


def where(condition, a, b):
    """`a` where `condition` holds, else `b`, element-wise (a plain if/else for numbers)."""
    if is_array(condition, a, b):
        return np.where(condition, a, b)
    return a if condition else b
