"""Everything evaluated at a point: the Jacobians the chain names formed explicitly and multiplied, and every value checked against backward, finite differences (:mod:`.numeric`) and PyTorch."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .. import BCELoss, CrossEntropyLoss, Layer, Linear, Loss, Sequential
from ..backend import to_numpy
from ..validation import make_rng
from .presets import draw_point, draw_target
from .records import Check, Explanation
from .symbols import Step, Sym, grad_symbol, layer_steps, loss_step, partial_symbol, reads_logits

FD_RTOL = 1e-6


EXACT_RTOL, EXACT_ATOL = 1e-10, 1e-12


MAX_JACOBIAN_ENTRIES = 20000
# ∂z/∂W is out × (out·in) per sample: formed only where that stays small; beyond, its product is taken
# through its structure ∂z_i/∂W_jk = δ_ij x_k, i.e. (dJ/dz)ᵀ x
MAX_PARAM_JACOBIAN_ENTRIES = 2_000_000
MAX_FD_ENTRIES = 2000  # finite differences per parameter array; beyond, a random sample


def resolve_point(net: Sequential, loss: Loss, at: Any, target: Any, seed: Any, batch: int) -> tuple[np.ndarray, Any, str]:
    """(x, y, description) from ``at`` / ``target`` / ``seed``."""
    from ..validation import check_finite

    if isinstance(at, str) and at.strip().lower() in ("random", "seed", "draw") or at is True:
        x, y = draw_point(net, loss, batch=batch, seed=seed)
        point = f"x ~ N(0, 1) drawn with seed {seed} (N = {batch})"
        if target is None:
            return x, y, point + ", y drawn with the same seed"
        return x, resolve_target(net, loss, target, x.shape[0]), point + ", the given y"
    if isinstance(at, str):
        raise ValueError(f"at must be 'random', an array of inputs or a pair (x, y), got the string {at!r}")
    if isinstance(at, tuple) and len(at) == 2 and np.ndim(at[0]) >= 1 and target is None:
        at, target = at
    try:
        x = np.array(to_numpy(at) if not isinstance(at, (list, tuple)) else at, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"at: expected numbers for the input x, got {at!r} ({exc})") from None
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != net.in_features:
        raise ValueError(f"at: expected x of shape ({net.in_features},) or (N, {net.in_features}), got {x.shape}")
    check_finite(x, "x (at)")
    if target is None:
        y = draw_target(net, loss, x.shape[0], make_rng(seed))
        return x, y, f"the given x (N = {x.shape[0]}), y drawn with seed {seed}"
    return x, resolve_target(net, loss, target, x.shape[0]), f"the given x and y (N = {x.shape[0]})"


def resolve_target(net: Sequential, loss: Loss, target: Any, n_rows: int) -> Any:
    from ..validation import check_finite

    y = np.array(to_numpy(target) if not isinstance(target, (list, tuple)) else target)
    if isinstance(loss, CrossEntropyLoss) and y.ndim <= 1:
        return y.reshape(-1)
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"target: expected numbers, got {target!r}") from None
    K = net.out_features
    if K is not None and y.ndim <= 1 and y.size == K * n_rows:
        y = y.reshape(n_rows, K)
    check_finite(y, "y (target)")
    return y


def evaluate_at(ex: Explanation, net: Sequential, loss: Loss, *, at: Any, target: Any,
              seed: Any, batch: int, check: bool, torch: bool | None) -> None:
    from ..gradcheck import float64_copy

    net64 = float64_copy(net)
    steps = layer_steps(net64)  # every Jacobian and check in float64, whatever the network's own dtype
    x, y, ex.point = resolve_point(net64, loss, at, target, seed, batch)
    vals = [x]
    for layer in net64.layers:
        vals.append(np.asarray(to_numpy(layer.forward(vals[-1])), dtype=np.float64))
    logits = reads_logits(net64, loss)
    J, dJ_dp = loss.fused(y, vals[-2]) if logits else loss(y, vals[-1])
    values: dict[str, np.ndarray] = {st.y.text: vals[st.index + 1] for st in steps}
    values = {"x": x, **values, "y": np.asarray(y), "J": np.asarray(float(J))}
    top = loss_step(steps, logits)[0]
    values[grad_symbol(top).text] = np.asarray(dJ_dp)
    fused_g = None
    if net64.fused_pair(loss) and not logits:
        fused_g = np.asarray(loss.fused(y, vals[-2])[1], dtype=np.float64)
    grads, jacobians, chain_checks = _chain(steps[:-1] if logits else steps, vals, np.asarray(dJ_dp), values, fused_g)
    if logits:  # shown and checked, though the fused gradient skips it
        last = steps[-1]
        jacobians = {partial_symbol(last.y, last.x).text: np.asarray(to_numpy(last.layer.jacobian(vals[-2]))), **jacobians}
    values.update(grads)
    ex.values = values
    ex.jacobian_values = {k: v[0] for k, v in reversed(list(jacobians.items()))}
    ex.jacobian_values[partial_symbol(Sym("J", "J"), top).text] = np.asarray(dJ_dp)[0]
    if check:
        ex.checks = chain_checks + _checks_at(net64, loss, steps, x, y, vals, float(J), grads, jacobians, torch,
                                              logits)


def _chain(steps: list[Step], vals: list[np.ndarray], dJ_dp: np.ndarray, values: dict[str, np.ndarray],
           fused_g: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Check]]:
    """Every gradient as the product of the Jacobians the chain names, formed explicitly.

    Per sample n: dJ/dθ = ∂J/∂ŷ · ∂ŷ/∂z · ... · ∂z_k/∂θ, where ∂z_k/∂W is the
    out × (out·in) matrix with entries ∂z_i/∂W_jk = δ_ij x_k (W flattened row by row,
    numerator layout); the 1 × (out·in) product is reshaped to W's (out, in) and summed
    over the N samples. ``fused_g`` is the loss's fused dJ/dz (sigmoid + BCE): where ŷ
    rounds to 0 or 1 in float64, ∂J/∂ŷ · ∂ŷ/∂z loses the product, as backward does not.
    """
    grads: dict[str, np.ndarray] = {}
    jacobians: dict[str, np.ndarray] = {}
    notes: list[Check] = []
    g = dJ_dp  # (N, out): row n is ∂J/∂(output) for sample n
    for st in reversed(steps):
        x_in = vals[st.index]
        Jk = np.asarray(to_numpy(st.layer.jacobian(x_in)), dtype=np.float64)  # (N, out, in)
        jacobians[partial_symbol(st.y, st.x).text] = Jk
        for key, p in st.params.items():
            size = x_in.shape[0] * st.layer.out_features ** 2 * x_in.shape[1] if isinstance(st.layer, Linear) else 0
            if size > MAX_PARAM_JACOBIAN_ENTRIES:  # a large trained model: the same product, by its structure
                grads[grad_symbol(p).text] = g.T @ x_in if key == "W" else g.sum(axis=0)
                continue
            P = param_jacobian(st.layer, key, x_in)
            if P is None:
                grads[grad_symbol(p).text] = _param_grad(st, key, g, x_in)
                continue
            jacobians[partial_symbol(st.y, p).text] = P
            row = np.einsum("no,nop->np", g, P)  # (1 × out)(out × out·in) per sample
            shape = np.shape(to_numpy(st.layer.params[key]))
            grads[grad_symbol(p).text] = row.sum(axis=0).reshape(shape)
        g = np.einsum("no,noi->ni", g, Jk)  # the vector-Jacobian product, sample by sample
        if fused_g is not None and st is steps[-1]:
            notes.append(_fused_check(grad_symbol(st.x).text, g, fused_g))
            g = fused_g
        if st.index > 0:
            values[grad_symbol(st.x).text] = g
    order = [grad_symbol(p).text for st in steps for p in st.params.values()]
    return {k: grads[k] for k in order}, jacobians, notes


def param_jacobian(layer: Layer, key: str, x_in: np.ndarray) -> np.ndarray | None:
    """∂(output)/∂(parameter) per sample, (N, out, size of the parameter), for Linear; else None.

    For W (out × in, flattened row by row): entry [n, i, j·in + k] = δ_ij x_nk.
    For b: the identity. Other layers with parameters use their own backward.
    """
    if not isinstance(layer, Linear):
        return None
    N, out = x_in.shape[0], layer.out_features
    eye = np.eye(out)
    if key == "b":
        return np.broadcast_to(eye, (N, out, out)).copy()
    return np.einsum("ij,nk->nijk", eye, x_in).reshape(N, out, out * x_in.shape[1])


def _param_grad(st: Step, key: str, g: np.ndarray, x_in: np.ndarray) -> np.ndarray:
    """A non-Linear layer's parameter gradient from dJ/d(output): its own backward (a vector-Jacobian product)."""
    layer = copy.deepcopy(st.layer)
    layer.zero_grad()
    layer.forward(x_in)
    layer.backward(g)
    return np.asarray(to_numpy(layer.grads[f"dJ_d{key}"]))


