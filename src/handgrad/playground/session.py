"""One page's training session: data, network, loss, optimizer, and what the page draws.

The network is handgrad's own :class:`~handgrad.MLP` (float64, so that the
derivation panel can be compared with backward to 1e-6), trained by
:class:`~handgrad.SGD` on one of handgrad's losses. One *update* is SGD's five
steps on one batch; one *epoch* is a pass of updates over the training points,
in order, as TensorFlow Playground counts them.

Regularisation is added to the data loss J by hand, after backward and before
the update, and only to weights (biases are not penalised)::

    L1:  Ω(W) = λ Σ |W_ij|       dΩ/dW = λ · sign(W)     (sign(0) = 0)
    L2:  Ω(W) = (λ/2) Σ W_ij²    dΩ/dW = λ · W

so the update is W ← W − lr · (dJ/dW + dΩ/dW). The losses shown are the data
loss J alone, as in TensorFlow Playground.

All methods assume the caller holds :attr:`Session.lock` when a training thread
may run at the same time (the server does this).
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
from typing import Any

import numpy as np

import handgrad as hg

from .data import features, grid, make_points
from .protocol import Config, MessageError, Target

OUTPUT_GRID = 50  # the output heat map's resolution
NEURON_GRID = 20  # each neuron's heat map's resolution
DIVERGED = "training diverged: the loss is no longer finite; lower the learning rate and press reset"
HISTORY = 400  # loss-curve points kept (older ones are thinned out)


def quantize(values: np.ndarray) -> str:
    """Values clipped to [-1, 1] as base64 bytes 0..255 (the page's colour scale)."""
    q = np.rint((np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


class Session:
    """Data, network and training state for one page."""

    def __init__(self, config: Config | None = None) -> None:
        self.lock = threading.Lock()
        self.config = config or Config()
        self._make_data()
        self.reset()

    # ------------------------------------------------------------ setup
    def _make_data(self) -> None:
        c = self.config
        points, targets = make_points(c.dataset, c.noise, c.seed)
        n_train = int(round(len(points) * c.train_ratio / 100))
        self.points_train, self.points_test = points[:n_train], points[n_train:]
        self.y_train, self.y_test = targets[:n_train, None], targets[n_train:, None]
        self._make_inputs()

    def _make_inputs(self) -> None:
        names = self.config.features
        self.X_train = features(self.points_train, names)
        self.X_test = features(self.points_test, names)
        self.grid_out = features(grid(OUTPUT_GRID), names)
        self.grid_neuron = features(grid(NEURON_GRID), names)

    @property
    def output_activation(self) -> str:
        return "sigmoid" if self.config.problem == "classification" else "identity"

    def reset(self) -> None:
        """A fresh network (seeded by the config's seed), epoch 0, an empty loss curve."""
        c = self.config
        self.net = hg.MLP(len(c.features), list(c.hidden), 1, f=c.activation, g=self.output_activation,
                          seed=c.seed, dtype=np.float64)
        self.loss = hg.make_loss(c.loss)
        self.optimizer = hg.SGD(self.net, lr=c.learning_rate)
        self.epoch, self.updates, self.position = 0, 0, 0
        self.history: list[list[float]] = []
        self.last_batch: slice | None = None

    def apply(self, new: Config) -> None:
        """Take a new config, keeping what it leaves valid: the data unless the data set changed,
        the weights unless the network's shape, activation, problem or loss changed."""
        old, self.config = self.config, new
        if (old.dataset, old.noise, old.train_ratio, old.seed) != (new.dataset, new.noise, new.train_ratio, new.seed):
            self._make_data()
        elif old.features != new.features:
            self._make_inputs()
        if (old.features, old.hidden, old.activation, old.problem, old.loss, old.seed) != \
                (new.features, new.hidden, new.activation, new.problem, new.loss, new.seed) \
                or old.dataset != new.dataset:
            self.reset()
        self.optimizer.lr = new.learning_rate
        self.position = min(self.position, len(self.X_train))

    def regenerate(self) -> None:
        """New points from a new seed (the weights are kept)."""
        self.config.seed = (self.config.seed * 1103515245 + 12345) % 2**31
        self._make_data()
        self.position, self.last_batch = 0, None

    # ------------------------------------------------------------ training
    def next_batch(self) -> slice:
        """Rows of the next batch (a slice: a view, no copy); wrapping to the start ends an epoch."""
        n = len(self.X_train)
        if self.position >= n:
            self.position, self.epoch = 0, self.epoch + 1
        idx = slice(self.position, min(self.position + self.config.batch_size, n))
        self.position = idx.stop
        return idx

    def train_update(self) -> float:
        """SGD's five steps on the next batch; returns the batch's data loss J."""
        idx = self.next_batch()
        x, y = self.X_train[idx], self.y_train[idx]
        self.net.forward(x)                                            # 1 forward
        J = self.net.backward_loss(self.loss, y, zero_grad=True)      # 2 loss, 3 clear, 4 backward
        if not np.isfinite(J):
            self.last_batch = idx
            raise hg.DivergenceError(DIVERGED)
        self.add_penalty_gradients()
        self.optimizer.step()                                          # 5 update
        self.updates += 1
        self.last_batch = idx
        return float(J)

    def train_epoch(self) -> None:
        """Updates until the current pass over the training points is complete."""
        start = self.epoch
        while self.epoch == start:
            self.train_update()
            if self.position >= len(self.X_train):
                self.position, self.epoch = 0, self.epoch + 1

    def penalty_gradient(self, W: np.ndarray) -> np.ndarray | None:
        """dΩ/dW for the configured regularisation (None when there is none); see the module docstring."""
        c = self.config
        if c.regularization == "none" or c.reg_rate == 0.0:
            return None
        return c.reg_rate * (np.sign(W) if c.regularization == "l1" else W)

    def add_penalty_gradients(self) -> None:
        for layer in self.net.linears:
            extra = self.penalty_gradient(layer.params["W"])
            if extra is not None:
                layer.grads["dJ_dW"] += extra  # in place: the optimizer reads these very arrays

    # ------------------------------------------------------------ what the page draws
    def data_loss(self, X: np.ndarray, y: np.ndarray) -> float:
        if len(X) == 0:
            return float("nan")
        J, _ = self.loss(y, self.net.forward(X))
        return float(J)

    def layer_outputs(self, X: np.ndarray) -> list[np.ndarray]:
        """Each Linear's activation output a_k (the last is ŷ), through the layers' own forwards."""
        outs, a = [], X
        for layer in self.net.layers:
            a = layer.forward(a)
            if not layer.params:
                outs.append(a)
        self.net.clear_cache()
        return outs

    def frame(self) -> dict[str, Any]:
        """The state the page draws: counters, losses, heat maps and weights."""
        train, test = self.data_loss(self.X_train, self.y_train), self.data_loss(self.X_test, self.y_test)
        if not self.history or self.history[-1][0] != self.epoch:
            self.history.append([self.epoch, train, test])
            if len(self.history) > HISTORY:
                self.history = self.history[::2]
        out = self.layer_outputs(self.grid_out)[-1][:, 0]
        if self.config.problem == "classification":
            out = 2 * out - 1  # probability 0..1 -> colour scale -1..1
        neurons = self.layer_outputs(self.grid_neuron)[:-1]
        return {
            "type": "frame", "epoch": self.epoch, "updates": self.updates,
            "train_loss": _finite(train), "test_loss": _finite(test),
            "history": [[e, _finite(a), _finite(b)] for e, a, b in self.history],
            "output": quantize(out), "output_grid": OUTPUT_GRID, "neuron_grid": NEURON_GRID,
            "neurons": [[quantize(a[:, i]) for i in range(a.shape[1])] for a in neurons],
            "weights": [{"W": _json_safe(layer.params["W"]), "b": _json_safe(layer.params["b"])}
                        for layer in self.net.linears],
        }

    def points(self) -> dict[str, Any]:
        """The data points (sent when they change, not in every frame)."""
        return {"type": "points", "train": np.column_stack([self.points_train, self.y_train]).round(4).tolist(),
                "test": np.column_stack([self.points_test, self.y_test]).round(4).tolist(),
                "problem": self.config.problem}

    # ------------------------------------------------------------ the derivation panel
    def current_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The batch of the last update (the first batch before any update)."""
        idx = self.last_batch
        if idx is None:
            idx = slice(0, min(self.config.batch_size, len(self.X_train)))
        return self.X_train[idx], self.y_train[idx]

    def check_target(self, target: Target) -> Target:
        sizes = [len(self.config.features), *self.config.hidden, 1]
        n_layers = len(sizes) - 1
        if not 1 <= target.layer <= n_layers:
            raise MessageError(f"layer must be in [1, {n_layers}] for this network, got {target.layer}")
        out_size, in_size = sizes[target.layer], sizes[target.layer - 1]
        if not 0 <= target.row < out_size or (target.kind == "W" and not 0 <= target.col < in_size):
            raise MessageError(f"W{target.layer} is {out_size}×{in_size}; got row {target.row}, col {target.col}")
        return target

    def model_file(self) -> bytes:
        """The network as a handgrad model file that ``handgrad predict`` loads (the metadata is
        :class:`handgrad.Predictor`'s, as ``handgrad train`` writes it)."""
        from handgrad import Predictor

        c = self.config
        classification = c.problem == "classification"
        model = Predictor(self.net, task=c.problem, loss=c.loss, feature_names=list(c.features),
                          target_name="label" if classification else "y",
                          class_labels=[0, 1] if classification else None, g=self.output_activation,
                          info={"playground": c.to_dict()})
        with tempfile.TemporaryDirectory() as tmp:  # the server picks the path; the page never names one
            path = os.path.join(tmp, "playground.safetensors")
            model.save(path)
            with open(path, "rb") as f:
                return f.read()


def _json_safe(a: np.ndarray) -> list:
    """Values for the page; a diverged network's inf/NaN become ±1e308/0 (JSON has no inf or NaN)."""
    return np.nan_to_num(a, nan=0.0, posinf=1e308, neginf=-1e308).tolist()


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) else None

