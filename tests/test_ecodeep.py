"""EcoDeep-Green (seed 001): the dilated CNN, the cell graph and its GAT, the fusion, the composite loss,
the Q-network, and the paper preset built for real with hand-counted parameters."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch

from urbaneo.errors import InputError
from urbaneo.models import ecodeep
from urbaneo.presets import ECODEEP

torch.set_num_threads(1)
F_IN, S = 30, 5


def _city(h=12, w=11, f=F_IN, seed=0, hole=True):
    """Smooth random features (neighbours alike, as in a city) and a valid mask with a hole."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(f, h, w))
    for axis in (1, 2):
        feats = (feats + np.roll(feats, 1, axis) + np.roll(feats, -1, axis)) / 3
    valid = np.ones((h, w), bool)
    if hole:
        valid[:3, :4] = False
        valid[-1, -1] = False
    return feats.astype(np.float32), valid


def _inputs(h=12, w=11, seed=0, **graph):
    feats, valid = _city(h, w, seed=seed)
    return torch.from_numpy(feats)[None], ecodeep.build_graph(feats, valid, **graph), valid


# ----------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("kind", ecodeep.KINDS)
def test_demo_models_give_per_cell_features_and_suitability(kind):
    torch.manual_seed(0)
    x, graph, valid = _inputs()
    model = ecodeep.build(kind, "demo", F_IN, F_IN, S).eval()
    out = model(x, graph)
    p = ECODEEP["demo"]
    dim = {"fusion": p["fused_dim"], "cnn": p["cnn_widths"][-1], "gnn": p["gat_hidden"][-1]}[kind]
    assert model.feature_dim == dim
    assert out["features"].shape == (1, dim, 12, 11) and out["suitability"].shape == (1, S, 12, 11)
    assert ((out["suitability"] >= 0) & (out["suitability"] <= 1)).all()
    if kind == "fusion":
        assert out["f_cnn"].shape == out["f_gnn"].shape == (int(valid.sum()), p["fusion_dim"])
    else:
        assert out["f_cnn"] is None and out["f_gnn"] is None
    if kind == "gnn":  # node features only where there is a node
        assert (out["features"][0, :, ~torch.from_numpy(valid)] == 0).all()


@pytest.mark.parametrize("block,widths,blocks,dilations", [
    ("basic", [8, 8, 16], [1, 2], [1, 2, 4]),
    ("bottleneck", [8, 16, 32, 32], [2, 1, 1], [1, 2, 4, 8]),
])
@pytest.mark.parametrize("size", [(7, 9), (16, 15)])
def test_dilated_resnet_keeps_the_grid(block, widths, blocks, dilations, size):
    net = ecodeep.DilatedResNet(5, widths, blocks, dilations, block=block)
    y = net(torch.randn(2, 5, *size))
    assert y.shape == (2, widths[-1], *size) and net.out_channels == widths[-1]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.stride == (1, 1) for c in convs)  # dilation, never striding
    assert {c.dilation[0] for c in convs if c.kernel_size == (3, 3)} == set(dilations[1:])
    assert all(isinstance(b.relu, torch.nn.LeakyReLU) and b.relu.negative_slope == 0.2
               for stage in net.stages for b in stage[:-1])


def test_cbam_gates_lie_in_the_unit_interval():
    torch.manual_seed(0)
    cbam = ecodeep.CBAM(32)
    x = torch.randn(2, 32, 9, 7) * 3
    channel, spatial = cbam.gates(x)
    assert channel.shape == (2, 32, 1, 1) and spatial.shape == (2, 1, 9, 7)
    for g in (channel, spatial):
        assert (g >= 0).all() and (g <= 1).all() and g.std() > 0
    y = cbam(x)
    torch.testing.assert_close(y, x * channel * spatial)
    assert (y.abs() <= x.abs() + 1e-6).all()  # gating only attenuates


def test_qnetwork_gives_a_q_value_per_cell_and_species():
    torch.manual_seed(0)
    q = ecodeep.build_qnet("demo", 40, S).eval()
    x = torch.randn(3, 40, 13, 10)
    full = q(x)
    assert full.shape == (3, S, 13, 10)
    cells = torch.tensor([0, 57, 129])
    at = q(x, cells)  # the TD loss's path: only the action's cell
    assert at.shape == (3, S)
    torch.testing.assert_close(at, full.flatten(2)[torch.arange(3), :, cells])
    # the self-attention block carries context: a change far away reaches a cell
    x2 = x.clone()
    x2[:, :, -1, -1] += 5.0
    assert not torch.allclose(q(x2)[:, :, 0, 0], full[:, :, 0, 0])