def _fused_check(name: str, product: np.ndarray, fused: np.ndarray) -> Check:
    """The unfused product ∂J/∂ŷ · ∂ŷ/∂z against the loss's fused dJ/dz; a saturated ŷ is a clamp."""
    from ..comparison import compare

    c = compare(name, product, fused, EXACT_RTOL * 1e3, 1e-12, against="fused loss gradient")
    if c.passed:
        c.note = "∂J/∂ŷ · ∂ŷ/∂z formed explicitly equals the fused form"
        return c
    c.passed, c.verdict = True, "clamp"
    c.note = ("ŷ rounds to 0 or 1 in float64 here, so ∂J/∂ŷ (clamped, as in PyTorch's BCELoss) times "
              "∂ŷ/∂z loses the product; the fused (σ(z) − y)/(N·K), which backward uses, is exact")
    return c


KINK_CONVENTION = ("the value handgrad and PyTorch both use at a kink is one of these one-sided slopes, "
                   "e.g. ReLU′(0) = 0, so the backward value is right")


def _checks_at(net64: Sequential, loss: Loss, steps: list[Step], x: np.ndarray, y: Any, vals: list[np.ndarray],
               J: float, grads: dict[str, np.ndarray], jacobians: dict[str, np.ndarray],
               torch: bool | None, logits: bool = False) -> list[Check]:
    from ..comparison import compare
    from ..gradcheck import loss_value
    from . import numeric as fd

    def add(quantity: str, against: str, analytic: Any, reference: Any, rtol: float, atol: float) -> None:
        checks.append(compare(quantity, analytic, reference, rtol, atol, against=against))

    checks: list[Check] = []
    top = steps[-1].y.text
    ref = copy.deepcopy(net64)
    ref.zero_grad()
    add(top, "network forward", vals[-1], to_numpy(ref.forward(x)), EXACT_RTOL, EXACT_ATOL)
    J_net = ref.backward_loss(loss, y)
    add("J", "network loss", np.asarray(J), np.asarray(float(J_net)), 1e-8, 1e-12)
    backward = {f"dJ/d{k[len('dJ_d'):]}": np.asarray(to_numpy(v)) for k, v in ref.grads.items()}
    for name, value in grads.items():
        add(name, "handgrad backward", value, backward[name], EXACT_RTOL, 1e-12)
    fd_net = copy.deepcopy(net64)
    rng = np.random.default_rng(0)
    for name, layer, key, _ in fd_net.parameter_slots():
        theta = layer.params[key]
        analytic = np.asarray(grads[f"dJ/d{name}"])
        picked = None
        if theta.size > MAX_FD_ENTRIES:  # a large layer: a random sample of its entries, named in the note
            picked = np.sort(rng.choice(theta.size, MAX_FD_ENTRIES, replace=False))
        phi = fd.looped(lambda: loss_value(fd_net, loss, x, y), theta, picked)
        x0 = theta.reshape(-1)[picked] if picked is not None else theta.copy()
        j = fd.judge(phi, x0.copy(), analytic.reshape(-1)[picked] if picked is not None else analytic)
        check = judged_check(f"dJ/d{name}", j)
        if picked is not None:
            sample = f"{MAX_FD_ENTRIES} of its {theta.size} entries, drawn at random"
            check.note = f"{sample}; {check.note}" if check.note else sample
        checks.append(check)
    checks.extend(_torch_checks(net64, loss, x, y, grads, torch, logits))
    loss_in = loss_step(steps, logits)[0].text
    checks.append(judged_check(f"dJ/d{loss_in}", _loss_judgement(loss, y, vals[-2] if logits else vals[-1], logits)))
    for st in steps:
        label = partial_symbol(st.y, st.x).text
        checks.append(_jacobian_check(st, label, vals[st.index], jacobians[label]))
    return checks


