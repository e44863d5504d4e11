"""Segmentation networks of the urban construction-land product (seed 003, section 3.2.2).

`IFCN` is FCN-8s on a VGG16 backbone with the paper's changes: BatchNorm after pool1 and pool2, an extra
pool2 skip, four balanced upsampling steps (x2, x2, x2, x4), crops with corrected offsets, lower learning
rates on the first four convolutions (`param_groups`), Xavier initialisation and dropout in fc6/fc7.
`FCN32s` / `FCN16s` / `FCN8s` (Long et al.) and a 4-level `UNet` are the deep baselines.

Geometry (the "crop offsets"): every 3x3 convolution is padded by 1 and fc6 (7x7) by 3, so pool_k of an
input of size S is exactly S / 2**k. Each upsampling is a transposed convolution with kernel 2f, stride f
and padding f/2, fixed to bilinear interpolation (eq. 2): its output is exactly f times its input and the
kernel peak of coarse pixel i lands on i*f + (f-1)/2, the centre of the fine pixels pooled into it. So every
fused pair of maps matches with crop offset 0 (Caffe's FCN pads the input by 100 and needs offsets 5, 9 and
31 instead). Inputs that are not a multiple of 32 are padded (edge-replicated, centred) and the logits are
cropped back with the offset of that padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from urbaneo.errors import InputError

MODELS = ("ifcn", "fcn32s", "fcn16s", "fcn8s", "unet")
# demo: narrow and small chips (36 px VIIRS chips upsampled to 64) so it trains on a CPU in minutes;
# paper: full VGG16 width and the paper's 224 x 224 inputs (section 3.2.1)
PRESETS = {
    "demo": {"width": 0.125, "input_size": 64},
    "paper": {"width": 1.0, "input_size": 224},
}
# VGG16 convolution blocks; each ends with a 2x2 max pool
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
FC_CHANNELS = 4096


def _ch(n: int, width: float) -> int:
    return max(4, int(round(n * width)))


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W up to a multiple, centred, by edge replication; returns the (top, left) offsets."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    top, left = ph // 2, pw // 2
    if ph or pw:
        x = F.pad(x, (left, pw - left, top, ph - top), mode="replicate")
    return x, (top, left)


def _xavier(model: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every (transposed) convolution (eq. 3)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Per-channel transposed convolution fixed to bilinear interpolation by `factor` (exact f x size)."""
    k = 2 * factor
    up = nn.ConvTranspose2d(channels, channels, k, stride=factor, padding=factor // 2,
                            groups=channels, bias=False)
    centre = factor - 0.5  # kernel size is even
    # the kernel from a list, not torch.arange: building on the meta device (complexity counts) then
    # needs no tensor factory decomposition, which would import torch's compiler stack (seconds)
    ramp = torch.tensor([1 - abs(i - centre) / factor for i in range(k)], dtype=torch.float32, device="cpu")
    with torch.no_grad():
        up.weight.copy_((ramp[:, None] * ramp[None, :]).expand(channels, 1, k, k).to(up.weight.device))
    up.weight.requires_grad_(False)  # as in the reference FCNs: bilinear, not learned
    return up


class VGG16Backbone(nn.Module):
    """VGG16 convolutions (width-scaled) plus fc6 / fc7 as 7x7 / 1x1 convolutions with dropout."""

    def __init__(self, in_channels: int = 1, width: float = 1.0, dropout: float = 0.5,
                 bn_after_pool: tuple[int, ...] = ()):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.pool_channels = []
        prev = in_channels
        for i, block in enumerate(VGG16_BLOCKS):
            layers: list[nn.Module] = []
            for n in block:
                ch = _ch(n, width)
                layers += [nn.Conv2d(prev, ch, 3, padding=1), nn.ReLU(inplace=True)]
                prev = ch
            layers.append(nn.MaxPool2d(2, 2))
            if i + 1 in bn_after_pool:  # IFCN: "two batch normalization layers ... for the first two pooling layers"
                layers.append(nn.BatchNorm2d(prev))
            self.blocks.append(nn.Sequential(*layers))
            self.pool_channels.append(prev)
        fc = _ch(FC_CHANNELS, width)
        self.fc6 = nn.Conv2d(prev, fc, 7, padding=3)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.fc_channels = fc
        self.drop = nn.Dropout(dropout)

    def convs(self) -> list[nn.Conv2d]:
        """The 13 VGG16 convolutions, then fc6 and fc7."""
        return [m for b in self.blocks for m in b if isinstance(m, nn.Conv2d)] + [self.fc6, self.fc7]

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        pools = []
        for block in self.blocks:
            x = block(x)
            pools.append(x)
        x = self.drop(F.relu(self.fc6(x)))
        x = self.drop(F.relu(self.fc7(x)))
        return pools, x


