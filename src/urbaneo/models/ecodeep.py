"""EcoDeep-Green of seed 001: the CNN-GNN feature extractor and the DQN's Q-network.

A city is one image: the planning cells (100 m) are its pixels, so every network here keeps the
grid's H x W and gives one feature vector (or one Q-value per species) per cell.

* **DilatedResNet** (section "CNN-GNN hybrid feature extraction", eqs. 12-13): ResNet-50's
  torchvision Bottleneck blocks with dilation in place of striding, LeakyReLU, CBAM after each stage.
* **CellGAT** (eqs. 14-16): GATConv layers whose attention sees the edge's relational features.
  ``build_graph`` makes the cell graph: 8-neighbour spatial edges and ecological-similarity edges.
* **CrossAttentionFusion** (eqs. 17-20): GAT outputs back on the grid, 1x1 projections, multi-head
  cross attention (queries from the CNN, keys and values from the GAT).
* **EcoDeepGreen**: the three together (or the CNN or GAT alone, the paper's baselines) with a
  per-species suitability head, the proxy task the features are trained on; ``composite_loss`` is
  eqs. 21-23.
* **QNetwork** ("Vegetation configuration optimization decision module", eqs. 26-27): conv-BN-ReLU
  layers, a self-attention block and per-cell decision layers giving Q (S, H, W) for the actions
  "plant species s on cell c".

Hyper-parameters are in ``presets.ECODEEP`` (`demo`: narrow and shallow, CPU seconds; `paper`: the
paper's "Model hyperparameter" section). Where the paper is silent or vague the choice is written
beside the code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..errors import InputError
from ..presets import ECODEEP

KINDS = ("fusion", "cnn", "gnn")
EDGE_FEATURES = ("spatial", "similarity", "distance")  # columns of build_graph's edge_attr
_SIGMA_PAIRS = 20_000  # random node pairs whose median distance is sigma's default
_NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _preset(preset: str | Mapping) -> dict:
    if isinstance(preset, Mapping):
        return dict(preset)
    if preset not in ECODEEP:
        raise InputError("preset", f"unknown EcoDeep-Green preset {preset!r}; choose one of {', '.join(ECODEEP)}")
    return dict(ECODEEP[preset])


# ----------------------------------------------------------------------------------------------- CNN


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): a channel gate then a spatial gate.

    Channel gate: sigmoid(MLP(avg-pool) + MLP(max-pool)), the MLP shared, hidden width
    channels / reduction (at least 4, so the demo's 16-channel stages keep a usable bottleneck).
    Spatial gate: sigmoid(7x7 conv of the channel-wise mean and max). The pools run over the whole
    city (one image); the spatial gate is what reweights cells.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, 1, 1) channel gate and (B, 1, H, W) spatial gate, both in [0, 1]."""
        channel = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        y = x * channel
        spatial = torch.sigmoid(self.spatial(torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1)))
        return channel, spatial

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, spatial = self.gates(x)
        return x * channel * spatial


def _dilated_block(kind: str, inplanes: int, width: int, dilation: int, norm, slope: float) -> nn.Module:
    """One residual block (eq. 12) from `inplanes` to `width` channels, 3x3 convs dilated by `dilation` (eq. 13)."""
    if kind == "bottleneck":
        planes = width // Bottleneck.expansion  # the stage width is the block's output, as in ResNet-50
        down = None
        if inplanes != width:
            down = nn.Sequential(nn.Conv2d(inplanes, width, 1, bias=False), norm(width))
        block = Bottleneck(inplanes, planes, downsample=down, dilation=dilation, norm_layer=norm)
    else:
        down = None
        if inplanes != width:
            down = nn.Sequential(nn.Conv2d(inplanes, width, 1, bias=False), norm(width))
        block = BasicBlock(inplanes, width, downsample=down, norm_layer=norm)
        # torchvision's BasicBlock refuses dilation > 1 (an ImageNet-only restriction); give it dilated 3x3s
        block.conv1 = nn.Conv2d(inplanes, width, 3, padding=dilation, dilation=dilation, bias=False)
        block.conv2 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=False)
    block.relu = nn.LeakyReLU(slope, inplace=True)  # the paper's LeakyReLU (0.2) in place of ReLU
    return block