def judged_check(quantity: str, j: Any, against: str = "finite differences") -> Check:
    """A :class:`Check` from a finite-difference judgement: kinks and clamps named, not failed."""
    verdict = "kink" if j.count("kink") else ("clamp" if j.count("clamp") else "")
    return Check(quantity, j.rel_error(), j.max_abs_error(), passed=j.passed, note=j.note(KINK_CONVENTION),
                 against=against, verdict=verdict if j.passed else "")


def _skipped(quantity: str, against: str, why: str) -> Check:
    return Check(quantity, float("nan"), float("nan"), passed=True, note=why, against=against)


def _loss_judgement(loss: Loss, y: Any, p: np.ndarray, logits: bool) -> Any:
    """dJ/d(the loss's input) by finite differences inside the loss's domain (ŷ ∈ (0, 1) for BCE)."""
    from . import numeric as fd

    p64 = np.array(p, dtype=np.float64)
    y_np = np.asarray(y)
    y64 = np.array(y_np, dtype=np.float64) if y_np.dtype.kind == "f" else np.array(y_np)
    fn = (lambda: float(loss.fused(y64, p64)[0])) if logits else (lambda: float(loss(y64, p64)[0]))
    analytic = np.asarray((loss.fused(y64, p64) if logits else loss(y64, p64))[1], dtype=np.float64)
    if isinstance(loss, BCELoss) and not logits:  # nn.BCELoss clamps log at -100 and p(1 - p) at 1e-12
        return fd.judge(fd.looped(fn, p64), p64.copy(), analytic, lo=0.0, hi=1.0, clamped=p64 * (1 - p64) < 1e-12)
    return fd.judge(fd.looped(fn, p64), p64.copy(), analytic)


