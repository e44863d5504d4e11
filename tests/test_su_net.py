"""SU-Net (seed 002): the constraints, the shared backbone, GradNorm, the paper preset, pretrained weights."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import swin_v2_t

from urbaneo.errors import InputError
from urbaneo.models import su_net


def _batch(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pure, mixed = torch.randn(n, 4, size, size, generator=g), torch.randn(n, 4, size, size, generator=g)
    fractions = torch.softmax(torch.randn(n, 17, generator=g), 1)
    return (pure, mixed), (torch.tensor([3, 10])[:n], fractions, mixed)


def test_heads_are_non_negative_and_sum_to_one():
    torch.manual_seed(0)
    model = su_net.build("demo").eval()
    x = torch.randn(3, 4, 64, 64)
    logits = model.classify(x)
    abundance_logits, recon = model.unmix(x)
    assert logits.shape == abundance_logits.shape == (3, 17) and recon.shape == x.shape
    assert (logits >= 0).all() and (abundance_logits >= 0).all()  # ANC: ReLU
    probs, abundances = su_net.SceneHeads(model)(x)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))  # ASC: softmax
    torch.testing.assert_close(abundances.sum(1), torch.ones(3))
    torch.testing.assert_close(probs, torch.softmax(logits, 1))


def test_psc_and_msu_share_one_backbone():
    torch.manual_seed(0)
    model = su_net.build("demo").eval()
    x = torch.randn(2, 4, 64, 64)
    before = model.classify(x), model.unmix(x)[0]
    with torch.no_grad():
        model.backbone.norm.bias += 1.0  # a change to the encoder moves both networks
    after = model.classify(x), model.unmix(x)[0]
    assert not torch.equal(before[0], after[0]) and not torch.equal(before[1], after[1])
    # the training pass (one backbone pass over pure + mixed) equals the two networks run apart
    pure, mixed = x[:1], x[1:]
    psc, msu, recon = model(pure, mixed)
    torch.testing.assert_close(psc, model.classify(pure))
    torch.testing.assert_close(msu, model.unmix(mixed)[0])
    torch.testing.assert_close(recon, model.unmix(mixed)[1])


def test_gradnorm_splits_the_gradients_between_network_and_weights():
    torch.manual_seed(0)
    model = su_net.build("demo", dropout=0.0)  # training mode, yet every pass the same
    with torch.no_grad():
        model.task_weights.copy_(torch.tensor([2.0, 2.0, 2.0]))  # renormalised to sum 3 by the loss
    inputs, target = _batch()
    loss_fn = su_net.gradnorm_loss(model, alpha=1.5)
    output = model(*inputs)
    loss = loss_fn(output, target)
    torch.testing.assert_close(model.task_weights.detach(), torch.ones(3))
    torch.testing.assert_close(model.initial_losses, su_net.task_losses(output, target).detach())
    loss.backward()
    network = {n: p.grad.clone() for n, p in model.named_parameters() if n != "task_weights" and p.grad is not None}
    weights_grad = model.task_weights.grad.clone()
    # the network's gradient is that of the weighted sum alone
    model.zero_grad()
    (model.task_weights.detach() * su_net.task_losses(model(*inputs), target)).sum().backward()
    for name, grad in network.items():
        torch.testing.assert_close(grad, model.get_parameter(name).grad, msg=name)
    # L_grad pushes up the weight of the task whose gradient at the shared layer is the smallest
    losses = su_net.task_losses(model(*inputs), target)
    norms = torch.stack([torch.autograd.grad(v, model.shared_layer(), retain_graph=True)[0].norm() for v in losses])
    assert weights_grad[norms.argmin()] < 0 < weights_grad[norms.argmax()]


def test_validation_loss_is_the_weighted_sum():
    torch.manual_seed(0)
    model = su_net.build("demo").eval()
    inputs, target = _batch()
    with torch.no_grad():
        output = model(*inputs)
        loss = su_net.gradnorm_loss(model, 1.5)(output, target)
    torch.testing.assert_close(loss, su_net.task_losses(output, target).sum())
    assert not model.initial_losses.any()  # only a training step records L_i(0)


def test_paper_preset_trains_one_step_on_cpu():
    """swin_v2_t at 256 px with the 512-wide UperNet decoder: one AdamW step; size and GFLOPs recorded."""
    torch.manual_seed(0)
    model = su_net.build("paper")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    (pure, mixed), (_, fractions, _) = _batch(n=1, size=256)
    output = model(pure, mixed)
    assert [o.shape for o in output] == [(1, 17), (1, 17), (1, 4, 256, 256)]
    loss = su_net.gradnorm_loss(model, 1.5)(output, (torch.tensor([4]), fractions, mixed))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    cost = su_net.complexity("paper")
    print(f"\nSU-Net paper: {cost['params']:,} params, {cost['gflops_psc_net']:.2f} GFLOPs (PSC-Net) and "
          f"{cost['gflops_msu_net']:.2f} GFLOPs (MSU-Net) per 256x256 scene")
    backbone = sum(p.numel() for p in model.backbone.parameters())
    reference = swin_v2_t()
    assert backbone == sum(p.numel() for p in reference.parameters()) - reference.head.weight.numel() \
        - reference.head.bias.numel() + 96 * 4 * 4  # + the NIR input filters
    assert cost["params"] == sum(p.numel() for p in model.parameters())
    assert cost["gflops_psc_net"] == pytest.approx(11.9, abs=0.1)  # swin_v2_t: 5.94 G multiply-adds at 256 px
    assert cost["gflops_msu_net"] > cost["gflops_psc_net"]


def test_torchvision_swin_weights_load_into_the_paper_backbone(tmp_path):
    reference = swin_v2_t()
    path = tmp_path / "swin_v2_t.pth"
    torch.save(reference.state_dict(), path)
    model = su_net.build("paper")
    assert su_net.load_pretrained(model, path) == len(reference.state_dict()) - 2  # the head dropped
    rgb = reference.features[0][0].weight
    first = model.backbone.features[0][0].weight
    torch.testing.assert_close(first[:, :3], rgb[:, [2, 1, 0]])  # blue, green, red from R, G, B
    torch.testing.assert_close(first[:, 3], rgb.mean(1))
    with pytest.raises(InputError, match="does not fit") as err:
        su_net.load_pretrained(su_net.build("demo"), path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
