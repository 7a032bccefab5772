"""Former name of :mod:`handgrad.validation`, kept so existing imports keep working."""

from .validation import (  # noqa: F401
    as_array,
    check_2d,
    check_bool,
    check_finite,
    check_int,
    check_nonempty,
    check_positive_float,
    check_real,
    check_same_shape,
    check_size,
    check_unit_interval,
    lookup_name,
    make_rng,
    normalize_name,
)
