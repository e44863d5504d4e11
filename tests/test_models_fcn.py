"""Segmentation models of seed 003 (IFCN and the FCN / U-Net baselines): architecture, training, weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from urbaneo.errors import InputError
from urbaneo.models import fcn


@pytest.fixture(autouse=True)
def _cpu_settings():
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # tiny Adam states otherwise slow CPU steps many-fold


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> tuple[float, tuple]:
    """One Adam step on softmax cross-entropy (eq. 5); returns the loss and the logits' shape."""
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), tuple(logits.shape)


@pytest.mark.parametrize("name", fcn.MODELS)
def test_paper_preset_builds_and_trains_one_step(name, capsys):
    model = fcn.build(name, "paper")
    size = fcn.PRESETS["paper"]["input_size"]
    cost = fcn.complexity(model, (1, 1, size, size))
    with capsys.disabled():
        print(f"\n{name} paper: {cost['params']:,} params, {cost['gflops']:.2f} GFLOPs per {size}x{size} sample")
    if name != "unet":  # VGG16 with fc6/fc7 as 7x7 / 1x1 convolutions: ~134 M parameters
        assert 134.0e6 < cost["params"] < 134.5e6
        assert 40 < cost["gflops"] < 45
    x = torch.rand(1, 1, size, size)
    y = (x[:, 0] > 0.5).long()
    opt = torch.optim.Adam(fcn.param_groups(model, 1e-4))
    before = model.backbone.convs()[0].weight.clone() if name != "unet" else None
    loss, shape = _step(model, x, y, opt)
    assert math.isfinite(loss)
    assert shape == (1, 2, size, size)
    if before is not None:
        assert not torch.equal(before, model.backbone.convs()[0].weight)


