"""handgrad.validation: one rule, one message, for each kind of argument."""

from __future__ import annotations

import numpy as np
import pytest

from handgrad.validation import check_bool, check_int, check_real, check_unit_interval, make_rng


def test_check_int():
    assert check_int("epochs", 0, 0) == 0 and check_int("epochs", np.int64(3), 0) == 3
    with pytest.raises(ValueError, match=r"epochs must be an int >= 0, got -1"):
        check_int("epochs", -1, 0)
    for bad in (2.0, True, "3", None):
        with pytest.raises(TypeError, match="batch_size must be an int >= 1"):
            check_int("batch_size", bad)


def test_check_real_and_its_intervals():
    assert check_real("alpha", 0, 0.0) == 0.0
    with pytest.raises(ValueError, match=r"alpha must be in \[0, inf\], got -1.0"):
        check_real("alpha", -1.0, 0.0)
    with pytest.raises(ValueError, match=r"eps must be in \(0, inf\]"):
        check_real("eps", 0.0, 0.0, open_low=True)
    with pytest.raises(ValueError, match="must be in"):
        check_real("x", float("nan"))
    with pytest.raises(TypeError, match=r"momentum must be a number in \[0, 1\)"):
        check_unit_interval("momentum", "0.9")
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.0"):
        check_unit_interval("momentum", 1)
    assert check_unit_interval("momentum", 0.9) == 0.9


def test_check_bool():
    assert check_bool("shuffle", np.bool_(True)) is True
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        check_bool("shuffle", 1)


def test_make_rng_is_the_one_seed_rule():
    a, b = make_rng(7), make_rng(7)
    assert a.integers(1 << 30) == b.integers(1 << 30)
    g = np.random.default_rng(0)
    assert make_rng(g) is g
    assert isinstance(make_rng(None), np.random.Generator)
    legacy = make_rng(np.random.RandomState(3))
    assert legacy.integers(1 << 30) == make_rng(np.random.RandomState(3)).integers(1 << 30)
    # (seed, stream): independent streams of one seed, as np.random.default_rng([seed, stream])
    assert make_rng((5, 1)).integers(1 << 30) == np.random.default_rng([5, 1]).integers(1 << 30)
    assert make_rng((5, 1)).integers(1 << 30) != make_rng((5, 2)).integers(1 << 30)
    with pytest.raises(ValueError, match="seed must be non-negative, got -1"):
        make_rng(-1)
    with pytest.raises(TypeError, match="random_state must be an int, a numpy Generator or None"):
        make_rng(1.5, "random_state")
    with pytest.raises(TypeError, match="seed must be an int"):
        make_rng(True)
