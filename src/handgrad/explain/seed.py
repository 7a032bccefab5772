"""The seed's mistakes, question by question: what it says and what is correct.

One table, read by ``explain`` (the mistakes of the question a preset answers) and by
``handgrad homework`` (each beside its computed counterexample).
"""

from __future__ import annotations

ERRATA: dict[str, tuple[str, str]] = {
    "1.1(a)": ("the backward pass \"computes the new gradient using SGD\"",
               "backward is backpropagation (the chain rule computes dJ/dθ); SGD is the fifth step, the update "
               "θ ← θ − lr·dJ/dθ"),
    "1.1(c)": ("z3 = 5 W2 z2 + b2 with z2 = 5(W1x + b1) (the ReLU's ⁺ dropped); dℓ/dz3 z2ᵀ = z2 dℓ/dz3",
               "z3 = W2 z2 + b2 with z2 = 5(W1x + b1)⁺; the seed's own sum Σ_i dℓ/dz3_i ∂z3_i/∂W2 is the K × m "
               "matrix (dℓ/dz3)ᵀ z2ᵀ, the gradient in W2's shape; dℓ/dz3 z2ᵀ ((1 × K)(1 × m)) is undefined and "
               "z2 dℓ/dz3 is its m × K transpose (numerator layout): both layouts are conventions, equating them "
               "is the mistake; likewise dℓ/dW1 = (dℓ/dz1)ᵀ xᵀ (m × n)"),
    "1.1(d)": ("dz2/dz1 is \"in R^K\", indices 1..K", "it is m × m: diag(5·1[z1_j > 0]), j = 1..m"),
    "1.2(a)": ("tanh' = 1 − tanh(z²); dz2/dz1 and dŷ/dz3 \"in R^K\"; dℓ/dW2 = tanh(W1x + b1) dℓ/dz3",
               "1 − tanh(z)²; dz2/dz1 is m × m and dŷ/dz3 is K × K (both diagonal); the weight gradients "
               "transpose as in 1.1(c)"),
    "1.2(b)": ("BCE term (1 − y_i)(1 − log ŷ_i); vector form with (1 − yᵀ); dℓ/dŷ_i without 1/K",
               "(1 − y_i) log(1 − ŷ_i); (1 − y)ᵀ log(1 − ŷ); dℓ/dŷ_i = −(1/K)(y_i/ŷ_i − (1 − y_i)/(1 − ŷ_i)); "
               "with sigmoid, dℓ/dz3 = (ŷ − y)ᵀ/K"),
    "1.2(c)": ("ReLU helps \"because its output is non-negative\"",
               "sigmoid's output is non-negative too; ReLU's slope is exactly 1 where active, so products of "
               "slopes do not shrink with depth, while sigmoid's (≤ 1/4) and tanh's (< 1 away from 0) vanish; "
               "a dead ReLU (slope 0) is ReLU's own failure"),
    "1.3(a)": ("softargmax is \"the largest element out of softmax\"",
               "softmax is a smooth arg max: softmax(βx) tends to the one-hot vector of the largest input as β "
               "grows, when the maximum is unique (with ties, to the uniform vector over the tied maxima)"),
    "1.3(b)": ("left blank", "the computational graph, drawn: handgrad graph"),
    "1.3(c)": ("left blank", "the four derivative plots, drawn: handgrad plot activations"),
    "1.3(d)": ("translation is a linear transformation",
               "translation is affine, not linear; rotation, reflection, scaling and shearing are linear"),
    "1.3(e)": ("argmin (1/N) Σ ‖F_i(x_i) − y_i‖²",
               "one network F for every sample: argmin_θ (1/N) Σ ‖F(x_i; θ) − y_i‖²"),
}


def errata_for(question: str) -> list[tuple[str, str, str]]:
    """(id, the seed says, correct) for the parts of ``question`` ("1.1", "1.2", ...)."""
    return [(qid, said, right) for qid, (said, right) in ERRATA.items() if qid.startswith(question + "(")]


__all__ = ["ERRATA", "errata_for"]