class DilatedResNet(nn.Module):
    """The enhanced residual CNN: (B, C_in, H, W) -> (B, widths[-1], H, W), same H x W.

    * Stem (the paper's first stage, 7x7 kernel, widths[0] channels, dilation dilations[0]): conv
      stride 1, not ResNet's 2 — a cell is 100 m and is the unit of planning, so nothing is
      downsampled — then BN, LeakyReLU and the paper's 3x3 max pool, here with stride 1 and padding
      1 (the paper's stride 2 would halve the grid; at stride 1 it still takes the local maximum).
    * Stages 2.. (3x3 kernels): `blocks[i]` residual blocks of width `widths[i + 1]`, every block's
      3x3 convolution dilated by `dilations[i + 1]` (multi-scale context without striding, eq. 13),
      each stage followed by CBAM. `block="bottleneck"`: torchvision's ResNet-50 Bottleneck with the
      stage width as its output (inner width / 4); `"basic"`: BasicBlock (the narrow demo).
    * BatchNorm with `bn_momentum` in PyTorch's convention, LeakyReLU(`slope`) everywhere, dropout
      on the output features. The paper's closing global average pool is left out: the planner needs
      a feature vector per cell, not one per city.
    """

    def __init__(self, in_channels: int, widths, blocks, dilations, *, block: str = "bottleneck",
                 stem_kernel: int = 7, slope: float = 0.2, bn_momentum: float = 0.1, cbam_reduction: int = 16,
                 dropout: float = 0.3):
        super().__init__()
        widths, blocks, dilations = list(widths), list(blocks), list(dilations)
        if len(widths) != len(dilations) or len(blocks) != len(widths) - 1:
            raise InputError("DilatedResNet", f"{len(widths)} widths need as many dilations and one block count "
                                              f"per stage after the stem; got {len(dilations)} and {len(blocks)}")
        if block not in ("bottleneck", "basic"):
            raise InputError("DilatedResNet", f"block must be 'bottleneck' or 'basic', not {block!r}")
        if block == "bottleneck" and any(w % Bottleneck.expansion for w in widths[1:]):
            raise InputError("DilatedResNet", f"bottleneck stage widths must be multiples of 4: {widths[1:]}")

        def norm(c: int) -> nn.BatchNorm2d:
            return nn.BatchNorm2d(c, momentum=bn_momentum)

        d0 = dilations[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], stem_kernel, padding=d0 * (stem_kernel // 2), dilation=d0, bias=False),
            norm(widths[0]), nn.LeakyReLU(slope, inplace=True), nn.MaxPool2d(3, stride=1, padding=1))
        stages, inplanes = [], widths[0]
        for width, n, d in zip(widths[1:], blocks, dilations[1:]):
            layers = []
            for _ in range(n):
                layers.append(_dilated_block(block, inplanes, width, d, norm, slope))
                inplanes = width
            stages.append(nn.Sequential(*layers, CBAM(width, cbam_reduction)))
        self.stages = nn.Sequential(*stages)
        self.drop = nn.Dropout(dropout)
        self.out_channels = inplanes
        for m in self.modules():  # torchvision ResNet's initialisation, for the leaky slope
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=slope, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.stages(self.stem(x)))


# ----------------------------------------------------------------------------------------------- graph