def _blobs(n: int = 8, size: int = 96):
    """Chips with one bright disc (class 1) on a noisy dark background."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy, cx = (torch.randint(size // 3, size - size // 3, (n, 1, 1), generator=g) for _ in range(2))
    r = torch.randint(size // 5, size // 3, (n, 1, 1), generator=g)
    y = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2).long()
    x = y[:, None].float() + 0.2 * torch.randn(n, 1, size, size, generator=g)
    return x, y


@pytest.mark.parametrize("name", fcn.MODELS)
def test_demo_preset_overfits_a_tiny_task(name):
    x, y = _blobs()
    assert y.float().mean() < 0.3  # all-background scores < 0.7, so > 0.9 needs the discs
    # dropout off: this checks that the network can fit, which dropout exists to slow down
    model = fcn.build(name, "demo", dropout=0.0)
    opt = torch.optim.Adam(fcn.param_groups(model, 1e-3))
    acc = 0.0
    for step in range(1, 101):
        _step(model, x, y, opt)
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                acc = (model(x).argmax(1) == y).float().mean().item()
            if acc > 0.9:
                break
    assert acc > 0.9, f"{name}: pixel accuracy {acc:.3f} after {step} steps"


def test_ifcn_has_pool2_skip_and_two_batchnorms_fcn8s_has_neither():
    ifcn, fcn8 = fcn.build("ifcn", "demo"), fcn.build("fcn8s", "demo")
    assert set(ifcn.score_pool) == {"pool4", "pool3", "pool2"}
    assert set(fcn8.score_pool) == {"pool4", "pool3"}
    assert ifcn.factors == (2, 2, 2, 4) and fcn8.factors == (2, 2, 8)
    # BN right after the first two pools, nowhere else
    for k, block in enumerate(ifcn.backbone.blocks, start=1):
        kinds = [type(m) for m in block]
        if k <= 2:
            assert kinds[-2:] == [nn.MaxPool2d, nn.BatchNorm2d]
        else:
            assert nn.BatchNorm2d not in kinds
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ifcn.modules()) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fcn8.modules())
    assert sum(isinstance(m, nn.Dropout) for m in ifcn.modules()) == 1 and ifcn.backbone.drop.p == 0.5


def test_bilinear_upsampling_is_exact_and_centred():
    up = fcn._bilinear_upsampler(1, 4)
    flat = up(torch.ones(1, 1, 5, 5))
    assert flat.shape == (1, 1, 20, 20)
    assert torch.allclose(flat[..., 2:-2, 2:-2], torch.ones(1, 1, 16, 16))  # interior is interpolation
    ramp = up(torch.arange(5.0).repeat(5, 1)[None, None])[0, 0, 10, 2:-2]
    # coarse pixel i sits at fine i*4 + 1.5: values change linearly by 1/4 per fine pixel
    assert torch.allclose(ramp.diff(), torch.full_like(ramp.diff(), 0.25))
    assert torch.isclose(ramp[0], torch.tensor(0.125))  # fine pixel 2 is 0.5 px right of coarse 0's centre


def test_param_groups_lower_the_first_four_convolutions():
    model = fcn.build("ifcn", "demo")
    groups = {g["name"]: g for g in fcn.param_groups(model, 1e-3, low_lr_mult=0.1, bias_mult=2.0)}
    first4 = model.backbone.convs()[:4]
    assert {id(p) for p in groups["low_weight"]["params"]} == {id(c.weight) for c in first4}
    assert {id(p) for p in groups["low_bias"]["params"]} == {id(c.bias) for c in first4}
    assert groups["low_weight"]["lr"] == pytest.approx(1e-4) and groups["low_bias"]["lr"] == pytest.approx(2e-4)
    assert groups["weight"]["lr"] == pytest.approx(1e-3) and groups["bias"]["lr"] == pytest.approx(2e-3)
    assert groups["bias"]["weight_decay"] == 0.0
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # each trainable parameter exactly once
    assert all(not p.requires_grad for p in model.upsample.parameters())
    torch.optim.Adam(list(groups.values()))  # valid for the optimizer


def test_load_pretrained_vgg16_round_trip_and_mismatch(tmp_path):
    source = fcn.build("ifcn", "demo")
    path = tmp_path / "vgg16.pth"
    torch.save(fcn.vgg16_state_dict(source), path)
    target = fcn.build("fcn8s", "demo")
    assert fcn.load_pretrained_vgg16(target, path) == 30  # 13 convs + fc6 + fc7, weight and bias
    for a, b in zip(source.backbone.convs(), target.backbone.convs()):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)

    with pytest.raises(InputError, match="vgg16.pth: .*conv1_1 needs") as err:
        fcn.load_pretrained_vgg16(fcn.build("ifcn", "demo", in_channels=3), path)
    assert "\n" not in str(err.value)
    untouched = fcn.build("ifcn", "demo", in_channels=3)
    before = [c.weight.clone() for c in untouched.backbone.convs()]
    other = fcn.vgg16_state_dict(untouched)
    other["features.28.weight"] = other["features.28.weight"][:, :-1]  # conv5_3 mismatch after good layers
    torch.save(other, path)
    with pytest.raises(InputError, match="conv5_3 needs"):
        fcn.load_pretrained_vgg16(untouched, path)
    assert all(torch.equal(a, c.weight) for a, c in zip(before, untouched.backbone.convs()))  # nothing copied

    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="broken.pth: cannot read"):
        fcn.load_pretrained_vgg16(target, tmp_path / "broken.pth")
    with pytest.raises(InputError, match="missing.pth: pretrained VGG16 weights not found"):
        fcn.load_pretrained_vgg16(target, tmp_path / "missing.pth")


def test_rgb_torchvision_vgg16_fits_a_one_band_model(tmp_path):
    """Full torchvision layout (3-band conv1_1, Linear fc6/fc7) into a 1-band model of the same width."""
    model = fcn.build("ifcn", "demo")
    state = fcn.vgg16_state_dict(model)
    state["features.0.weight"] = torch.randn(state["features.0.weight"].shape[0], 3, 3, 3)
    torch.save(state, tmp_path / "rgb.pth")
    fcn.load_pretrained_vgg16(model, tmp_path / "rgb.pth")
    assert torch.allclose(model.backbone.convs()[0].weight, state["features.0.weight"].sum(1, keepdim=True))


@pytest.mark.parametrize("name", fcn.MODELS)
@pytest.mark.parametrize("size", [(96, 96), (100, 100), (37, 70)])
def test_output_matches_input_size(name, size):
    model = fcn.build(name, "demo").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, *size)).shape == (2, 2, *size)


def test_build_rejects_unknown_names():
    with pytest.raises(InputError, match="unknown model 'fcn4s'"):
        fcn.build("fcn4s")
    with pytest.raises(InputError, match="unknown preset 'huge'"):
        fcn.build("ifcn", "huge")


def test_complexity_counts_params_and_flops():
    model = fcn.build("fcn32s", "demo")
    one, two = fcn.complexity(model, (1, 1, 64, 64)), fcn.complexity(model, (2, 1, 64, 64))
    assert one["params"] == sum(p.numel() for p in model.parameters())
    assert two["gflops"] == pytest.approx(2 * one["gflops"])
    assert model.training  # mode restored
