"""Write a generated class of homework submissions, for grading a class end to end and timing it.

    python tests/gallery/make_class.py OUT_FOLDER [N]

Each student is a standalone copy of impl_correct_numpy.py with at most one planted
mistake (chosen in turn from MISTAKES); every fifth is handed in as a zip, every
seventh as a folder, the rest as a single .py file. Returns the expected named
mistake of each student.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

CORRECT = (Path(__file__).with_name("impl_correct_numpy.py")).read_text()

# (name, text to replace, replacement, (quantity, mistake id) the check must name, or None for correct work)
MISTAKES = [
    ("correct", "", "", None),
    ("transposed", "return dJdz.T @ inputs", "return inputs.T @ dJdz", ("dJdW1", "transposed")),
    ("mse_sign", "return np.mean(diff**2), 2 * diff / diff.size", "return np.mean(diff**2), -2 * diff / diff.size",
     ("dJdy_hat", "scale:-1")),
    ("bias_mean", "return dJdz.sum(axis=0)", "return dJdz.mean(axis=0)", ("dJdb1", "bias_averaged_over_batch")),
    ("accumulate", "self.grads[name] = value", "self.grads[name] = self.grads[name] + value",
     None),  # clear_grad_and_cache zeroes them here, so this is correct too
    ("sum_loss", "return np.mean(diff**2), 2 * diff / diff.size", "return np.sum(diff**2), 2 * diff",
     ("dJdy_hat", "scale:NK")),
    ("not_written", "    def forward(self, x):\n", "    def forward(self, x):\n        raise NotImplementedError\n",
     None),
]


def write_class(out: Path, n: int) -> dict[str, tuple[str, str] | None]:
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for i in range(n):
        name, old, new, named = MISTAKES[i % len(MISTAKES)]
        source = CORRECT.replace(old, new, 1) if old else CORRECT
        student = f"student{i:03d}_{name}"
        if i % 5 == 4:
            with zipfile.ZipFile(out / f"{student}.zip", "w") as z:
                z.writestr(f"{student}/mlp.py", source)
        elif i % 7 == 6:
            (out / student).mkdir(exist_ok=True)
            (out / student / "mlp.py").write_text(source)
        else:
            (out / f"{student}.py").write_text(source)
        expected[student] = named
    return expected


if __name__ == "__main__":
    write_class(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 200)