def build_graph(node_features: np.ndarray, valid: np.ndarray, *, similarity_features: np.ndarray | None = None,
                sigma: float | None = None, tau: float = 0.9, k_similar: int = 4, seed: int = 0,
                block: int = 1024) -> Data:
    """The urban spatial graph G = (V, E) of the valid cells of a (F, H, W) feature stack.

    Nodes: the valid cells in row-major order; ``x`` (n, F) their features (float32, as given: the
    caller normalises), ``cell`` (n,) their flat grid index (row * W + col), ``pos`` (n, 2) row and
    column. Edges (messages flow edge_index[0] -> edge_index[1]):

    * spatial: each valid cell and its valid 8-neighbours, both directions;
    * ecological similarity (eq. 14): sim(v_i, v_j) = exp(-|v_i - v_j|^2 / 2 sigma^2) on
      `similarity_features` (default: the node features), kept when sim > tau; each node receives
      at most `k_similar` of them, from its most similar non-neighbouring cells (a top-k graph, so
      a popular cell cannot flood the others' neighbourhoods; the paper gives no cap — without one
      a homogeneous district would be a clique). sigma defaults to the median distance between
      the feature vectors of 20,000 random node pairs (drawn with `seed`): at that distance sim is
      exp(-1/2), so tau = 0.9 keeps pairs closer than 0.46 x the typical distance.

    ``edge_attr`` (E, 3): [is_spatial, sim, distance between the cells' centres / the grid's
    diagonal] — the relational features r_ij of eq. 15. Similarity is computed block by block
    (`block` rows at a time), so ~6,000 nodes take well under a second. Deterministic.
    """
    feats = np.asarray(node_features)
    valid = np.asarray(valid, dtype=bool)
    if feats.ndim != 3 or valid.shape != feats.shape[1:]:
        raise InputError("build_graph", f"features (F, H, W) and valid (H, W) do not match: {feats.shape} and "
                                        f"{valid.shape}")
    eco = feats if similarity_features is None else np.asarray(similarity_features)
    if eco.ndim != 3 or eco.shape[1:] != valid.shape:
        raise InputError("build_graph", f"similarity features {eco.shape} are not on the {valid.shape} grid")
    if not 0 < tau < 1 or k_similar < 0:
        raise InputError("build_graph", f"tau must be in (0, 1) and k_similar >= 0; got {tau} and {k_similar}")
    h, w = valid.shape
    rows, cols = np.nonzero(valid)
    n = len(rows)
    if n == 0:
        raise InputError("build_graph", "no valid cell: the graph would be empty")
    x = feats[:, rows, cols].T.astype(np.float32)
    v = eco[:, rows, cols].T.astype(np.float64)
    if not (np.isfinite(x).all() and np.isfinite(v).all()):
        raise InputError("build_graph", "node features are not finite at some valid cells")
    cell = rows * w + cols
    node_of = np.full(h * w, -1, dtype=np.int64)
    node_of[cell] = np.arange(n)

    # spatial edges: neighbour j -> node i for the 8 offsets; nbr (n, 8) keeps them to exclude below
    nbr = np.full((n, len(_NEIGHBOURS)), -1, dtype=np.int64)
    for k, (dr, dc) in enumerate(_NEIGHBOURS):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        nbr[inside, k] = node_of[r[inside] * w + c[inside]]
    dst_sp, slot = np.nonzero(nbr >= 0)
    src_sp = nbr[dst_sp, slot]

    if sigma is None:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(n, size=_SIGMA_PAIRS), rng.integers(n, size=_SIGMA_PAIRS)
        i, j = i[i != j], j[i != j]
        sigma = float(np.median(np.linalg.norm(v[i] - v[j], axis=1))) if len(i) else 0.0
        if sigma <= 0:
            sigma = 1.0  # every sampled pair identical: any positive sigma gives them sim 1
    two_s2 = 2.0 * float(sigma) ** 2

    src_sim, dst_sim = _similar_pairs(v, nbr, min(k_similar, n - 1), two_s2, tau, block)
    order = np.lexsort((src_sim, dst_sim))  # by target node, then source: independent of the blocking
    src_sim, dst_sim = src_sim[order], dst_sim[order]

    src = np.concatenate([src_sp, src_sim])
    dst = np.concatenate([dst_sp, dst_sim])
    sim = np.exp(-((v[src] - v[dst]) ** 2).sum(1) / two_s2)
    dist = np.hypot(rows[src] - rows[dst], cols[src] - cols[dst]) / max(math.hypot(h - 1, w - 1), 1.0)
    spatial = np.r_[np.ones(len(src_sp)), np.zeros(len(src_sim))]
    data = Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(np.stack([src, dst])).long(),
                edge_attr=torch.from_numpy(np.stack([spatial, sim, dist], 1).astype(np.float32)),
                cell=torch.from_numpy(cell).long(), pos=torch.from_numpy(np.stack([rows, cols], 1)).float())
    data.grid_shape = (h, w)
    data.sigma = float(sigma)
    return data