class _FCN(nn.Module):
    """FCN on VGG16: score fc7, then upsample by `factors[j]` and add the score of pool `skips[j]`."""

    skips: tuple[int, ...] = ()
    factors: tuple[int, ...] = (32,)
    bn_after_pool: tuple[int, ...] = ()

    def __init__(self, in_channels: int = 1, n_classes: int = 2, width: float = 1.0, dropout: float = 0.5):
        super().__init__()
        assert len(self.factors) == len(self.skips) + 1 and _prod(self.factors) == 32
        self.backbone = VGG16Backbone(in_channels, width, dropout, self.bn_after_pool)
        self.score_fr = nn.Conv2d(self.backbone.fc_channels, n_classes, 1)
        self.score_pool = nn.ModuleDict(
            {f"pool{k}": nn.Conv2d(self.backbone.pool_channels[k - 1], n_classes, 1) for k in self.skips})
        _xavier(self)
        self.upsample = nn.ModuleList(_bilinear_upsampler(n_classes, f) for f in self.factors)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, (top, left) = _pad_to(x, 32)
        pools, fc = self.backbone(x)
        score = self.score_fr(fc)
        for up, k in zip(self.upsample, self.skips):
            score = up(score) + self.score_pool[f"pool{k}"](pools[k - 1])  # offset 0 by construction
        score = self.upsample[-1](score)
        return score[..., top:top + h, left:left + w]


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


class FCN32s(_FCN):
    """Long et al. FCN-32s: fc7 score upsampled x32."""


class FCN16s(_FCN):
    """Long et al. FCN-16s: x2, fuse pool4, x16."""
    skips, factors = (4,), (2, 16)


class FCN8s(_FCN):
    """Long et al. FCN-8s: x2, fuse pool4, x2, fuse pool3, x8."""
    skips, factors = (4, 3), (2, 2, 8)


