"""SU-Net of seed 002 (section 3): a two-stream Swin-V2 network for Local Climate Zone scenes.

* **PSC-Net** (3.1.1) classifies pure scenes: Swin-V2 backbone, global average pool, dropout, a
  linear layer to the 17 LCZ classes, then ReLU (ANC, eq. 1) and softmax (ASC, eq. 2). ``classify``
  returns the ReLU outputs; softmax of them is the class probability (the loss applies it in log
  space, which is the same constraint computed stably).
* **MSU-Net** (3.1.2) unmixes mixed scenes: the *same* backbone module (parameters shared with
  PSC-Net), its own constrained head whose softmax is the 17-class abundance vector (the
  bottleneck), and a UperNet decoder (pyramid pooling module on the last stage + feature pyramid
  with skip connections from stages 1-3, Xiao et al. 2018) that reconstructs the image.
  How the abundances enter the decoder is not said; ours: they replace the PPM's global (1x1) bin,
  the branch that carries a scene-level summary, through a linear projection, so the
  reconstruction depends on the unmixing.
* **Losses** (3.2): cross-entropy of PSC-Net on pure scenes, cross-entropy against the class
  fractions for MSU-Net on mixed scenes, L1 between the reconstruction and the (normalised) mixed
  scene; their weights are learnt by GradNorm (Chen et al. 2018, asymmetry ``alpha``) on the last
  shared layer, the backbone's final LayerNorm.

The backbone is torchvision's ``SwinTransformer`` with Swin-V2 blocks and patch merging: exactly
``swin_v2_t`` in the `paper` preset (4x4 patch embedding, window 8 at 256 px; the paper's "16*16
patches" cannot be Swin-V2's patch embedding, so we keep Swin-V2's), a narrow one in `demo`. Its
first convolution takes the 4 VHR bands (blue, green, red, NIR).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2

from ..errors import InputError
from ..presets import SU_NET

N_CLASSES = 17
TASKS = ("pure CE", "mixed CE", "reconstruction L1")
HEAD_BIAS = 1.0  # see ConstrainedHead
_STAGES = (1, 3, 5, 7)  # indices of the four Swin stages in SwinTransformer.features


class Backbone(nn.Module):
    """Swin-V2 returning the four stage outputs (N, C_i, H/4/2^i, W/4/2^i); the last one normalised."""

    def __init__(self, p: dict, in_channels: int = 4):
        super().__init__()
        swin = SwinTransformer(patch_size=[4, 4], embed_dim=p["embed_dim"], depths=p["depths"], num_heads=p["heads"],
                               window_size=[p["window"]] * 2, stochastic_depth_prob=p["stochastic_depth"],
                               block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2)
        swin.features[0][0] = nn.Conv2d(in_channels, p["embed_dim"], kernel_size=4, stride=4)
        self.features, self.norm = swin.features, swin.norm  # torchvision's names: its weights load as they are
        self.channels = [p["embed_dim"] * 2**i for i in range(len(p["depths"]))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _STAGES:
                out.append(x)
        out[-1] = self.norm(out[-1])
        return [f.permute(0, 3, 1, 2) for f in out]  # NHWC -> NCHW


class ConstrainedHead(nn.Module):
    """Pooled features -> dropout -> linear -> ReLU (ANC); softmax of the result is sum-to-one (ASC).

    The linear layer's bias starts at HEAD_BIAS, not 0: a ReLU output that is 0 passes no gradient,
    so a class whose output starts silenced for a scene cannot be raised by that scene's loss; with
    a positive start every class begins active (on the demo city, at a constant rate: pure-scene OA
    0.89 against 0.76 after 12 epochs).
    """

    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, N_CLASSES)
        nn.init.constant_(self.fc.bias, HEAD_BIAS)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.drop(feature.mean(dim=(2, 3)))))


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UperNetDecoder(nn.Module):
    """PPM + FPN (UperNet) from the backbone stages and the abundances back to the image's bands."""

    def __init__(self, channels: list[int], width: int, out_channels: int = 4, bins=(1, 2, 3, 6)):
        super().__init__()
        self.abundance = nn.Sequential(nn.Linear(N_CLASSES, width), nn.ReLU(inplace=True))  # bin 1
        self.ppm = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), _conv(channels[-1], width, 1)) for b in bins[1:])
        self.bottleneck = _conv(channels[-1] + width * len(bins), width, 3)
        self.lateral = nn.ModuleList(_conv(c, width, 1) for c in channels[:-1])
        self.smooth = nn.ModuleList(_conv(width, width, 3) for _ in channels[:-1])
        self.fuse = _conv(width * len(channels), width, 3)
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, feats: list[torch.Tensor], abundances: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        top = feats[-1]
        hw = top.shape[-2:]
        pooled = [self.abundance(abundances)[:, :, None, None].expand(-1, -1, *hw)]
        pooled += [F.interpolate(m(top), size=hw, mode="bilinear", align_corners=False) for m in self.ppm]
        levels = [lat(f) for lat, f in zip(self.lateral, feats[:-1])] + [self.bottleneck(torch.cat([top, *pooled], 1))]
        for i in range(len(levels) - 1, 0, -1):  # top-down pathway
            levels[i - 1] = levels[i - 1] + F.interpolate(levels[i], size=levels[i - 1].shape[-2:], mode="bilinear",
                                                          align_corners=False)
        levels = [s(level) for s, level in zip(self.smooth, levels[:-1])] + [levels[-1]]
        first = levels[0].shape[-2:]
        fused = self.fuse(torch.cat([levels[0]] + [F.interpolate(level, size=first, mode="bilinear", align_corners=False)
                                                   for level in levels[1:]], 1))
        return F.interpolate(self.out(fused), size=size, mode="bilinear", align_corners=False)