def _similar_pairs(v: np.ndarray, nbr: np.ndarray, k: int, two_s2: float, tau: float, block: int):
    """Eq. 14's edges: for each node (dst) the <= k non-neighbouring nodes (src) with the highest
    sim > tau, nearest first, ties by node index. Distances come block by block from one float32
    matrix product (|x_i|^2 + |x_j|^2 - 2 x_i.x_j on centred features); candidates below the
    threshold (with slack for float32 rounding) are checked in float64. A row with very many candidates (a
    homogeneous district) keeps only its 4k nearest in float32 before the check."""
    n = len(v)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    limit = -two_s2 * math.log(tau)  # sim > tau  <=>  d^2 < limit
    c = (v - v.mean(0)).astype(np.float32)
    sq = (c * c).sum(1)
    slack_limit = limit * 1.01 + 1e-5 * float(sq.max()) + 1e-12  # float32 rounding of the expansion
    src_all, dst_all = [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        b = np.arange(stop - start)
        d2 = c[start:stop] @ c.T  # then |x_i|^2 + |x_j|^2 - 2 x_i.x_j, in place (few passes over the block)
        d2 *= -2.0
        d2 += sq[None, :]
        d2 += sq[start:stop, None]
        d2[b, start + b] = np.inf  # no self edge
        nb = nbr[start:stop]
        rr, cc = np.nonzero(nb >= 0)
        d2[rr, nb[rr, cc]] = np.inf  # spatial neighbours have their edge already
        below = d2 < slack_limit
        dense = below.sum(1) > 4 * k
        sparse = np.nonzero(~dense)[0]
        flat = np.flatnonzero(below[sparse] if dense.any() else below)
        rows, cols = sparse[flat // n], flat % n
        if dense.any():
            kk = min(4 * k, n - 1)
            drows = np.nonzero(dense)[0]
            near = np.argpartition(d2[drows], kk - 1, axis=1)[:, :kk]
            rows, cols = np.r_[rows, np.repeat(drows, kk)], np.r_[cols, near.ravel()]
        dst = start + rows
        exact = ((v[cols] - v[dst]) ** 2).sum(1)
        ok = np.isfinite(d2[rows, cols]) & (np.exp(-exact / two_s2) > tau)
        dst, src, exact = dst[ok], cols[ok], exact[ok]
        order = np.lexsort((src, exact, dst))  # per target: nearest first, ties by source index
        dst, src = dst[order], src[order]
        rank = np.arange(len(dst)) - np.searchsorted(dst, dst, side="left")
        src_all.append(src[rank < k])
        dst_all.append(dst[rank < k])
    return np.concatenate(src_all).astype(np.int64), np.concatenate(dst_all).astype(np.int64)


def to_grid(nodes: torch.Tensor, cell: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Eq. 17's mapping M: (n, D) node features -> (1, D, H, W), zeros at cells without a node."""
    h, w = shape
    grid = nodes.new_zeros(h * w, nodes.shape[1]).index_copy(0, cell, nodes)
    return grid.T.reshape(1, nodes.shape[1], h, w)


class CellGAT(nn.Module):
    """Graph attention over the cell graph: (n, F) node features -> (n, hidden[-1]).

    * Encoders: Linear(F -> node_dim) + ELU for the nodes, Linear(3 -> edge_dim) for the edges'
      relational features (the paper's node and edge feature dimensions).
    * Layers: torch_geometric GATConv with ``edge_dim`` — its attention is eq. 15,
      a^T [W h_i | W h_j | W_e r_ij] through LeakyReLU(0.2) and a softmax over the neighbours
      (self loops added, their r the mean of the node's incoming ones) — then ELU (eq. 16). The
      paper's hidden sizes are each layer's output width: `heads` heads of hidden / heads channels,
      concatenated. Residual: h' = ELU(GAT(h) + P(h)), P the identity or, where widths differ, a
      bias-free linear projection. Feature dropout on each layer's input, attention dropout inside.
    * The paper's DiffPool (ratio 0.5) is not applied: it would merge cells into clusters, and the
      planner needs one feature vector per cell; a pooled hierarchy only helps graph-level outputs.
    """

    def __init__(self, in_features: int, *, node_dim: int, edge_dim: int, hidden, heads: int, dropout: float,
                 attn_dropout: float, edge_features: int = len(EDGE_FEATURES)):
        super().__init__()
        hidden = list(hidden)
        if any(h % heads for h in hidden):
            raise InputError("CellGAT", f"hidden sizes {hidden} must be multiples of the {heads} heads")
        self.node_encoder = nn.Sequential(nn.Linear(in_features, node_dim), nn.ELU())
        self.edge_encoder = nn.Linear(edge_features, edge_dim)
        self.convs, self.res = nn.ModuleList(), nn.ModuleList()
        prev = node_dim
        for width in hidden:
            self.convs.append(GATConv(prev, width // heads, heads=heads, concat=True, edge_dim=edge_dim,
                                      dropout=attn_dropout))
            self.res.append(nn.Identity() if prev == width else nn.Linear(prev, width, bias=False))
            prev = width
        self.drop = nn.Dropout(dropout)
        self.out_channels = prev

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        h = self.node_encoder(x)
        e = self.edge_encoder(edge_attr)
        for conv, res in zip(self.convs, self.res):
            h = F.elu(conv(self.drop(h), edge_index, e) + res(h))
        return h

    def regularised(self) -> dict[str, torch.Tensor]:
        """Eq. 23's W and a: each layer's GATConv weight matrices (lin: W; lin_edge: W_e, the
        relational features' part) and attention vectors (att_src, att_dst, att_edge)."""
        out = {}
        for i, conv in enumerate(self.convs):
            for name in ("lin.weight", "lin_edge.weight", "att_src", "att_dst", "att_edge"):
                out[f"gat.convs.{i}.{name}"] = conv.get_parameter(name)
        return out


# ----------------------------------------------------------------------------------------------- fusion


def _pool_factor(h: int, w: int, max_tokens: int) -> int:
    f = max(1, math.ceil(math.sqrt(h * w / max_tokens)))
    while math.ceil(h / f) * math.ceil(w / f) > max_tokens:
        f += 1
    return f


def _pooled_tokens(grid: torch.Tensor, mask: torch.Tensor, max_tokens: int):
    """(B, D, H, W) and (1, 1, H, W) 0/1 -> tokens (B, T, D) averaged over the masked cells of f x f
    blocks (T <= max_tokens) and a (B, T) key-padding mask, True where a block has no masked cell."""
    f = _pool_factor(*grid.shape[-2:], max_tokens)
    if f > 1:
        num = F.avg_pool2d(grid * mask, f, f, ceil_mode=True)
        den = F.avg_pool2d(mask, f, f, ceil_mode=True)  # same divisor as num: the ratio is the masked mean
        grid, mask = num / den.clamp(min=1e-12), den
    tokens = grid.flatten(2).transpose(1, 2)
    empty = (mask.flatten(1) <= 0).expand(len(tokens), -1)
    return tokens, empty


class CrossAttentionFusion(nn.Module):
    """Eqs. 17-20: F_fused = W_out * (F_CNN^adj + A V), A = softmax(Q K^T / sqrt(d)) per head.

    GAT node features go back to their cells (eq. 17, zeros elsewhere); 1x1 convolutions bring both
    modalities to `d_model` channels (eq. 18); torch's MultiheadAttention (`heads` heads, with its
    own W_Q, W_K, W_V and output projection) lets every cell's CNN feature query the GAT features
    (eq. 19); the result is added to F_CNN^adj (eq. 20) and a 1x1 convolution gives `d_out`.

    Keys and values are the GAT features averaged over blocks of cells so that there are at most
    `max_tokens` of them (over cells with a node only; blocks without one are masked): full
    attention over a 6,000-cell city is a 36M-entry matrix per head, too big to train on, and the
    cross attention is there for city-wide context, which the block means keep. Queries stay one
    per cell. Below `max_tokens` cells every node cell is its own key.
    """

    def __init__(self, d_cnn: int, d_gnn: int, d_model: int, heads: int, d_out: int, *, max_tokens: int = 1024,
                 attn_dropout: float = 0.0):
        super().__init__()
        self.proj_cnn = nn.Conv2d(d_cnn, d_model, 1)  # W_CNN
        self.proj_gnn = nn.Conv2d(d_gnn, d_model, 1)  # W_GNN
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=attn_dropout, batch_first=True)
        self.out = nn.Conv2d(d_model, d_out, 1)
        self.max_tokens = max_tokens

    def forward(self, f_cnn: torch.Tensor, nodes: torch.Tensor, cell: torch.Tensor):
        """(B, d_cnn, H, W), (n, d_gnn), (n,) -> fused (B, d_out, H, W) and both projections at the
        node cells, (n, d_model) each (eq. 22's f_CNN and f_GNN)."""
        b, _, h, w = f_cnn.shape
        cnn_adj = self.proj_cnn(f_cnn)
        gnn_adj = self.proj_gnn(to_grid(nodes, cell, (h, w)))
        mask = torch.zeros(h * w, device=f_cnn.device, dtype=f_cnn.dtype).index_fill(0, cell, 1.0).view(1, 1, h, w)
        keys, empty = _pooled_tokens(gnn_adj, mask, self.max_tokens)
        queries = cnn_adj.flatten(2).transpose(1, 2)
        attended, _ = self.attn(queries, keys.expand(b, -1, -1), keys.expand(b, -1, -1), key_padding_mask=empty,
                                need_weights=False)
        fused = cnn_adj + attended.transpose(1, 2).reshape(b, -1, h, w)
        at_nodes = cnn_adj.flatten(2)[..., cell].transpose(1, 2)  # (B, n, d_model)
        return self.out(fused), at_nodes[0], gnn_adj.flatten(2)[0, :, cell].T


# ----------------------------------------------------------------------------------------------- EcoDeep-Green


class EcoDeepGreen(nn.Module):
    """The feature extractor (eq. 11) and its suitability head.

    kind "fusion": CNN and GAT, cross-attention fused (the paper's model); "cnn": the CNN alone;
    "gnn": the GAT alone, its node features put on the grid. ``forward(grid_x, graph)`` with grid_x
    (1, C, H, W) (the city) and graph from ``build_graph`` on the same grid returns
    features (1, D, H, W), the DQN's state features (D = ``feature_dim``); suitability (1, S, H, W),
    sigmoid of a two-layer 1x1-conv head — the proxy task (eq. 21's L_task: the paper's "e.g. carbon
    sequestration prediction"; ours, per-species site suitability); f_cnn and f_gnn, the fusion's
    projections at the node cells (n, d_model) for eq. 22, None for the single-branch kinds.
    """

    def __init__(self, in_channels: int, node_features: int, n_species: int, preset: str | Mapping = "demo",
                 kind: str = "fusion"):
        super().__init__()
        if kind not in KINDS:
            raise InputError("kind", f"unknown EcoDeep-Green kind {kind!r}; choose one of {', '.join(KINDS)}")
        p = _preset(preset)
        self.kind = kind
        self.cnn = self.gat = self.fusion = None
        if kind in ("fusion", "cnn"):
            self.cnn = DilatedResNet(in_channels, p["cnn_widths"], p["cnn_blocks"], p["cnn_dilations"],
                                     block=p["cnn_block"], stem_kernel=p["cnn_stem_kernel"], slope=p["leaky_slope"],
                                     bn_momentum=p["bn_momentum"], cbam_reduction=p["cbam_reduction"],
                                     dropout=p["cnn_dropout"])
            dim = self.cnn.out_channels
        if kind in ("fusion", "gnn"):
            self.gat = CellGAT(node_features, node_dim=p["gat_node_dim"], edge_dim=p["gat_edge_dim"],
                               hidden=p["gat_hidden"], heads=p["gat_heads"], dropout=p["gat_dropout"],
                               attn_dropout=p["gat_attn_dropout"])
            dim = self.gat.out_channels
        if kind == "fusion":
            self.fusion = CrossAttentionFusion(self.cnn.out_channels, self.gat.out_channels, p["fusion_dim"],
                                               p["fusion_heads"], p["fused_dim"], max_tokens=p["fusion_max_tokens"])
            # no dropout on the cross attention: the paper's attention dropout (0.1) is the GAT's, and
            # a dropout mask over the (cells x tokens) matrix makes the demo training step 1.5x slower on CPU
            dim = p["fused_dim"]
        self.feature_dim = dim
        self.head = nn.Sequential(nn.Conv2d(dim, p["head_hidden"], 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(p["head_hidden"], n_species, 1))

    def forward(self, grid_x: torch.Tensor, graph: Data) -> dict:
        h, w = grid_x.shape[-2:]
        f_cnn = f_gnn = None
        if self.kind == "cnn":
            features = self.cnn(grid_x)
        else:
            nodes = self.gat(graph.x, graph.edge_index, graph.edge_attr)
            if self.kind == "gnn":
                features = to_grid(nodes, graph.cell, (h, w)).expand(len(grid_x), -1, -1, -1)
            else:
                features, f_cnn, f_gnn = self.fusion(self.cnn(grid_x), nodes, graph.cell)
        return {"features": features, "suitability": torch.sigmoid(self.head(features)), "f_cnn": f_cnn,
                "f_gnn": f_gnn}

    def regularised(self) -> dict[str, torch.Tensor]:
        """Eq. 23's parameters: the fusion's 1x1 projections W_CNN and W_GNN (their weights), and
        the GAT's W and a (see CellGAT.regularised). The CNN's and heads' weights are not in eq. 23:
        the optimiser's weight decay (1e-4) covers every weight."""
        out = {}
        if self.fusion is not None:
            out["fusion.proj_cnn.weight"] = self.fusion.proj_cnn.weight
            out["fusion.proj_gnn.weight"] = self.fusion.proj_gnn.weight
        if self.gat is not None:
            out.update(self.gat.regularised())
        return out


def composite_loss(out: dict, target: torch.Tensor, mask: torch.Tensor, model: EcoDeepGreen, lambda1: float,
                   lambda2: float) -> tuple[torch.Tensor, dict]:
    """Eq. 21: L = L_task + lambda1 L_consist + lambda2 L_reg; returns the total and its parts (floats).

    * L_task: MSE of the suitability over the masked cells (mask (1, 1, H, W) True = a training
      cell) and all species; cells outside the mask do not count.
    * L_consist (eq. 22): mean over the graph's nodes of ||f_CNN^i - f_GNN^i||^2, the fusion's two
      projections at the node's cell (0 for the single-branch kinds).
    * L_reg (eq. 23): the sum of the squared Frobenius norms of ``model.regularised()``.

    The paper picks lambda1 and lambda2 by cross-validation; ours are fixed in the preset (see there).
    """
    pred = out["suitability"]
    m = mask.to(pred.dtype).expand_as(pred)
    count = m.sum()
    if count == 0:
        raise InputError("composite_loss", "the mask selects no cell: nothing to train on")
    task = ((pred - target) ** 2 * m).sum() / count
    consist = pred.new_zeros(())
    if out.get("f_cnn") is not None and out.get("f_gnn") is not None:
        consist = ((out["f_cnn"] - out["f_gnn"]) ** 2).sum(1).mean()
    reg = sum((w.square().sum() for w in model.regularised().values()), pred.new_zeros(()))
    total = task + lambda1 * consist + lambda2 * reg
    parts = {"task": task, "consistency": consist, "reg": reg, "total": total}
    return total, {k: float(v.detach()) for k, v in parts.items()}


# ----------------------------------------------------------------------------------------------- DQN


class QNetwork(nn.Module):
    """Q(s, ·) for every (cell, species) action: (B, C, H, W) state -> (B, S, H, W).

    * Eq. 26: a 1x1 conv-BN-ReLU layer that brings the C state channels to `conv_channels` (cheap on
      the wide fused features), then `conv_layers` 3x3 conv-BN-ReLU layers (spatial context).
    * Self-attention: the map averaged to at most `max_tokens` blocks, LayerNorm, multi-head
      self-attention among the blocks, upsampled (bilinear) and added back to every cell (residual):
      each cell sees the city-wide configuration at the cost of attention among a few tokens.
    * Eq. 27's decision layers, Q = W_Q ReLU(W_H h + b_H) + b_Q with the paper's hidden widths,
      applied to each cell's attended feature vector (Linear layers on the channels: the same as
      1x1 convolutions). The paper's flatten of the whole map would tie the network to one city
      size and cost H x W x C x 1024 weights in its first layer (6,240 x 256 x 1024 = 1.6G here);
      per cell, eq. 27 keeps its form and the weights are shared by all cells.

    ``forward(x, cells=...)`` with cells (B,) flat cell indices gives Q at those cells only, (B, S):
    a DQN's TD loss needs Q(s, a) only at the action's cell, and skipping the decision layers
    elsewhere roughly halves a training step; targets (no gradient) use the full map. The state is
    taken in channels-last memory order (a copy unless it already is) and the full map comes back
    as a (B, S, H, W) view of a channels-last tensor.
    """

    def __init__(self, in_channels: int, n_species: int, conv_channels: int, conv_layers: int, hidden,
                 attention_heads: int, *, max_tokens: int = 64, bn_momentum: float = 0.1):
        super().__init__()
        def bn() -> nn.BatchNorm2d:
            return nn.BatchNorm2d(conv_channels, momentum=bn_momentum)

        layers = [nn.Conv2d(in_channels, conv_channels, 1, bias=False), bn(), nn.ReLU(inplace=True)]
        for _ in range(conv_layers):
            layers += [nn.Conv2d(conv_channels, conv_channels, 3, padding=1, bias=False), bn(), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(conv_channels)
        self.attn = nn.MultiheadAttention(conv_channels, attention_heads, batch_first=True)
        self.max_tokens = max_tokens
        decision, prev = [], conv_channels
        for width in hidden:
            decision += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        decision.append(nn.Linear(prev, n_species))
        self.decision = nn.Sequential(*decision)
        self.n_species = n_species

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 26 and the self-attention block: (B, C, H, W) -> H_att (B, conv_channels, H, W)."""
        # channels-last: the convolutions are faster in it on CPU and the per-cell decision layers read
        # each cell's channels contiguously (a free view instead of a copy of the whole batch)
        feats = self.convs(x.contiguous(memory_format=torch.channels_last))
        b, c, h, w = feats.shape
        f = _pool_factor(h, w, self.max_tokens)
        tokens = self.norm((F.avg_pool2d(feats, f, f, ceil_mode=True) if f > 1 else feats).flatten(2).transpose(1, 2))
        attended, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        hp, wp = math.ceil(h / f), math.ceil(w / f)
        context = attended.transpose(1, 2).reshape(b, c, hp, wp)
        if f > 1:
            context = F.interpolate(context, size=(h, w), mode="bilinear", align_corners=False)
        return feats + context

    def forward(self, x: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.trunk(x)
        if cells is not None:
            return self.decision(feats.flatten(2)[torch.arange(len(feats), device=feats.device), :, cells])
        b, c, h, w = feats.shape
        q = self.decision(feats.permute(0, 2, 3, 1).reshape(b * h * w, c))  # a view when channels-last
        return q.view(b, h, w, -1).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------- helpers


def build(kind: str = "fusion", preset: str | Mapping = "demo", in_channels: int = 30, node_features: int = 30,
          n_species: int = 24) -> EcoDeepGreen:
    """EcoDeepGreen of one kind ("fusion", "cnn" or "gnn") at a preset."""
    return EcoDeepGreen(in_channels, node_features, n_species, preset, kind)


def build_qnet(preset: str | Mapping = "demo", in_channels: int = 60, n_species: int = 24) -> QNetwork:
    """The DQN's Q-network at a preset."""
    p = _preset(preset)
    return QNetwork(in_channels, n_species, p["dqn_conv_channels"], p["dqn_conv_layers"], p["dqn_hidden"],
                    p["dqn_heads"], max_tokens=p["dqn_max_tokens"], bn_momentum=p["bn_momentum"])


def complexity(model: nn.Module, example_inputs: tuple) -> dict:
    """Parameters and forward GFLOPs (multiply-add = 2) per sample of `model(*example_inputs)`.

    Counted by torch's FlopCounterMode (in eval mode, without gradients): convolutions, matrix
    products and attention (its CPU kernel included). The GAT's per-edge attention scores, softmax
    and scatter-add messages are elementwise/scatter operations it does not count (its linear maps
    are counted); at ~8 edges a node they are small beside the linear maps. Models without the GAT
    (kind "cnn", QNetwork) can be counted on the meta device, without memory or arithmetic; the GAT
    cannot (PyG's self-loop handling calls nonzero, which has no meta implementation), so a model
    with it runs for real. A sample is one city image (the first input's batch).
    """
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    # torch's counter knows the GPU attention kernels, not the CPU one MultiheadAttention uses here
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            model(*example_inputs)
    finally:
        model.train(was_training)
    batch = len(example_inputs[0]) if isinstance(example_inputs[0], torch.Tensor) else 1
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "gflops_per_sample": counter.get_total_flops() / 1e9 / batch}


class PlanningQ(nn.Module):
    """The planner's Q-network: eqs. 26-27 on the static part of the state, two light branches for the
    configuration, on top of a fixed one-step prior.

    The state of seed 001's MDP is the configuration so far plus the environmental context. Only the
    configuration changes during an episode, so Q is split additively:

        Q(s, (c, v)) = prior[v, c] + A(static)[v, c] + G(configuration around c) + B(species shares, budget left)[v]

    * prior: the last S static planes, a one-step value of each action computed by the caller
      (``urbaneo.stages.vegplan.shared.static_state``); not learnt. Q-learning then learns the correction
      to it (residual Q-learning, our choice: 350-step episodes give the DQN a reward of ~1e-3 per
      step, and a few thousand transitions do not learn a per-action ranking from scratch);
    * A: :class:`QNetwork` (eq. 26 conv-BN-ReLU layers, self-attention, eq. 27 decision layers per cell)
      on the static planes, run once per forward call whatever the batch (B = 1 input, broadcast);
    * G: two convolutions over what is planted around each cell (planted, life form): connectivity;
    * B: an MLP on the species' shares of the planted area and the unspent budget: diversity and cost.

    A, G and B end in zero-initialised layers, so the untrained network is the prior. A replay batch
    costs one pass of the wide network instead of one per transition, which is what makes the
    paper's widths affordable. ``forward(static, local, glob, cells=None)``: static (1, C, H, W), local
    (B, L, H, W), glob (B, S + 1) -> (B, S, H, W), or (B, S) at ``cells`` (B,). ``context(static)``
    gives prior + A (the acting loop caches it between updates).
    """

    def __init__(self, static_channels: int, local_channels: int, n_species: int, preset: str | Mapping = "demo"):
        super().__init__()
        p = _preset(preset)
        self.context_net = build_qnet(p, static_channels, n_species)
        width = max(8, p["dqn_conv_channels"] // 2)
        self.local = nn.Sequential(nn.Conv2d(local_channels, width, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(width, 1, 1))
        hidden = p["dqn_hidden"][-1]
        self.glob = nn.Sequential(nn.Linear(n_species + 1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_species))
        for last in (self.context_net.decision[-1], self.local[-1], self.glob[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.n_species = n_species

    def context(self, static: torch.Tensor) -> torch.Tensor:
        return self.context_net(static) + static[:, -self.n_species:]

    def forward(self, static: torch.Tensor, local: torch.Tensor, glob: torch.Tensor, cells: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        b = self.glob(glob)  # (B, S)
        g = self.local(local)  # (B, 1, H, W)
        a = self.context(static) if context is None else context  # (1, S, H, W): the wide network, once
        if cells is not None:
            rows = torch.arange(len(cells), device=cells.device)
            return a.flatten(2)[0, :, cells].T + g.flatten(2)[rows, 0, cells].unsqueeze(1) + b
        return a + g + b[:, :, None, None]


def build_planner_q(preset: str | Mapping, static_channels: int, local_channels: int, n_species: int) -> PlanningQ:
    return PlanningQ(static_channels, local_channels, n_species, preset)
