"""Cheat: the result file is a compressed archive that unpacks to far more than it holds."""

import zipfile

import numpy as np
from impl_correct_numpy import MLP, bce_loss, mse_loss  # noqa: F401


def bomb(path, **arrays):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("t0_y_hat.npy", "w", force_zip64=True) as f:
            zeros = bytes(1 << 20)
            for _ in range(256):  # 256 MiB of zeros, a few hundred KiB compressed
                f.write(zeros)


np.savez = bomb
