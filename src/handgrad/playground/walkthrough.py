"""Step mode: one batch through SGD's five steps, with the numbers, layer by layer.

1. forward   z_k = a_{k−1} W_kᵀ + b_k,  a_k = f_k(z_k),  ŷ = a_L
2. loss      J(y, ŷ) and dJ/dŷ
3. clear     every dJ/dθ set to zero (gradients accumulate otherwise)
4. backward  dJ/dz_L = dJ/dŷ ⊙ g′(z_L);  dJ/dW_k = (dJ/dz_k)ᵀ a_{k−1};  dJ/db_k = Σ_n dJ/dz_k;
             dJ/dz_{k−1} = (dJ/dz_k W_k) ⊙ f′(z_{k−1})
5. update    θ ← θ − lr · (dJ/dθ + dΩ/dθ)

The gradients shown in step 4 are the ones handgrad's backward stored; the
update in step 5 is the optimizer's real step, so the walk advances training by
one update.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .derive import forward_values


def _m(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def walkthrough(session: Any) -> dict[str, Any]:
    """Run one real update on the next batch and return what each of the five steps computed."""
    net, loss = session.net, session.loss
    idx = session.next_batch()
    x, y = session.X_train[idx], session.y_train[idx]
    a, z, slope = forward_values(net, x)
    L = len(z)
    forward = [{"layer": k, "z": _m(z[k - 1]), "a": _m(a[k]), "shape": list(z[k - 1].shape)} for k in range(1, L + 1)]
    J, dJ_dyhat = loss(y, a[-1])

    net.zero_grad()
    cleared = [{"name": name, "shape": list(g.shape), "max_abs": float(np.abs(g).max())}
               for name, g in net.grads.items()]

    net.forward(x)
    J_backward = float(net.backward_loss(loss, y))
    delta = dJ_dyhat * slope[-1]
    backward = []
    for k in range(L, 0, -1):
        layer = net.linears[k - 1]
        penalty = session.penalty_gradient(layer.params["W"])
        backward.append({"layer": k, "dJ_dz": _m(delta), "dJ_dW": _m(layer.grads["dJ_dW"]),
                         "dJ_db": _m(layer.grads["dJ_db"]),
                         "penalty_dW": None if penalty is None else _m(penalty)})
        if k > 1:
            delta = (delta @ layer.params["W"]) * slope[k - 2]
    session.add_penalty_gradients()

    before = {name: _m(p) for name, p in net.params.items()}
    session.optimizer.step()
    net.clear_cache()
    session.updates += 1
    session.last_batch = idx
    after = {name: _m(p) for name, p in net.params.items()}
    return {
        "type": "walkthrough", "lr": session.config.learning_rate, "batch": {"x": _m(x), "y": _m(y)},
        "steps": {"forward": forward, "loss": {"J": float(J), "J_backward": J_backward, "dJ_dyhat": _m(dJ_dyhat),
                                               "name": session.config.loss},
                  "clear": cleared, "backward": backward, "update": {"before": before, "after": after}},
    }
