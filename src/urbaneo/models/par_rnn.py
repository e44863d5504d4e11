"""The PAR forecaster of seed 000 (section IV-C-2, Table 3): a lightweight autoregressive RNN.

PAR products end before the imagery does (the paper's stop in 2019), so CiSL-NPP forecasts the
city's PAR series, summed over windows of 15/30/60/90 days (``readers.par.aggregate``), where it has
no data yet. Training fits each window's successor ("sampling at each moment, fitting samples at the
next moment") over windows of ``context`` steps taken one step apart; forecasting feeds each
prediction back as the next input. Hyper-parameters and our choices: ``presets.PAR_RNN``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..errors import InputError
from ..presets import PAR_RNN


class ParRNN(nn.Module):
    """One tanh RNN layer and an MLP head with ReLU: (N, T, 1) -> the next value after each step."""

    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, num_layers=1, nonlinearity="tanh", batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out)


def windows(series: np.ndarray, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs s[i : i+context] and targets s[i+1 : i+context+1] for every i (step 1), as (N, context, 1)."""
    s = np.asarray(series, np.float32)
    n = len(s) - context
    if n < 1:
        raise InputError("PAR series", f"{len(s)} windows cannot train an RNN with a context of {context}: "
                                       f"at least {context + 1} are needed")
    x = np.stack([s[i:i + context] for i in range(n)])[..., None]
    y = np.stack([s[i + 1:i + context + 1] for i in range(n)])[..., None]
    return torch.from_numpy(x), torch.from_numpy(y)


def train(series, *, preset: str = "demo", seed: int = 0, epochs: int | None = None, progress: bool = False) -> dict:
    """Fit the RNN on ``series`` (window sums, in order, without gaps); returns the model and its facts."""
    from ..training import fit, seed_everything

    hp = dict(PAR_RNN[preset])
    if epochs is not None:
        hp["epochs"] = min(hp["epochs"], int(epochs))
    series = np.asarray(series, np.float64)
    if not np.isfinite(series).all():
        raise InputError("PAR series", "has missing windows (NaN); the RNN needs a gap-free series")
    if 2 <= len(series) <= hp["context"]:  # a short history (a city with two years of data):
        hp["context"] = len(series) - 1  # shorter windows still teach the step; the facts say so
    scale = float(series.mean())  # the RNN sees the series in units of its mean, so lr 0.1 is stable
    seed_everything(seed)
    model = ParRNN(hp["hidden"])
    x, y = windows(series / scale, hp["context"])
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=hp["batch_size"], shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=hp["halve_every"], gamma=0.5)
    history = fit(model, loader, loss_fn=nn.L1Loss(), optimizer=optimizer, epochs=hp["epochs"], seed=seed,
                  scheduler=scheduler, generator=generator, progress=progress, log_every=0)
    return {"model": model.cpu().eval(), "scale": scale, "hyperparameters": hp, "history": history}


def forecast(fitted: dict, history, steps: int) -> np.ndarray:
    """The next ``steps`` window sums after ``history`` (in PAR units), each fed back as input."""
    model, scale = fitted["model"], fitted["scale"]
    values = list(np.asarray(history, np.float64) / scale)
    with torch.no_grad():
        for _ in range(steps):
            x = torch.tensor(values, dtype=torch.float32)[None, :, None]
            values.append(float(model(x)[0, -1, 0]))
    return np.asarray(values[len(values) - steps:]) * scale


def evaluate(series, *, holdout: int, preset: str = "demo", seed: int = 0, epochs: int | None = None) -> dict:
    """Table 3 on ``series``: train on all but the last ``holdout`` windows, forecast them.

    Returns the mean PAR, the L1 error of the forecast (PAR units) and its ratio to the mean (the
    paper's "loss ratio"), beside persistence (the last known window repeated) as a floor.
    """
    series = np.asarray(series, np.float64)
    train_part, truth = series[:-holdout], series[-holdout:]
    fitted = train(train_part, preset=preset, seed=seed, epochs=epochs)
    predicted = forecast(fitted, train_part, holdout)
    l1 = float(np.abs(predicted - truth).mean())
    persistence = float(np.abs(train_part[-1] - truth).mean())
    mean = float(truth.mean())
    return {"par_mean": mean, "l1": l1, "loss_ratio": l1 / mean, "persistence_l1": persistence,
            "forecast": predicted.tolist(), "truth": truth.tolist(), "hyperparameters": fitted["hyperparameters"]}
