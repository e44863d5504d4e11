"""The machine-learning baselines of seed 000's comparison (section IV-E-3, Fig. 16): linear
regression, an MLP and a deep belief network, fitted to the reference NPP.

They see the same inputs as the CiSL-NPP route, on the reference grid: the season's Landsat
composite (blue, green, red, NIR) gap-filled the conventional way (``predict.climatology_fill``; the
st-MAE reconstruction is CiSL-NPP's own contribution), the season's summed PAR, the OSM green
share and the season (one-hot). They train on the years before the held-out one and predict it,
with the forecast PAR there, as the st-MAE route does. The paper gives none of their settings;
ours: the MLP has two ReLU layers of 64 (Adam, early stopping); the DBN (Hinton & Salakhutdinov
2006) stacks two Bernoulli RBMs of 64 and 32 units trained greedily by CD-1 on inputs scaled to
[0, 1], then fine-tunes them with a linear output as a sigmoid MLP (Adam, MSE).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

METHODS = ("linear_regression", "mlp", "dbn")
LABELS = {"linear_regression": "Linear regression", "mlp": "MLP", "dbn": "DBN"}


class _Standard:
    def __init__(self, x: np.ndarray):
        self.mean, self.std = x.mean(0), x.std(0) + 1e-9

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def _rbm(data: torch.Tensor, hidden: int, epochs: int, gen: torch.Generator, lr: float = 0.05):
    """A Bernoulli RBM by one-step contrastive divergence; (weights, hidden bias)."""
    w = torch.randn(data.shape[1], hidden, generator=gen) * 0.01
    bv, bh = torch.zeros(data.shape[1]), torch.zeros(hidden)
    for _ in range(epochs):
        for idx in torch.randperm(len(data), generator=gen).split(32):
            v0 = data[idx]
            h0 = torch.sigmoid(v0 @ w + bh)
            v1 = torch.sigmoid(torch.bernoulli(h0, generator=gen) @ w.T + bv)
            h1 = torch.sigmoid(v1 @ w + bh)
            w += lr * (v0.T @ h0 - v1.T @ h1) / len(idx)
            bv += lr * (v0 - v1).mean(0)
            bh += lr * (h0 - h1).mean(0)
    return w, bh


def _dbn(x: np.ndarray, y: np.ndarray, seed: int, layers=(64, 32), epochs: int = 300):
    gen = torch.Generator().manual_seed(seed)
    lo, hi = x.min(0), x.max(0)
    scale = lambda a: np.clip((a - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)  # noqa: E731
    data = torch.tensor(scale(x), dtype=torch.float32)
    net, inputs = [], data
    for width in layers:  # greedy layer-wise pre-training
        w, bh = _rbm(inputs, width, 30, gen)
        lin = nn.Linear(inputs.shape[1], width)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(bh)
        net += [lin, nn.Sigmoid()]
        inputs = torch.sigmoid(inputs @ w + bh)
    torch.manual_seed(seed)
    model = nn.Sequential(*net, nn.Linear(layers[-1], 1))
    ym, ys = float(y.mean()), float(y.std() + 1e-9)
    target = torch.tensor((y - ym) / ys, dtype=torch.float32)[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):  # fine-tuning
        for idx in torch.randperm(len(data), generator=gen).split(32):
            opt.zero_grad()
            nn.functional.mse_loss(model(data[idx]), target[idx]).backward()
            opt.step()
    model.eval()

    def predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor(scale(a), dtype=torch.float32))[:, 0].numpy() * ys + ym
    return predict


def fit_predict(method: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """Fit ``method`` on (x_train, y_train) and predict x_test (NaN features are imputed by the mean)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.neural_network import MLPRegressor

    mean = np.nanmean(x_train, axis=0)
    x_train = np.where(np.isnan(x_train), mean, x_train)
    x_test = np.where(np.isnan(x_test), mean, x_test)
    if method == "dbn":
        return _dbn(x_train, y_train, seed)(x_test)
    std = _Standard(x_train)
    if method == "linear_regression":
        model = LinearRegression()
    elif method == "mlp":
        model = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=2000, early_stopping=len(x_train) >= 50,
                             random_state=seed)
    else:
        raise ValueError(f"unknown baseline {method!r}; one of {METHODS}")
    ym, ys = y_train.mean(), y_train.std() + 1e-9
    model.fit(std(x_train), (y_train - ym) / ys)
    return model.predict(std(x_test)) * ys + ym