def _jacobian_check(st: Step, label: str, x_in: np.ndarray, Jk: np.ndarray) -> Check:
    """The explicit Jacobian against finite differences (kinks named), and its stated structure."""
    from . import numeric as fd

    n, out, inn = Jk.shape
    if n * out * inn > MAX_JACOBIAN_ENTRIES:
        return _skipped(label, "finite differences", "skipped: too large to difference")
    layer = copy.deepcopy(st.layer)
    parts = []
    for i in range(inn):  # samples are independent, so perturb column i of every row at once
        def phi(d: np.ndarray, i: int = i) -> np.ndarray:
            moved = x_in.copy()
            moved[:, i] += d
            return np.asarray(to_numpy(layer.forward(moved)), dtype=np.float64)

        parts.append(fd.judge(phi, x_in[:, i].copy(), Jk[:, :, i]))
    j = fd.merge(parts, axis=-1)
    check = judged_check(label, j)
    if st.layer.derivation_record().structure == "diagonal" and out == inn:
        numeric = np.where(np.isfinite(j.numeric), j.numeric, 0.0)
        off = numeric * (1 - np.eye(out))[None]
        diag = "diagonal confirmed" if np.max(np.abs(off), initial=0.0) < 1e-9 else "NOT diagonal numerically"
        check.note = f"{diag}; {check.note}" if check.note else diag
        check.passed = check.passed and not diag.startswith("NOT")
    return check


def _torch_checks(net64: Sequential, loss: Loss, x: np.ndarray, y: Any, grads: dict[str, np.ndarray],
                  want: bool | None, logits: bool = False) -> list[Check]:
    if want is False:
        return []
    from ..optional import MissingDependencyError, require

    try:
        torch = require("torch", extra="torch", purpose="checking against PyTorch autograd")
    except MissingDependencyError:
        if want:
            raise
        return [_skipped("gradients", "PyTorch autograd", "skipped: PyTorch not installed")]
    from ..comparison import compare
    from ..gradcheck import without_last
    from ..torch_interop import to_torch, torch_loss

    try:
        tnet = to_torch(without_last(net64) if logits else net64, dtype=torch.float64)
        fn = torch_loss(loss)
    except ValueError as exc:
        if want:
            raise
        return [_skipped("gradients", "PyTorch autograd", f"skipped: {exc}")]
    xt = torch.tensor(x, dtype=torch.float64)
    y_np = np.asarray(y)
    yt = torch.as_tensor(y_np.astype(np.int64)) if y_np.dtype.kind in "iu" else torch.tensor(y_np, dtype=torch.float64)
    fn(tnet(xt), yt).backward()
    linears = [m for m in tnet if isinstance(m, torch.nn.Linear)]
    out = []
    for mod, (suffix, _layer) in zip(linears, net64.named_layers()):
        for key, tparam in (("W", mod.weight), ("b", mod.bias)):
            name = f"dJ/d{key}{suffix}"
            if tparam is None or name not in grads:
                continue
            out.append(compare(name, grads[name], np.asarray(tparam.grad), EXACT_RTOL, 1e-12, against="PyTorch autograd"))
    return out


__all__ = ['EXACT_RTOL', 'FD_RTOL', 'KINK_CONVENTION', 'MAX_JACOBIAN_ENTRIES', 'evaluate_at', 'judged_check', 'param_jacobian', 'resolve_point', 'resolve_target']