# ----------------------------------------------------------------------------------------------- graph


def test_graph_nodes_are_the_valid_cells():
    feats, valid = _city()
    g = ecodeep.build_graph(feats, valid)
    w = valid.shape[1]
    assert g.num_nodes == valid.sum() and g.x.shape == (valid.sum(), F_IN)
    flat_valid = valid.ravel()
    assert flat_valid[g.cell.numpy()].all() and len(set(g.cell.tolist())) == g.num_nodes
    rows, cols = g.cell.numpy() // w, g.cell.numpy() % w
    np.testing.assert_array_equal(g.x.numpy(), feats[:, rows, cols].T)
    np.testing.assert_array_equal(g.pos.numpy(), np.stack([rows, cols], 1))
    assert g.edge_attr.shape == (g.edge_index.shape[1], 3)
    assert g.edge_index.min() >= 0 and g.edge_index.max() < g.num_nodes


def test_spatial_edges_join_valid_8_neighbours_both_ways():
    feats, valid = _city(8, 9, hole=False)
    g = ecodeep.build_graph(feats, valid, k_similar=0)
    h, w = valid.shape
    assert (g.edge_attr[:, 0] == 1).all()
    assert g.edge_index.shape[1] == 2 * (h * (w - 1) + w * (h - 1) + 2 * (h - 1) * (w - 1))
    src, dst = (g.pos[g.edge_index[i]] for i in (0, 1))
    step = (src - dst).abs()
    assert (step.max(1).values == 1).all()
    torch.testing.assert_close(g.edge_attr[:, 2], step.norm(dim=1) / np.hypot(h - 1, w - 1))
    pairs = set(map(tuple, g.edge_index.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs)
    # with a hole: exactly the pairs of valid cells that touch, edges or corners
    feats, valid = _city()
    g = ecodeep.build_graph(feats, valid)
    h, w = valid.shape
    sp = g.edge_attr[:, 0] == 1
    got = {tuple(pair) for pair in g.cell[g.edge_index[:, sp]].T.tolist()}
    expected = {(r1 * w + c1, r2 * w + c2) for r1, c1 in zip(*np.nonzero(valid)) for r2, c2 in zip(*np.nonzero(valid))
                if max(abs(r1 - r2), abs(c1 - c2)) == 1}
    assert got == expected and sp.sum() == len(expected)


def test_similarity_edges_follow_eq_14():
    feats, valid = _city(14, 13)
    # two far-apart cells made identical must be joined
    feats[:, 4, 0] = feats[:, 13, 11]
    tau, k = 0.8, 3
    g = ecodeep.build_graph(feats, valid, tau=tau, k_similar=k)
    sim_edges = g.edge_attr[:, 0] == 0
    assert sim_edges.sum() > 0
    src, dst = g.edge_index[:, sim_edges]
    v = g.x.double()
    sim = torch.exp(-((v[src] - v[dst]) ** 2).sum(1) / (2 * g.sigma**2))
    torch.testing.assert_close(g.edge_attr[sim_edges, 1].double(), sim, rtol=1e-5, atol=1e-6)
    assert (sim > tau).all()
    assert (src != dst).all()
    assert (g.pos[src] - g.pos[dst]).abs().amax(1).min() > 1  # never a spatial neighbour
    assert torch.bincount(dst, minlength=g.num_nodes).max() <= k
    w = valid.shape[1]
    a, b = list(g.cell.tolist()).index(4 * w), list(g.cell.tolist()).index(13 * w + 11)
    assert {(a, b), (b, a)} <= set(map(tuple, g.edge_index[:, sim_edges].T.tolist()))
    # no duplicate edges at all
    assert len(set(map(tuple, g.edge_index.T.tolist()))) == g.edge_index.shape[1]
    # sigma is the median of pairwise distances (sampled): about that far, sim = exp(-1/2)
    d = torch.cdist(v, v)[~torch.eye(len(v), dtype=bool)]
    assert abs(g.sigma / d.median().item() - 1) < 0.05


def test_similarity_edges_are_each_nodes_k_nearest_in_a_homogeneous_district():
    """Nearly identical cells: every pair passes tau, each node keeps exactly its k nearest non-neighbours."""
    rng = np.random.default_rng(1)
    feats = (1.0 + 0.01 * rng.normal(size=(6, 9, 10))).astype(np.float32)
    valid = np.ones((9, 10), bool)
    k = 3
    g = ecodeep.build_graph(feats, valid, sigma=1.0, tau=0.9, k_similar=k)
    sim_edges = g.edge_attr[:, 0] == 0
    src, dst = g.edge_index[:, sim_edges]
    assert (torch.bincount(dst, minlength=g.num_nodes) == k).all()
    v = g.x.double()
    d = torch.cdist(v, v)
    near = (g.pos[:, None] - g.pos[None]).abs().amax(-1) <= 1  # itself and its spatial neighbours
    d[near] = float("inf")
    best = d.topk(k, largest=False).indices
    for node in range(g.num_nodes):
        assert set(src[dst == node].tolist()) == set(best[node].tolist())


def test_graph_is_deterministic_and_fast_on_a_city():
    feats, valid = _city(80, 78, hole=True)
    start = time.perf_counter()
    g1 = ecodeep.build_graph(feats, valid, seed=3)
    seconds = time.perf_counter() - start
    g2 = ecodeep.build_graph(feats, valid, seed=3)
    g3 = ecodeep.build_graph(feats, valid, seed=3, block=700)  # the blocking does not change the graph
    for key in ("x", "edge_index", "edge_attr", "cell"):
        assert torch.equal(g1[key], g2[key]) and torch.equal(g1[key], g3[key])
    assert g1.num_nodes > 6000 and (g1.edge_attr[:, 0] == 0).sum() > 0
    print(f"\nbuild_graph: {g1.num_nodes} nodes, {g1.edge_index.shape[1]} edges in {seconds:.2f} s")
    assert seconds < 2.0


def test_graph_rejects_bad_input():
    feats, valid = _city()
    with pytest.raises(InputError, match="no valid cell"):
        ecodeep.build_graph(feats, np.zeros_like(valid))
    with pytest.raises(InputError, match="do not match"):
        ecodeep.build_graph(feats, valid[:-1])
    bad = feats.copy()
    bad[0, 5, 5] = np.nan
    with pytest.raises(InputError, match="not finite"):
        ecodeep.build_graph(bad, valid)
    with pytest.raises(InputError, match="unknown EcoDeep-Green kind"):
        ecodeep.build("both", "demo", F_IN, F_IN, S)
    with pytest.raises(InputError, match="unknown EcoDeep-Green preset"):
        ecodeep.build_qnet("huge", F_IN, S)


# ----------------------------------------------------------------------------------------------- GAT, fusion


def test_gat_attention_uses_the_edge_features():
    torch.manual_seed(0)
    _, g, _ = _inputs()
    p = ECODEEP["demo"]
    gat = ecodeep.CellGAT(F_IN, node_dim=p["gat_node_dim"], edge_dim=p["gat_edge_dim"], hidden=p["gat_hidden"],
                          heads=p["gat_heads"], dropout=0.0, attn_dropout=0.0).eval()
    out = gat(g.x, g.edge_index, g.edge_attr)
    assert out.shape == (g.num_nodes, p["gat_hidden"][-1])
    changed = g.edge_attr.clone()
    changed[:, 2] = changed[:, 2].flip(0)  # the same edges, other relational features
    assert not torch.allclose(gat(g.x, g.edge_index, changed), out)
    assert all(conv.lin_edge is not None for conv in gat.convs)


@pytest.mark.parametrize("max_tokens", [1024, 16])  # every cell a key; keys pooled to 4x4 blocks
def test_fusion_output_depends_on_the_gnn_features(max_tokens):
    torch.manual_seed(0)
    _, g, valid = _inputs()
    fusion = ecodeep.CrossAttentionFusion(16, 8, 12, 2, 20, max_tokens=max_tokens).eval()
    f_cnn = torch.randn(1, 16, *valid.shape)
    nodes = torch.randn(g.num_nodes, 8)
    fused, at_cnn, at_gnn = fusion(f_cnn, nodes, g.cell)
    assert fused.shape == (1, 20, *valid.shape) and at_cnn.shape == at_gnn.shape == (g.num_nodes, 12)
    other = nodes.clone()
    other[:5] += 1.0
    fused2, _, at_gnn2 = fusion(f_cnn, other, g.cell)
    assert not torch.allclose(fused, fused2)
    # a node's change reaches cells without a node too (cross attention is city-wide)
    hole = torch.from_numpy(~valid)
    assert not torch.allclose(fused[0, :, hole], fused2[0, :, hole])
    torch.testing.assert_close(at_gnn2[5:], at_gnn[5:])  # eq. 18 is per cell
    # f_cnn at the node cells is W_CNN * F_CNN there
    proj = fusion.proj_cnn(f_cnn).flatten(2)[0, :, g.cell].T
    torch.testing.assert_close(at_cnn, proj)


def test_composite_loss_parts_and_mask():
    torch.manual_seed(0)
    x, g, valid = _inputs()
    model = ecodeep.build("fusion", "demo", F_IN, F_IN, S).eval()
    out = model(x, g)
    target = torch.rand(1, S, *valid.shape)
    mask = torch.zeros(1, 1, *valid.shape, dtype=bool)
    mask[..., 4:, 2:9] = True
    total, parts = ecodeep.composite_loss(out, target, mask, model, 0.1, 1e-3)
    assert all(parts[k] > 0 for k in ("task", "consistency", "reg", "total"))
    assert parts["total"] == pytest.approx(parts["task"] + 0.1 * parts["consistency"] + 1e-3 * parts["reg"], rel=1e-5)
    pred = out["suitability"]
    assert parts["task"] == pytest.approx(float(((pred - target)[mask.expand_as(pred)] ** 2).mean().detach()), rel=1e-5)
    names = set(model.regularised())
    assert {"fusion.proj_cnn.weight", "fusion.proj_gnn.weight", "gat.convs.0.lin.weight",
            "gat.convs.1.att_edge"} <= names
    params = dict(model.named_parameters())
    assert parts["reg"] == pytest.approx(float(sum(params[n].detach().square().sum() for n in names)), rel=1e-5)
    # targets outside the mask do not count, inside they do
    moved = target.clone()
    moved[~mask.expand_as(target)] = 1 - moved[~mask.expand_as(target)]
    assert ecodeep.composite_loss(out, moved, mask, model, 0.1, 1e-3)[1] == parts
    moved[..., 5, 5] += 0.5
    assert ecodeep.composite_loss(out, moved, mask, model, 0.1, 1e-3)[1]["task"] != parts["task"]
    total.backward()
    assert model.gat.convs[0].att_edge.grad is not None and model.cnn.stem[0].weight.grad is not None
    with pytest.raises(InputError, match="no cell"):
        ecodeep.composite_loss(out, target, torch.zeros_like(mask), model, 0.1, 1e-3)


def test_demo_fusion_learns_the_proxy_task():
    """A few AdamW steps of eq. 21 on one small city lower the masked suitability error."""
    torch.manual_seed(0)
    x, g, valid = _inputs(16, 15)
    p = ECODEEP["demo"]
    model = ecodeep.build("fusion", "demo", F_IN, F_IN, S)
    target = torch.sigmoid(3 * x[:, :S] / x.std())  # a function of the cell's own features
    mask = torch.from_numpy(valid)[None, None]
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    losses = []
    for _ in range(25):
        out = model(x, g)
        loss, parts = ecodeep.composite_loss(out, target, mask, model, p["lambda1"], p["lambda2"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["task"])
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------------------------- paper preset


def _cnn_count(c_in, widths, blocks):
    """Hand count: 7x7 stem + BN, ResNet-50 Bottlenecks (1x1, 3x3, 1x1 convs, 3 BNs, 1x1 projection
    where the width changes), CBAM (shared 2-layer MLP, 7x7 conv on 2 maps) after each stage."""
    n = c_in * widths[0] * 49 + 2 * widths[0]
    inp = widths[0]
    for width, count in zip(widths[1:], blocks):
        planes = width // 4
        for _ in range(count):
            n += inp * planes + planes * planes * 9 + planes * width + 2 * (planes + planes + width)
            if inp != width:
                n += inp * width + 2 * width
            inp = width
        n += 2 * width * max(width // 16, 4) + 2 * 49
    return n


def _gat_count(f_in, node_dim, edge_dim, hidden):
    n = f_in * node_dim + node_dim + 3 * edge_dim + edge_dim
    prev = node_dim
    for out in hidden:  # lin, att_src/dst/edge, lin_edge, bias; residual projection when widths differ
        n += prev * out + 3 * out + edge_dim * out + out + (prev * out if prev != out else 0)
        prev = out
    return n


def _qnet_count(c_in, s, conv, layers, hidden):
    n = c_in * conv + 2 * conv + layers * (conv * conv * 9 + 2 * conv) + 2 * conv + 4 * conv * conv + 4 * conv
    prev = conv
    for width in [*hidden, s]:
        n += prev * width + width
        prev = width
    return n


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_is_real_and_trains_one_step_on_cpu():
    torch.manual_seed(0)
    p = ECODEEP["paper"]
    assert p["bn_momentum"] == 0.1  # the paper's Keras-style 0.9
    x, g, valid = _inputs(12, 12)
    target = torch.rand(1, S, 12, 12)
    mask = torch.from_numpy(valid)[None, None]
    counts = {}
    for kind in ecodeep.KINDS:
        model = ecodeep.build(kind, "paper", F_IN, F_IN, S)
        opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        out = model(x, g)
        assert out["features"].shape == (1, model.feature_dim, 12, 12)
        loss, parts = ecodeep.composite_loss(out, target, mask, model, p["lambda1"], p["lambda2"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert np.isfinite(parts["total"])
        total = counts[f"EcoDeepGreen[{kind}]"] = _count(model)
        if model.cnn is not None:
            counts["cnn"] = _count(model.cnn)
            assert counts["cnn"] == _cnn_count(F_IN, p["cnn_widths"], p["cnn_blocks"])
            assert model.cnn.out_channels == 1024
            assert all(m.momentum == 0.1 for m in model.cnn.modules() if isinstance(m, torch.nn.BatchNorm2d))
        if model.gat is not None:
            counts["gat"] = _count(model.gat)
            assert counts["gat"] == _gat_count(F_IN, 128, 32, [128, 256, 256, 512])
            assert [c.heads for c in model.gat.convs] == [8] * 4
            assert [c.out_channels for c in model.gat.convs] == [16, 32, 32, 64]
        if kind == "fusion":
            d, fused = p["fusion_dim"], p["fused_dim"]
            counts["fusion"] = _count(model.fusion)
            assert counts["fusion"] == (1024 * d + d) + (512 * d + d) + (4 * d * d + 4 * d) + (d * fused + fused)
            assert model.feature_dim == 1024 and model.fusion.attn.num_heads == 8
        hh = p["head_hidden"]
        parts_count = sum(_count(m) for m in (model.cnn, model.gat, model.fusion) if m is not None)
        assert total == parts_count + model.feature_dim * hh + hh + hh * S + S

    c_in = 1024 + S + 2  # fused features, the plan one-hot, two scalars
    q = ecodeep.build_qnet("paper", c_in, S)
    opt = torch.optim.Adam(q.parameters(), lr=p["dqn_lr"])
    states = torch.randn(4, c_in, 12, 12)
    qv = q(states)
    assert qv.shape == (4, S, 12, 12)
    loss = (q(states, torch.tensor([0, 5, 77, 143]))[:, 1] - 1.0).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    counts["qnet"] = _count(q)
    assert counts["qnet"] == _qnet_count(c_in, S, p["dqn_conv_channels"], p["dqn_conv_layers"], p["dqn_hidden"])
    assert [m.out_features for m in q.decision if isinstance(m, torch.nn.Linear)] == [1024, 2048, 2048, 1024, S]
    print("\nEcoDeep-Green paper parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def test_complexity_counts_per_sample_flops():
    with torch.device("meta"):
        q = ecodeep.build_qnet("demo", 40, S)
        one = ecodeep.complexity(q, (torch.zeros(1, 40, 20, 18),))
        four = ecodeep.complexity(q, (torch.zeros(4, 40, 20, 18),))
    assert one["parameters"] == _count(q) and one["gflops_per_sample"] > 0
    assert four["gflops_per_sample"] == pytest.approx(one["gflops_per_sample"])
    # per cell the decision layers alone are 2 x (16 x 32 + 32 x 32 + 32 x S) FLOPs
    p = ECODEEP["demo"]
    widths = [p["dqn_conv_channels"], *p["dqn_hidden"], S]
    decision = 2 * 20 * 18 * sum(a * b for a, b in itertools.pairwise(widths)) / 1e9
    assert one["gflops_per_sample"] > decision
    # the attention is counted on CPU (torch's counter lacks its CPU kernel) as on meta
    fusion = ecodeep.CrossAttentionFusion(8, 8, 16, 2, 8, max_tokens=1024).eval()
    x, g, valid = _inputs()
    args = (torch.randn(1, 8, *valid.shape), torch.randn(g.num_nodes, 8), g.cell)
    cells = valid.size  # below max_tokens every cell is a key (those without a node masked)
    # three 1x1 convs 8 <-> 16, the four 16 x 16 projections of the attention, Q K^T and A V
    hand = 2 * cells * 8 * 16 * 3 + 2 * cells * 16 * 16 * 4 + 2 * 2 * cells * cells * 16
    assert ecodeep.complexity(fusion, args)["gflops_per_sample"] * 1e9 == hand
    model = ecodeep.build("fusion", "demo", F_IN, F_IN, S)
    cost = ecodeep.complexity(model, (x, g))
    assert cost["parameters"] == _count(model) and cost["gflops_per_sample"] > 0 and model.training