class IFCN(_FCN):
    """Seed 003's improved FCN-8s: BN after pool1 and pool2; x2 + pool4, x2 + pool3, x2 + pool2, x4.

    The pool2 skip forces a third x2 step; the remaining x4 (instead of FCN-8s' final x8) makes the four
    factors as even as integer steps to the input size allow ("averaged the multiple of the four
    upsampling processes").
    """
    skips, factors, bn_after_pool = (4, 3, 2), (2, 2, 2, 4), (1, 2)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """Standard 4-level U-Net (64-128-256-512, 1024 bottleneck at width 1) with BatchNorm."""

    def __init__(self, in_channels: int = 1, n_classes: int = 2, width: float = 1.0):
        super().__init__()
        ch = [_ch(64 * 2 ** i, width) for i in range(5)]
        self.down = nn.ModuleList(_double_conv(a, b) for a, b in zip([in_channels] + ch[:3], ch[:4]))
        self.bottom = _double_conv(ch[3], ch[4])
        self.up = nn.ModuleList(nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(4)))
        self.dec = nn.ModuleList(_double_conv(2 * ch[i], ch[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(ch[0], n_classes, 1)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, (top, left) = _pad_to(x, 16)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)[..., top:top + h, left:left + w]


_CLASSES = {"ifcn": IFCN, "fcn32s": FCN32s, "fcn16s": FCN16s, "fcn8s": FCN8s, "unet": UNet}


def build(name: str, preset: str = "demo", in_channels: int = 1, n_classes: int = 2,
          dropout: float = 0.5) -> nn.Module:
    """A model by name ("ifcn", "fcn32s", "fcn16s", "fcn8s", "unet") at the width of `preset`."""
    if name not in _CLASSES:
        raise InputError("model", f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if preset not in PRESETS:
        raise InputError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    width = PRESETS[preset]["width"]
    if name == "unet":
        return UNet(in_channels, n_classes, width)
    return _CLASSES[name](in_channels, n_classes, width, dropout)


def param_groups(model: nn.Module, lr: float, low_lr_mult: float = 0.1, bias_mult: float = 2.0) -> list[dict]:
    """Adam parameter groups with Caffe-style multipliers.

    Caffe's FCN nets give weights lr_mult 1 / decay_mult 1 and biases lr_mult 2 / decay_mult 0; the paper
    lowers both coefficients on the first four convolutions (it gives no values; `low_lr_mult` scales
    them). So: first-four weights lr * low_lr_mult, first-four biases lr * low_lr_mult * bias_mult,
    other weights lr, other biases lr * bias_mult; biases get weight_decay 0 (decay_mult 0). Frozen
    parameters (the bilinear upsamplers) are left out.
    """
    first4 = [m for m in model.modules() if isinstance(m, nn.Conv2d)][:4]
    low = {id(p) for m in first4 for p in m.parameters()}
    groups: dict[str, dict] = {
        "low_weight": {"params": [], "lr": lr * low_lr_mult},
        "low_bias": {"params": [], "lr": lr * low_lr_mult * bias_mult, "weight_decay": 0.0},
        "weight": {"params": [], "lr": lr},
        "bias": {"params": [], "lr": lr * bias_mult, "weight_decay": 0.0},
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = ("low_" if id(p) in low else "") + ("bias" if name.endswith("bias") else "weight")
        groups[key]["params"].append(p)
    return [{"name": k, **g} for k, g in groups.items() if g["params"]]


def _torchvision_keys() -> list[tuple[str, str]]:
    """(weight, bias) keys of torchvision's vgg16 for the 13 convolutions, fc6 and fc7."""
    keys, idx = [], 0
    for block in VGG16_BLOCKS:
        for _ in block:
            keys.append((f"features.{idx}.weight", f"features.{idx}.bias"))
            idx += 2  # conv, relu
        idx += 1  # pool
    return keys + [("classifier.0.weight", "classifier.0.bias"), ("classifier.3.weight", "classifier.3.bias")]


def _backbone(model: nn.Module) -> VGG16Backbone:
    if not isinstance(getattr(model, "backbone", None), VGG16Backbone):
        raise TypeError(f"{type(model).__name__} has no VGG16 backbone")
    return model.backbone


def vgg16_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's backbone as a torchvision-style vgg16 state dict (fc6/fc7 flattened to Linear)."""
    out = {}
    for conv, (wk, bk) in zip(_backbone(model).convs(), _torchvision_keys()):
        w = conv.weight.detach().clone()
        out[wk] = w.flatten(1) if wk.startswith("classifier") else w
        out[bk] = conv.bias.detach().clone()
    return out


def load_pretrained_vgg16(model: nn.Module, path: str | Path) -> int:
    """Copy VGG16 weights from a torchvision-style state dict at `path` into the model's backbone.

    The 13 convolutions are required; classifier.0 / classifier.3 (if present) become fc6 / fc7
    (Long et al.'s "convolutionalisation"). RGB conv1_1 weights are summed over colour for a 1-band model
    (a grey image gives the same response). Nothing is downloaded; returns the number of tensors copied.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "pretrained VGG16 weights not found (set the path in the config; nothing is downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(path, f"cannot read as a torch state dict ({type(exc).__name__})") from exc
    if not isinstance(state, Mapping):
        raise InputError(path, f"expected a VGG16 state dict, found a {type(state).__name__}")
    convs = _backbone(model).convs()
    names = [f"conv{b + 1}_{i + 1}" for b, block in enumerate(VGG16_BLOCKS) for i in range(len(block))] + ["fc6", "fc7"]
    plan = []  # check everything before copying anything
    for conv, name, (wk, bk) in zip(convs, names, _torchvision_keys()):
        if wk not in state or bk not in state:
            if name.startswith("fc"):
                continue  # a features-only file: fc6/fc7 keep their initialisation
            raise InputError(path, f"missing {wk} / {bk}: not a torchvision VGG16 state dict")
        w, b = state[wk], state[bk]
        if name == "conv1_1" and w.ndim == 4 and w.shape[1] == 3 and conv.in_channels == 1:
            w = w.sum(dim=1, keepdim=True)
        if w.numel() == conv.weight.numel() and w.ndim == 2:
            w = w.reshape(conv.weight.shape)
        if w.shape != conv.weight.shape or b.shape != conv.bias.shape:
            raise InputError(path, f"{wk} has shape {tuple(state[wk].shape)} but {name} needs "
                                   f"{tuple(conv.weight.shape)} (full-width VGG16 weights fit the 'paper' preset)")
        plan.append((conv, w, b))
    with torch.no_grad():
        for conv, w, b in plan:
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    return 2 * len(plan)


def complexity(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """Parameter count and GFLOPs (multiply and add counted as 2) of one forward pass of `input_shape`."""
    params = sum(p.numel() for p in model.parameters())
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_shape))
    finally:
        model.train(training)
    return {"params": int(params), "gflops": counter.get_total_flops() / 1e9}
