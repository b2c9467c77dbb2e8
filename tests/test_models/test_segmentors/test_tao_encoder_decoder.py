"""TAOEncoderDecoder's fast prediction: weights cast once to fp16 / bf16, mixed-size
batches, torch.compile; each checked against float32 eager prediction of the same model."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from model_utils import seg_batch as batch
from model_utils import tiny_segmentor


def build(backbone: str = 'mit_b0'):
    return tiny_segmentor(backbone).eval()


def logits_and_masks(model, data):
    with torch.no_grad():
        out = model.test_step(data)
    return ([s.seg_logits.data for s in out], [s.pred_sem_seg.data[0] for s in out])


@pytest.mark.slow  # several models in fp16 / bf16 on the CPU
@pytest.mark.parametrize('backbone', ['mit_b0', 'fan_tiny_8_p4_hybrid'])
@pytest.mark.parametrize('precision,tol,agree', [('bf16', 0.05, 0.98), ('fp16', 0.01, 0.995)])
def test_reduced_precision_agrees_with_fp32(backbone, precision, tol, agree):
    model = build(backbone)
    data = batch([(64, 64)] * 2)
    ref_logits, ref_masks = logits_and_masks(model, data)
    model.set_precision(precision)
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    assert {p.dtype for p in model.backbone.parameters()} == {dtype}
    assert {p.dtype for p in model.decode_head.parameters()} == {dtype}
    logits, masks = logits_and_masks(model, data)
    for ref, out, ref_mask, mask in zip(ref_logits, logits, ref_masks, masks):
        assert out.dtype == torch.float32 and out.shape == ref.shape
        scale = ref.abs().max()
        assert (out - ref).abs().max() <= tol * scale
        # Where the float32 decision is not a near-tie, the decision is the same.
        top2 = ref.topk(2, dim=0).values
        clear = (top2[0] - top2[1]) > 2 * tol * scale
        assert clear.float().mean() > 0.5
        assert torch.equal(mask[clear], ref_mask[clear])
        # Random weights and noise images leave many near-ties (measured: bf16 98.6-99.5%,
        # fp16 99.9-100% of the pixels agree); trained models are far more decided.
        assert (mask == ref_mask).float().mean() >= agree


@pytest.mark.slow  # the profiler takes ~13 s to start on 2 cores
def test_weights_are_cast_once_not_per_op():
    """autocast converts weights and activations at every op; a cast model converts the
    input once and the logits once (count of copy-casts in a forward pass)."""
    model = build().set_precision('bf16')
    data = batch([(64, 64)])

    def casts():
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
            model.test_step(data)
        return sum(e.count for e in prof.key_averages() if e.key == 'aten::_to_copy')

    ours = casts()
    model.set_precision('fp32')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        autocast_casts = casts()
    assert ours <= 4 < autocast_casts  # uint8 -> float, float -> bf16, logits -> float


def test_mixed_size_batch_matches_one_by_one():
    """mmseg's data preprocessor refuses a test batch of different sizes; the model runs
    each size as its own group, in order."""
    model = build()
    sizes = [(64, 64), (48, 80), (64, 64), (48, 80), (32, 32)]
    data = batch(sizes)
    with torch.no_grad():
        together = model.test_step(data)
        alone = [model.test_step(dict(inputs=[x], data_samples=[s]))[0]
                 for x, s in zip(data['inputs'], data['data_samples'])]
    for a, b, (h, w) in zip(together, alone, sizes):
        assert a.pred_sem_seg.data.shape == (1, h, w)
        assert torch.allclose(a.seg_logits.data, b.seg_logits.data, atol=1e-5)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision 'int8': expected one of fp32, fp16, bf16"):
        build().set_precision('int8')


@pytest.mark.slow  # torch.compile
def test_compiled_prediction_matches_eager():
    model = build()
    data = batch([(64, 64)] * 2)
    ref_logits, _ = logits_and_masks(model, data)
    model.compile_inference()
    logits, _ = logits_and_masks(model, data)
    logits_again, _ = logits_and_masks(model, batch([(64, 64)] * 2))
    for ref, out, again in zip(ref_logits, logits, logits_again):
        assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)
        assert torch.equal(again, out)  # a second call reuses the compiled graph


@pytest.mark.slow  # torch.compile
def test_cuda_graph_mode_marks_steps_and_copies_outputs(monkeypatch):
    """With CUDA graphs (reduce-overhead) each prediction starts a new graph step.
    torch.compile is replaced by a recorder: the GPU run is in tests/test_gpu."""
    compiled, steps, outputs = [], [], []

    def fake_compile(fn, **kwargs):
        compiled.append(kwargs)

        def run(x):
            outputs.append(fn(x))
            return outputs[-1]
        return run

    monkeypatch.setattr(torch, 'compile', fake_compile)
    monkeypatch.setattr(torch.compiler, 'cudagraph_mark_step_begin',
                        lambda: steps.append(1))
    model = build()
    data = batch([(64, 64)] * 2)
    ref_logits, _ = logits_and_masks(model, data)
    model.compile_inference()  # on the CPU: the default mode, no CUDA graphs
    assert compiled == [dict(mode='default', dynamic=False)]
    logits_and_masks(model, data)
    assert steps == []
    model.compile_inference('reduce-overhead')
    logits, _ = logits_and_masks(model, data)
    assert steps == [1] and compiled[-1]['mode'] == 'reduce-overhead'
    assert len(outputs) == 2
    for ref, out in zip(ref_logits, logits):
        assert torch.equal(out, ref)
