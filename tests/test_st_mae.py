"""st-MAE of seed 000: season embedding, OSM vegetation masking (eqs. 3-4), loss, gap filling, transfer."""

from __future__ import annotations

import pytest
import torch

from urbaneo.errors import InputError
from urbaneo.models import st_mae
from urbaneo.presets import ST_MAE

DEMO = ST_MAE["demo"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return st_mae.build(DEMO)


def test_paper_preset_is_mae_base():
    # 12 x 768 encoder with MAE's 512 x 8 decoder: 111.9 M parameters in MAE's own count (ours adds the
    # season projection: 4 linear layers of 768)
    with torch.device("meta"):
        big = st_mae.build(ST_MAE["paper"])
    season = sum(p.numel() for p in big.season_embed.parameters())
    assert season == 4 * 768 + 768 + 3 * (768 * 768 + 768)
    assert 111.5e6 < st_mae.parameter_count(big) - season < 112.5e6
    assert big.grid == 14 and len(big.blocks) == 12


def test_osm_mask_takes_vegetation_first(model):
    length = model.grid ** 2  # 64 patches, 48 masked at 0.75
    green = torch.zeros(2, 32, 32)
    green[0, :, :24] = 1.0  # image 0: 6 of 8 patch columns vegetated -> 48 OSM tokens: exactly the mask
    green[1, :8, :] = 1.0  # image 1: 2 of 8 patch rows -> 16 OSM tokens, topped up with 32 random others
    veg = model.vegetation_tokens(green)
    assert veg.shape == (2, length) and veg[0].sum() == 48 and veg[1].sum() == 16
    mask = model.choose_mask(2, veg, generator=torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [48, 48]
    assert torch.equal(mask[0], veg[0])  # eq. 4, first case: OSM tokens only
    assert mask[1][veg[1]].all() and mask[1][~veg[1]].sum() == 32  # second case: all of them + ROP
    # a patch is an OSM token from a vegetation share of alpha = 0.4 (eq. 3)
    share = torch.zeros(1, 32, 32)
    share[0, :4, :4] = 0.4
    share[0, :4, 4:8] = 0.39
    assert model.vegetation_tokens(share)[0, :2].tolist() == [True, False]


def test_random_mode_ignores_vegetation():
    torch.manual_seed(0)
    plain = st_mae.build(DEMO, mask_mode="random")
    veg = torch.zeros(4, 64, dtype=torch.bool)
    veg[:, :16] = True
    mask = plain.choose_mask(4, veg, generator=torch.Generator().manual_seed(1))
    assert mask.sum(1).tolist() == [48] * 4 and not mask[:, :16].all()


def test_forward_loss_and_season(model):
    imgs = torch.randn(2, 3, 32, 32)
    mask = model.choose_mask(2, None, generator=torch.Generator().manual_seed(0))
    summer, winter = torch.tensor([1, 1]), torch.tensor([3, 3])
    pred = model(imgs, summer, mask)
    assert pred.shape == (2, 64, 4 * 4 * 3)
    assert not torch.allclose(pred, model(imgs, winter, mask))  # the season reaches every token
    loss = model.loss(imgs, pred, mask)
    # only masked patches count: changing a visible patch's target leaves the loss as it is
    other = imgs.clone()
    visible = (~mask[0]).nonzero()[0, 0].item()
    r, c = divmod(visible, 8)
    other[0, :, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 5.0
    assert float(model.loss(other, pred, mask)) == pytest.approx(float(loss))
    loss.backward()
    assert model.season_embed[0].weight.grad is not None
    assert torch.equal(model.unpatchify(model.patchify(imgs)), imgs)


def test_reconstruct_fills_only_the_cloudy_patches(model):
    imgs = torch.randn(2, 3, 32, 32)
    cloudy = torch.zeros(2, 64, dtype=torch.bool)
    cloudy[0, [0, 9, 63]] = True  # image 1 is clear: returned unchanged
    out = model.reconstruct(imgs, torch.tensor([0, 2]), cloudy)
    assert torch.equal(out[1], imgs[1])
    assert torch.equal(out[0, :, 0:4, 4:8], imgs[0, :, 0:4, 4:8])  # patch 1 (row 0, column 1) is clear
    assert not torch.equal(out[0, :, 4:8, 4:8], imgs[0, :, 4:8, 4:8])  # patch 9 (1, 1) is reconstructed


def test_transfer_from_an_mae_checkpoint(model, tmp_path):
    # an "official" checkpoint: {"model": encoder weights}, as facebookresearch/mae publishes them
    encoder = {k: v for k, v in model.state_dict().items() if not k.startswith(("decoder", "mask_token", "season"))}
    torch.save({"model": encoder}, tmp_path / "mae_pretrain.pth")
    torch.manual_seed(1)
    fresh = st_mae.build(DEMO)
    assert st_mae.load_pretrained(fresh, tmp_path / "mae_pretrain.pth") == len(encoder)
    assert torch.equal(fresh.blocks[3].attn.qkv.weight, model.blocks[3].attn.qkv.weight)
    fresh.freeze(2)
    assert not any(p.requires_grad for p in fresh.blocks[1].parameters())
    assert all(p.requires_grad for p in fresh.blocks[2].parameters()) and not fresh.patch_embed.proj.weight.requires_grad
    # the wrong size of model: one line naming the file and what does not fit
    wider = dict(DEMO, dim=128)
    with pytest.raises(InputError, match=r"mae_pretrain.pth: does not fit this st-MAE \(0 unknown tensors, \d+ shape"):
        st_mae.load_pretrained(st_mae.build(wider), tmp_path / "mae_pretrain.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk.pth: cannot be read as a checkpoint"):
        st_mae.load_pretrained(fresh, tmp_path / "junk.pth")


def test_a_few_steps_learn(model):
    """Reconstruction of smooth images improves over a few AdamW steps at the paper's lr 1e-3."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    imgs = torch.stack([torch.stack([yy * a, xx * b, (yy + xx) * c]) for a, b, c in torch.rand(16, 3)])
    season = torch.arange(16) % 4
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        mask = model.choose_mask(16, None, generator=gen)
        loss = model.loss(imgs, model(imgs, season, mask), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
