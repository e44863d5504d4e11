"""Per-band standardisation of reflectance, fitted on a model's training data and saved with it."""

from __future__ import annotations

import numpy as np


class Scaler:
    """Per-band mean and std of (N, C, H, W) reflectance: st-MAE's "normalised pixels" (seed 000, eq. 1)
    and SU-Net's inputs."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.maximum(np.asarray(std, np.float32), 1e-6)

    @classmethod
    def fit(cls, images: np.ndarray) -> "Scaler":
        """``images`` (N, C, H, W) reflectance; NaN ignored."""
        return cls(np.nanmean(images, axis=(0, 2, 3)), np.nanstd(images, axis=(0, 2, 3)))

    def forward(self, images: np.ndarray) -> np.ndarray:
        return (images - self.mean[:, None, None]) / self.std[:, None, None]

    def inverse(self, images: np.ndarray) -> np.ndarray:
        return images * self.std[:, None, None] + self.mean[:, None, None]
