"""The PAR forecaster of seed 000: structure, training windows, forecasting a seasonal series."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from urbaneo.errors import InputError
from urbaneo.models import par_rnn


def seasonal(years: int = 7, seed: int = 0) -> np.ndarray:
    """Quarterly PAR sums (MJ m-2 per 90 days) with a seasonal cycle, a slow trend and weather noise."""
    rng = np.random.default_rng(seed)
    q = np.arange(4 * years)
    return 600 + 250 * np.sin(2 * np.pi * (q - 1) / 4) + 2.0 * q + rng.normal(0, 15, q.size)


def test_structure_is_the_papers():
    model = par_rnn.ParRNN(16)
    assert model.rnn.num_layers == 1 and model.rnn.nonlinearity == "tanh"
    assert any(isinstance(m, nn.ReLU) for m in model.head)
    assert model(torch.zeros(3, 5, 1)).shape == (3, 5, 1)


def test_windows_step_by_one():
    x, y = par_rnn.windows(np.arange(7.0), context=4)
    assert x.shape == (3, 4, 1) and y.shape == (3, 4, 1)
    assert x[1, :, 0].tolist() == [1, 2, 3, 4] and y[1, :, 0].tolist() == [2, 3, 4, 5]
    with pytest.raises(InputError, match="4 windows cannot train an RNN with a context of 4"):
        par_rnn.windows(np.arange(4.0), context=4)


def test_forecasts_the_held_out_year():
    result = par_rnn.evaluate(seasonal(), holdout=4, preset="demo", seed=0)
    assert result["loss_ratio"] < 0.08  # the paper's 90-day RNN: 3.2 %
    assert result["l1"] < 0.5 * result["persistence_l1"]  # it learned the season, not the last value
    assert result["hyperparameters"]["batch_size"] == 6 and result["hyperparameters"]["lr"] == 0.1


def test_training_is_reproducible_and_rejects_gaps():
    a = par_rnn.train(seasonal(), epochs=20, seed=3)["model"].state_dict()
    b = par_rnn.train(seasonal(), epochs=20, seed=3)["model"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    gappy = seasonal()
    gappy[5] = np.nan
    with pytest.raises(InputError, match="has missing windows"):
        par_rnn.train(gappy, epochs=1)


def test_a_short_history_trains_with_a_shorter_context():
    fitted = par_rnn.train(seasonal()[:4], epochs=5)
    assert fitted["hyperparameters"]["context"] == 3
    assert len(par_rnn.forecast(fitted, seasonal()[:4], 4)) == 4
    with pytest.raises(InputError, match="1 windows cannot train an RNN"):
        par_rnn.train(seasonal()[:1], epochs=1)


def test_paper_preset_trains_one_epoch():
    fitted = par_rnn.train(seasonal(), preset="paper", epochs=1)
    assert fitted["hyperparameters"]["epochs"] == 1 and len(fitted["history"]["epoch"]) == 1
    out = fitted["model"](torch.zeros(2, 4, 1))
    assert out.shape == (2, 4, 1)
