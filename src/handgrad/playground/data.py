"""The playground's data sets and input features.

Points live in the square [-6, 6]², as in TensorFlow Playground. Classification
labels are 0 and 1 (the sigmoid's range); regression targets lie in [-1, 1].
Every generator takes a seeded ``np.random.Generator`` so that a link (which
carries the seed) reproduces the same points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

DOMAIN = 6.0  # points and heat maps cover [-DOMAIN, DOMAIN]²
N_POINTS = 500

Array = NDArray[np.float64]


def _circle(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """Class 1 inside radius 2.5, class 0 on a ring from 3.5 to 5."""
    radius = np.concatenate([rng.uniform(0, 2.5, n // 2), rng.uniform(3.5, 5.0, n - n // 2)])
    angle = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    X += rng.uniform(-5, 5, X.shape) * noise
    y = (np.hypot(X[:, 0], X[:, 1]) < 3.0).astype(np.float64)
    return X, y


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """Class 1 where x1 and x2 have the same sign (points kept 0.3 off the axes)."""
    X = rng.uniform(-5, 5, (n, 2))
    X += np.where(X > 0, 0.3, -0.3)
    X += rng.uniform(-5, 5, X.shape) * noise
    y = (X[:, 0] * X[:, 1] >= 0).astype(np.float64)
    return X, y


def _two_gaussians(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """Two round clouds centred at (2, 2) (class 1) and (-2, -2) (class 0)."""
    spread = 0.5 + 3.5 * noise
    y = (np.arange(n) < n // 2).astype(np.float64)
    centre = np.where(y[:, None] == 1, 2.0, -2.0)
    return centre + rng.normal(0, spread, (n, 2)), y


def _spiral(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """Two interleaved spirals, each turning 1.75 times around the origin."""
    half = n // 2
    parts, labels = [], []
    for delta, label, count in ((0.0, 1.0, half), (np.pi, 0.0, n - half)):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * np.pi + delta
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)]) + rng.uniform(-1, 1, (count, 2)) * noise)
        labels.append(np.full(count, label))
    return np.concatenate(parts), np.concatenate(labels)


def _plane(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """A tilted plane y = (x1 + x2) / 10 (in [-1, 1]), with noise on the inputs."""
    X = rng.uniform(-DOMAIN + 1, DOMAIN - 1, (n, 2))
    y = (X[:, 0] + X[:, 1]) / (2 * (DOMAIN - 1))
    return X + rng.uniform(-DOMAIN + 1, DOMAIN - 1, (n, 2)) * noise, y


_BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _multi_gaussian(rng: np.random.Generator, n: int, noise: float) -> tuple[Array, Array]:
    """Six Gaussian bumps of height ±1: the target is the bump with the largest magnitude at x."""
    X = rng.uniform(-DOMAIN + 1, DOMAIN - 1, (n, 2))
    y = multi_gaussian_target(X)
    return X + rng.uniform(-DOMAIN + 1, DOMAIN - 1, (n, 2)) * noise, y


def multi_gaussian_target(X: Array) -> Array:
    bumps = np.stack([sign * np.exp(-((X[:, 0] - cx) ** 2 + (X[:, 1] - cy) ** 2) / 2) for cx, cy, sign in _BUMPS])
    return bumps[np.argmax(np.abs(bumps), axis=0), np.arange(X.shape[0])]


Generator = Callable[[np.random.Generator, int, float], tuple[Array, Array]]

DATASETS: dict[str, tuple[str, Generator]] = {  # name -> (problem, generator)
    "circle": ("classification", _circle),
    "xor": ("classification", _xor),
    "gauss": ("classification", _two_gaussians),
    "spiral": ("classification", _spiral),
    "plane": ("regression", _plane),
    "multigauss": ("regression", _multi_gaussian),
}

# name -> (label shown on the page, function of the point columns x1, x2)
FEATURES: dict[str, tuple[str, Callable[[Array, Array], Array]]] = {
    "x1": ("x₁", lambda a, b: a),
    "x2": ("x₂", lambda a, b: b),
    "x1_sq": ("x₁²", lambda a, b: a * a),
    "x2_sq": ("x₂²", lambda a, b: b * b),
    "x1_x2": ("x₁·x₂", lambda a, b: a * b),
    "sin_x1": ("sin x₁", lambda a, b: np.sin(a)),
    "sin_x2": ("sin x₂", lambda a, b: np.sin(b)),
}


def make_points(dataset: str, noise_percent: int, seed: int, n: int = N_POINTS) -> tuple[Array, Array]:
    """``(points (n, 2), targets (n,))`` of a named data set; noise is a percentage (0-50)."""
    _, generate = DATASETS[dataset]
    rng = np.random.default_rng(seed)
    X, y = generate(rng, n, noise_percent / 100.0)
    order = rng.permutation(n)  # train/test split takes a prefix: mix the classes first
    return X[order], y[order]


def features(points: Array, names: Sequence[str]) -> Array:
    """The network's input: one column per selected feature, in ``names`` order."""
    a, b = points[:, 0], points[:, 1]
    return np.column_stack([FEATURES[name][1](a, b) for name in names])


def grid(resolution: int) -> Array:
    """Cell centres of a resolution × resolution grid over the domain, row by row from the top (x2 = +6)."""
    edges = np.linspace(-DOMAIN, DOMAIN, resolution + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    x1, x2 = np.meshgrid(centres, centres[::-1])
    return np.column_stack([x1.ravel(), x2.ravel()])
