"""TAOSegFormerHead computes the paper's head: per-level Linear, upsample, concat
[c4, c3, c2, c1], 1x1 conv + BN + ReLU, dropout, classifier (forward and gradients)."""
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmseg_tao  # noqa: F401


def reference(head, feats):
    """The head written out as in NVlabs' SegFormerHead."""
    size = feats[0].shape[2:]
    levels = []
    for i in reversed(range(len(feats))):
        proj = getattr(head, f'linear_c{i + 1}').proj
        x = proj(feats[i].flatten(2).transpose(1, 2)).transpose(1, 2)
        x = x.reshape(x.shape[0], -1, *feats[i].shape[2:])
        levels.append(F.interpolate(x, size=size, mode='bilinear', align_corners=False))
    fuse = head.linear_fuse
    x = F.relu(fuse.bn(fuse.conv(torch.cat(levels, dim=1))))
    return head.linear_pred(x)


def test_matches_reference_forward_and_backward():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='TAOSegFormerHead', in_channels=[8, 16, 32, 64],
                             embed_dim=24, num_classes=5, dropout_ratio=0.0))
    head.init_weights()
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    feats = [torch.randn(2, c, 40 // s, 48 // s) for c, s in zip([8, 16, 32, 64], [1, 2, 4, 8])]
    for mode in ('train', 'eval'):  # batch statistics and running statistics
        getattr(head, mode)()
        ours = head(feats)
        grads = torch.autograd.grad(ours.square().sum(), list(head.parameters()))
        ref = reference(head, feats)
        ref_grads = torch.autograd.grad(ref.square().sum(), list(head.parameters()))
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    assert ours.shape == (2, 5, 40, 48)
    assert not hasattr(head, 'conv_seg')  # the classifier is linear_pred, as in TAO


def test_loss_equals_mmseg_without_host_sync():
    """Same losses and accuracy as mmseg's BaseDecodeHead.loss_by_feat, including ignored
    pixels and an all-ignored batch, but no boolean-mask indexing (a host sync)."""
    from mmengine.structures import PixelData
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    from mmseg.structures import SegDataSample
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    head = MODELS.build(dict(type='TAOSegFormerHead', in_channels=[8, 16, 32, 64],
                             embed_dim=24, num_classes=5))
    logits = torch.randn(2, 5, 16, 16)
    for labels in (torch.randint(0, 5, (2, 1, 64, 64)),  # some pixels set to ignore below
                   torch.full((2, 1, 64, 64), 255)):  # all ignored
        labels[:, :, :8] = 255
        samples = []
        for lab in labels:
            s = SegDataSample()
            s.gt_sem_seg = PixelData(data=lab)
            samples.append(s)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            ours = head.loss_by_feat(logits, samples)
        ref = BaseDecodeHead.loss_by_feat(head, logits, samples)
        assert set(ours) == set(ref) == {'loss_ce', 'acc_seg'}
        assert torch.allclose(ours['loss_ce'], ref['loss_ce'])
        assert ours['acc_seg'].shape == ref['acc_seg'].shape
        assert torch.allclose(ours['acc_seg'], ref['acc_seg'], rtol=1e-5)
        ops = {e.key for e in prof.key_averages()}
        assert not ops & {'aten::nonzero', 'aten::item', 'aten::_local_scalar_dense'}


def test_module_by_module_path_equals_the_fused_one():
    """fuse_levels=False runs linear_c*, concat and linear_fuse as modules (hooks see them);
    outputs and gradients equal the fused path and NVlabs' reference."""
    torch.manual_seed(0)
    cfg = dict(type='TAOSegFormerHead', in_channels=[8, 16, 32, 64], embed_dim=24,
               num_classes=5, dropout_ratio=0.0)
    fused = MODELS.build(cfg)
    plain = MODELS.build(dict(cfg, fuse_levels=False))
    plain.load_state_dict(fused.state_dict())
    seen = []
    for name, module in plain.named_modules():
        if name.startswith(('linear_c', 'linear_fuse')) and name.count('.') == 0:
            module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    feats = [torch.randn(2, c, 40 // s, 48 // s) for c, s in zip([8, 16, 32, 64], [1, 2, 4, 8])]
    for head in (fused, plain):
        head.train()
    outs, grads = [], []
    for head in (fused, plain):
        out = head(feats)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), list(head.parameters())))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outs[1], reference(plain, feats), atol=1e-5, rtol=1e-5)
    # Biases before a training-mode BN get (analytically) zero gradient: compare against
    # the gradients' overall scale, not elementwise.
    scale = max(float(g.abs().max()) for g in grads[0])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6 * scale, rtol=1e-4)
    assert seen == ['linear_c4', 'linear_c3', 'linear_c2', 'linear_c1', 'linear_fuse']
    seen.clear()
    fused.register_forward_hook(lambda *a: None)
    for name, module in fused.named_modules():
        if name in ('linear_c1', 'linear_fuse'):
            module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    fused(feats)
    assert seen == []  # the fused path bypasses the modules: why the switch exists