class SUNet(nn.Module):
    """PSC-Net and MSU-Net on one shared backbone, plus GradNorm's task weights and initial losses."""

    def __init__(self, p: dict, in_channels: int = 4):
        super().__init__()
        self.backbone = Backbone(p, in_channels)
        self.psc = ConstrainedHead(self.backbone.channels[-1], p["dropout"])
        self.msu = ConstrainedHead(self.backbone.channels[-1], p["dropout"])
        self.decoder = UperNetDecoder(self.backbone.channels, p["decoder_width"], in_channels)
        self.task_weights = nn.Parameter(torch.ones(len(TASKS)))
        self.register_buffer("initial_losses", torch.zeros(len(TASKS)))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """PSC-Net: (N, 17) constrained logits; softmax gives the class probabilities."""
        return self.psc(self.backbone(x)[-1])

    def unmix(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MSU-Net: (N, 17) constrained logits (softmax = abundances) and the (N, bands, H, W) reconstruction."""
        feats = self.backbone(x)
        logits = self.msu(feats[-1])
        return logits, self.decoder(feats, torch.softmax(logits, 1), x.shape[-2:])

    def forward(self, pure: torch.Tensor, mixed: torch.Tensor):
        """One training pass: pure scenes through PSC-Net, mixed ones through MSU-Net (one backbone pass)."""
        feats = self.backbone(torch.cat([pure, mixed]))
        n = len(pure)
        mixed_feats = [f[n:] for f in feats]
        logits = self.msu(mixed_feats[-1])
        recon = self.decoder(mixed_feats, torch.softmax(logits, 1), mixed.shape[-2:])
        return self.psc(feats[-1][:n]), logits, recon

    def shared_layer(self) -> torch.Tensor:
        """GradNorm's W: the last layer every task's gradient goes through."""
        return self.backbone.norm.weight


def build(preset: str = "demo", **overrides) -> SUNet:
    if preset not in SU_NET:
        raise InputError("preset", f"unknown SU-Net preset {preset!r}; choose one of {', '.join(SU_NET)}")
    return SUNet({**SU_NET[preset], **overrides})


def task_losses(output, target) -> torch.Tensor:
    """(3,) the three task losses of section 3.2 for one batch."""
    pure_logits, mixed_logits, recon = output
    pure_class, fractions, mixed = target
    soft_ce = -(fractions * torch.log_softmax(mixed_logits.float(), 1)).sum(1).mean()
    return torch.stack([F.cross_entropy(pure_logits.float(), pure_class), soft_ce, F.l1_loss(recon.float(), mixed)])


def gradnorm_loss(model: SUNet, alpha: float):
    """The training loss: Σ w_i L_i with GradNorm's w_i (Chen et al. 2018, algorithm 1).

    G_i = ||∇_W w_i L_i|| = w_i ||∇_W L_i||, so the norms are taken once without a graph and
    L_grad = Σ|G_i - mean(G) r_i^alpha| (target held constant) reaches the weights only; the
    weighted sum reaches the network only (weights detached there). The weights are renormalised to
    sum to the number of tasks before each step. Returns a loss function for ``training.fit``.
    """

    def loss_fn(output, target) -> torch.Tensor:
        losses = task_losses(output, target)
        w = model.task_weights
        with torch.no_grad():
            w.clamp_(min=1e-3).mul_(len(TASKS) / w.sum())
        total = (w.detach() * losses).sum()
        if not (torch.is_grad_enabled() and model.training):
            return total  # validation: the weighted sum only
        if not model.initial_losses.any():
            model.initial_losses.copy_(losses.detach())
        shared = model.shared_layer()
        norms = torch.stack([torch.autograd.grad(loss, shared, retain_graph=True)[0].norm() for loss in losses])
        g = w * norms.detach()
        ratio = losses.detach() / model.initial_losses.clamp(min=1e-12)
        target_g = (g.mean() * (ratio / ratio.mean()) ** alpha).detach()
        return total + (g - target_g).abs().sum()

    return loss_fn


def load_pretrained(model: SUNet, path: str | Path) -> int:
    """Copy a torchvision Swin-V2 state dict (``swin_v2_t-b137f0e2.pth``) into the backbone.

    The classification head is dropped; the RGB patch-embedding filters go to our blue, green and
    red inputs and their mean to NIR. One InputError line when the file does not fit the preset.
    Returns the number of tensors copied.
    """
    from ..training import _check_architecture, _read_checkpoint

    path = Path(path)
    weights = {k: v for k, v in _read_checkpoint(path)["model"].items() if not k.startswith("head.")}
    key = "features.0.0.weight"
    if key in weights and weights[key].ndim == 4 and weights[key].shape[1] == 3:
        rgb = weights[key]
        weights[key] = torch.cat([rgb[:, [2, 1, 0]], rgb.mean(1, keepdim=True)], 1)  # B, G, R from R, G, B; NIR
    _check_architecture(path, model.backbone, weights)
    model.backbone.load_state_dict(weights)
    return len(weights)


class SceneHeads(nn.Module):
    """Inference on whole scenes: PSC-Net's class probabilities and MSU-Net's abundances (no decoder)."""

    def __init__(self, net: SUNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top = self.net.backbone(x)[-1]
        return torch.softmax(self.net.psc(top), 1), torch.softmax(self.net.msu(top), 1)


def complexity(preset: str) -> dict:
    """Parameters and forward GFLOPs (multiply-add = 2) per scene of PSC-Net and MSU-Net at a preset,
    counted on the meta device (no memory, no arithmetic)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = SU_NET[preset]["img"]
    with torch.device("meta"):
        model = build(preset).eval()
        x = torch.zeros(1, 4, size, size)
        flops = {}
        for name, run in (("psc_net", model.classify), ("msu_net", model.unmix)):
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                run(x)
            flops[name] = counter.get_total_flops() / 1e9
    return {"params": sum(p.numel() for p in model.parameters()), "scene_px": size,
            "gflops_psc_net": flops["psc_net"], "gflops_msu_net": flops["msu_net"]}
