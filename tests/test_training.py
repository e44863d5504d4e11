"""The shared training loop: determinism, checkpoint/resume after a crash, checkpoint errors, predict."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from urbaneo.errors import InputError
from urbaneo.training import autocast, device, fit, load_checkpoint, predict, seed_everything

EPOCHS = 4
BATCHES_PER_EPOCH = 4


def _setup(seed: int = 7):
    """A tiny model with dropout (uses the torch RNG), shuffled data (uses the generator), Adam + StepLR."""
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    x = torch.randn(32, 5)
    y = torch.randint(0, 3, (32,))
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x, y), batch_size=32 // BATCHES_PER_EPOCH, shuffle=True, generator=generator)
    val = DataLoader(TensorDataset(x[:8], y[:8]), batch_size=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return model, dict(train_loader=train, val_loader=val, optimizer=optimizer, scheduler=scheduler,
                       generator=generator, loss_fn=nn.functional.cross_entropy, seed=seed, progress=False)


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


class _Crash(Exception):
    pass


def _crashing_loss(after_steps: int):
    """cross-entropy that raises on training step ``after_steps + 1``, like a job killed mid-epoch."""
    calls = {"n": 0}

    def loss(out, target):
        if torch.is_grad_enabled():  # count training steps only, not validation
            calls["n"] += 1
            if calls["n"] > after_steps:
                raise _Crash
        return nn.functional.cross_entropy(out, target)

    return loss


def test_resume_after_kill_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    straight, kw = _setup()
    history = fit(straight, epochs=EPOCHS, checkpoint=tmp_path / "straight.pt", **kw)
    assert history["epoch"] == [1, 2, 3, 4] and all(v is not None for v in history["val_loss"])

    # first run dies in the middle of epoch 3: the epoch-2 checkpoint stays, no temporary file is left
    ckpt = tmp_path / "killed.pt"
    killed, kw = _setup()
    with pytest.raises(_Crash):
        fit(killed, epochs=EPOCHS, checkpoint=ckpt, **{**kw, "loss_fn": _crashing_loss(2 * BATCHES_PER_EPOCH + 1)})
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    after_two = load_checkpoint(ckpt, _setup()[0])
    assert after_two["epoch"] == 2

    # a new process: fresh objects, same config, same checkpoint path -> continues at epoch 3
    resumed, kw = _setup()
    resumed_history = fit(resumed, epochs=EPOCHS, checkpoint=ckpt, **kw)
    _assert_same_weights(resumed, straight)
    assert resumed_history == history
    # and it did train after the resume (the weights moved on from the epoch-2 state)
    assert not torch.equal(after_two["model"]["0.weight"], resumed.state_dict()["0.weight"])

    # running again on a finished checkpoint trains nothing and keeps the weights
    again, kw = _setup()
    assert fit(again, epochs=EPOCHS, checkpoint=ckpt, **kw) == history
    _assert_same_weights(again, straight)


def test_same_seed_same_weights_other_seed_other_weights():
    a, kw = _setup(seed=3)
    fit(a, epochs=2, **kw)
    b, kw = _setup(seed=3)
    fit(b, epochs=2, **kw)
    _assert_same_weights(a, b)
    c, kw = _setup(seed=4)
    fit(c, epochs=2, **kw)
    assert not torch.equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])


def test_load_checkpoint_rejects_bad_files(tmp_path):
    model, kw = _setup()
    good = tmp_path / "good.pt"
    fit(model, epochs=1, checkpoint=good, **kw)

    with pytest.raises(InputError, match=r"missing\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", model)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(InputError, match=r"garbage\.pt: not a readable checkpoint"):
        load_checkpoint(garbage, model)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match=r"truncated\.pt: not a readable checkpoint"):
        load_checkpoint(truncated, model)

    other = tmp_path / "other.pt"
    torch.save({"hello": "world"}, other)
    with pytest.raises(InputError, match=r"other\.pt: not a urbaneo checkpoint"):
        load_checkpoint(other, model)

    wider = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    with pytest.raises(InputError, match=r"good\.pt: checkpoint does not fit Sequential: shape mismatch: 0\.bias"):
        load_checkpoint(good, wider)
    deeper = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3), nn.Linear(3, 3))
    with pytest.raises(InputError, match=r"good\.pt: .*missing: 4\.bias, 4\.weight"):
        load_checkpoint(good, deeper)
    with pytest.raises(InputError) as err:
        load_checkpoint(good, deeper)
    assert "\n" not in str(err.value)

    # a bare state dict (e.g. exported weights) loads too, but cannot be resumed from
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    fresh, kw = _setup(seed=99)
    load_checkpoint(bare, fresh)
    _assert_same_weights(fresh, model)
    with pytest.raises(InputError, match=r"bare\.pt: holds weights only"):
        fit(fresh, epochs=2, checkpoint=bare, **kw)


def test_predict_is_eval_mode_and_concatenates_batches():
    model, kw = _setup()
    x = torch.randn(10, 5)
    out = predict(model, DataLoader(TensorDataset(x), batch_size=4))
    assert out.shape == (10, 3) and out.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(out, model.eval()(x))  # dropout off: same as the eval-mode model


def test_device_and_autocast_on_this_machine():
    dev = device()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with autocast(dev):
        y = torch.ones(2, 2, device=dev) @ torch.ones(2, 2, device=dev)
    assert y.dtype == (torch.bfloat16 if dev.type == "cuda" else torch.float32)


def test_save_writes_the_same_bytes_whatever_the_file_name(tmp_path):
    from urbaneo.training import save

    obj = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"epochs": 3}}
    a, b = save(obj, tmp_path / "a.pt"), save(obj, tmp_path / "other" / "b.pt")
    assert a.read_bytes() == b.read_bytes()
    assert torch.equal(torch.load(b, weights_only=True)["w"], obj["w"])


def test_the_log_says_counts_every_epoch_and_a_resume(tmp_path, caplog):
    caplog.set_level("INFO", logger="urbaneo.training")
    model, kw = _setup()
    fit(model, epochs=2, checkpoint=tmp_path / "ck.pt", **kw)
    model, kw = _setup()
    fit(model, epochs=3, checkpoint=tmp_path / "ck.pt", **kw)
    lines = [r.getMessage() for r in caplog.records]
    assert "training Sequential: 32 samples in 4 batches per epoch, epochs 1-2" in lines
    epochs = [line for line in lines if line.startswith("epoch ") and " val loss " in line and line.endswith(" s)")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2", "3/3"]
    assert f"resumed from epoch 2 of {tmp_path / 'ck.pt'}" in lines
