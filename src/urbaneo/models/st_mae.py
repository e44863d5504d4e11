"""st-MAE of seed 000 (CiSL-NPP, section III-C-1): an MAE with a season embedding and an OSM mask.

On top of a plain masked autoencoder (ViT encoder on the visible patches, a light decoder that
predicts every masked patch, He et al. 2022):

* **season embedding** (eq. 2): the season of the acquisition (spring, summer, autumn, winter =
  0..3, hemisphere-aware: ``seasons``) goes through a learnable projection of ``season_layers``
  linear layers (the paper compares 2, 4, 8, 12; 4 is best) to the size of the position embedding
  and is added to every patch token. Our choices: the season enters one-hot, the layers are joined
  by GELU (a stack of purely linear layers would collapse into one);
* **OSM mask** (eqs. 3-4): a patch is an OSM (vegetation) token when its vegetation coverage from
  the OSM green layer is at least alpha = 0.4; masking takes vegetation tokens first, a random
  subset of them when there are enough for the mask ratio, else all of them plus random other
  patches up to the ratio. ``mask_mode="random"`` is plain MAE masking, for the ablation;
* **loss** (eq. 1): mean squared error over the pixels of the masked patches. "Normalised pixels"
  is read as reflectance standardised per band with the training set's mean and std (``Scaler``),
  not MAE's per-patch normalisation, so that a reconstruction can go back to reflectance and fill
  a cloud gap;
* **cloud-gap filling**: ``reconstruct`` masks exactly the patches QA marks cloudy or shadowed and
  keeps the observed patches as they are;
* **transfer**: ``load_pretrained`` takes an official MAE checkpoint (timm names: patch_embed,
  blocks.N.attn.qkv, ...) from a path, and ``freeze`` stops the first k encoder blocks (4 of 12 is
  the paper's best). The demo trains from scratch.

Position embeddings are MAE's fixed 2-D sine-cosine ones.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from .scaling import Scaler  # noqa: F401  (st_mae.Scaler: the scaler saved with each st-MAE)

ALPHA = 0.4  # eq. 3: vegetation share from which a patch is an OSM token


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """(grid*grid, dim) fixed 2-D sine-cosine position embedding (MAE): half the channels per axis."""
    if dim % 4:
        raise ValueError(f"embedding size {dim} must be a multiple of 4")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    parts = []
    for axis in (xs.flatten(), ys.flatten()):  # MAE: the first half encodes the width position
        angles = axis[:, None] * omega[None, :]
        parts += [torch.sin(angles), torch.cos(angles)]
    return torch.cat(parts, dim=1).float()


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with timm's parameter names, so official MAE weights load."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def season_projection(dim: int, layers: int) -> nn.Sequential:
    """One-hot season (4) -> ``dim``, through ``layers`` linear layers joined by GELU; 0 layers: no
    season embedding at all (the ablation's "without")."""
    mods: list[nn.Module] = []
    width = 4
    for i in range(layers):
        mods.append(nn.Linear(width, dim))
        if i < layers - 1:
            mods.append(nn.GELU())
        width = dim
    return nn.Sequential(*mods)


class StMAE(nn.Module):
    def __init__(self, img: int, patch: int, channels: int = 3, dim: int = 768, depth: int = 12, heads: int = 12,
                 decoder_dim: int = 512, decoder_depth: int = 8, decoder_heads: int = 16, season_layers: int = 4,
                 mask_ratio: float = 0.75, mask_mode: str = "osm"):
        super().__init__()
        if img % patch:
            raise ValueError(f"image size {img} is no multiple of the patch size {patch}")
        if mask_mode not in ("osm", "random"):
            raise ValueError(f"mask_mode is 'osm' or 'random', not {mask_mode!r}")
        self.patch, self.channels, self.grid = patch, channels, img // patch
        self.mask_ratio, self.mask_mode = mask_ratio, mask_mode
        self.patch_embed = PatchEmbed(patch, channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", torch.cat([torch.zeros(1, dim), sincos_2d(dim, self.grid)])[None],
                             persistent=False)
        self.season_embed = season_projection(dim, season_layers)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed",
                             torch.cat([torch.zeros(1, decoder_dim), sincos_2d(decoder_dim, self.grid)])[None],
                             persistent=False)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, patch * patch * channels)
        self._init()

    def _init(self):
        # MAE: xavier-uniform linears (the patch projection as a linear), small normal tokens
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    # -- patches --------------------------------------------------------------------------------
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, p*p*C)."""
        n, c, p, g = imgs.shape[0], self.channels, self.patch, self.grid
        x = imgs.reshape(n, c, g, p, g, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(n, g * g, p * p * c)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        n, c, p, g = x.shape[0], self.channels, self.patch, self.grid
        x = x.reshape(n, g, g, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, g * p, g * p)

    def vegetation_tokens(self, green: torch.Tensor) -> torch.Tensor:
        """(N, H, W) OSM vegetation share per pixel -> (N, L) bool: patch share >= ALPHA (eq. 3)."""
        n, p, g = green.shape[0], self.patch, self.grid
        share = green.reshape(n, g, p, g, p).float().mean(dim=(2, 4)).reshape(n, g * g)
        return share >= ALPHA

    def choose_mask(self, n: int, vegetation: torch.Tensor | None, generator=None) -> torch.Tensor:
        """(N, L) bool, True = masked, ``round(ratio * L)`` per image. OSM mode (eq. 4): vegetation
        tokens first (a random subset when they are enough), then random other patches."""
        length = self.grid ** 2
        noise = torch.rand(n, length, generator=generator)
        if self.mask_mode == "osm" and vegetation is not None:
            noise = noise + vegetation.float()  # every vegetation token ranks above every other patch
        n_mask = int(round(self.mask_ratio * length))
        order = torch.argsort(noise, dim=1, descending=True)
        mask = torch.zeros(n, length, dtype=torch.bool)
        mask.scatter_(1, order[:, :n_mask], True)
        return mask

    # -- forward --------------------------------------------------------------------------------
    def forward(self, imgs: torch.Tensor, season: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted patches (N, L, p*p*C) for images whose ``mask`` patches (N, L) are hidden.

        Every image of a batch must hide the same number of patches (``choose_mask`` does).
        """
        n = imgs.shape[0]
        counts = mask.sum(1)
        if bool((counts != counts[0]).any()):
            raise ValueError("every image of a batch must mask the same number of patches")
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        if len(self.season_embed):
            season_vec = self.season_embed(nn.functional.one_hot(season.long(), 4).float())  # (N, dim)
            x = x + season_vec[:, None, :]  # eq. 2: added to every patch token
        keep = torch.argsort(mask.int(), dim=1, stable=True)  # visible patches first, in order
        n_keep = mask.shape[1] - int(counts[0])
        visible = torch.gather(x, 1, keep[:, :n_keep, None].expand(-1, -1, x.shape[2]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(n, -1, -1)
        h = torch.cat([cls, visible], dim=1)
        for blk in self.blocks:
            h = blk(h)
        h = self.decoder_embed(self.norm(h))
        # back to every position: visible tokens where they were, mask tokens elsewhere
        tokens = self.mask_token.expand(n, mask.shape[1], -1).clone()
        tokens.scatter_(1, keep[:, :n_keep, None].expand(-1, -1, h.shape[2]), h[:, 1:])
        d = torch.cat([h[:, :1], tokens], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            d = blk(d)
        return self.decoder_pred(self.decoder_norm(d))[:, 1:]

    def loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 1: mean squared error over the masked patches' (standardised) pixels."""
        per_patch = ((pred - self.patchify(imgs)) ** 2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum().clamp(min=1)

    @torch.no_grad()
    def reconstruct(self, imgs: torch.Tensor, season: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Cloud-gap filling: ``masked`` (N, L) patches predicted, the others kept as observed.

        Images are processed one at a time, as each has its own number of cloudy patches.
        """
        out = imgs.clone()
        for i in range(imgs.shape[0]):
            if not bool(masked[i].any()):
                continue
            pred = self.unpatchify(self(imgs[i:i + 1], season[i:i + 1], masked[i:i + 1]))
            pix = masked[i].reshape(self.grid, self.grid).repeat_interleave(self.patch, 0) \
                .repeat_interleave(self.patch, 1)
            out[i][:, pix] = pred[0][:, pix]
        return out

    # -- transfer -------------------------------------------------------------------------------
    def freeze(self, k: int) -> None:
        """Stop the patch embedding and the first ``k`` encoder blocks from training."""
        if not 0 <= k <= len(self.blocks):
            raise ValueError(f"cannot freeze {k} of {len(self.blocks)} encoder blocks")
        frozen = [self.patch_embed, *self.blocks[:k]] if k else []
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)


def load_pretrained(model: StMAE, path: str | Path) -> int:
    """Copy an official MAE checkpoint's weights (``{"model": state_dict}`` or a bare state dict) into
    ``model``; returns the number of tensors copied. Position embeddings are fixed here and the
    season projection is new, so those are skipped. One InputError line on any mismatch."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise InputError(path, f"cannot be read as a checkpoint ({type(err).__name__})") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError(path, "not an MAE checkpoint (no state dict)")
    own = model.state_dict()
    skip = ("pos_embed", "decoder_pos_embed")
    wanted = {k: v for k, v in state.items() if k not in skip}
    unknown = sorted(k for k in wanted if k not in own)
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in wanted.items()
              if k in own and v.shape != own[k].shape]
    if unknown or shapes:
        more = (unknown + shapes)[:3]
        raise InputError(path, f"does not fit this st-MAE ({len(unknown)} unknown tensors, {len(shapes)} shape "
                               f"mismatches: {'; '.join(more)}); check the preset (base/large) and patch size")
    model.load_state_dict({**own, **wanted})
    return len(wanted)


def build(preset: dict, channels: int = 3, mask_mode: str = "osm") -> StMAE:
    """The model of a preset (``presets.ST_MAE``)."""
    keys = ("img", "patch", "dim", "depth", "heads", "decoder_dim", "decoder_depth", "decoder_heads",
            "season_layers", "mask_ratio")
    return StMAE(channels=channels, mask_mode=mask_mode, **{k: preset[k] for k in keys})


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

