"""The CUDA code paths, for real: skipped without a GPU (see conftest's device policy).

Each test runs one check of tests/data/scripts/cuda_checks.py in a process that sees the
machine's GPUs and asserts on what it reports. Their CPU twins (fake ``torch.cuda``) are
in tests/test_apis/test_launch.py and tests/test_engine/test_optimizers.
"""
import pytest

from conftest import run_cuda_check

pytestmark = pytest.mark.cuda


def test_every_backbone_matches_cpu_in_fp32(tmp_path):
    result = run_cuda_check('backbones', str(tmp_path))
    assert len(result) == 10
    for name, r in result.items():
        assert r['max_abs'] <= 1e-3, (name, r)
        assert r['scale'] > 1e-2, (name, r)  # not trivially equal (all zeros)


def test_amp_training_step(tmp_path):
    result = run_cuda_check('amp_step', str(tmp_path))
    amp, fp32 = result['amp'], result['fp32']
    want = 'torch.bfloat16' if result['bf16_supported'] else 'torch.float16'
    assert amp['head_dtypes'] == [want] and fp32['head_dtypes'] == ['torch.float32']
    assert amp['weight_dtype'] == 'torch.float32' and amp['changed']
    # bf16 needs no loss scaling; fp16 keeps mmengine's GradScaler.
    assert amp['scaler'] == ('NoneType' if result['bf16_supported'] else 'GradScaler')
    assert amp['losses'][0] == pytest.approx(fp32['losses'][0], rel=0.02)
    assert amp['losses'][-1] < amp['losses'][0]


def test_gpu_trained_checkpoint_evaluates_segments_and_exports(tmp_path):
    result = run_cuda_check('train_export', str(tmp_path))
    assert result['train_rc'] == 0, result['train_tail']
    assert result['gpu_in_log'], result['train_tail']
    assert result['evaluate_rc'] == 0 and result['results_json'], result['predict_out']
    assert result['inference_rc'] == 0 and result['masks'] == 4, result['predict_out']
    assert result['export_rc'] == 0, result['export_out']
    assert len(result['agreements']) == 2 and min(result['agreements']) >= 99.9


def test_launcher_single_gpu_and_too_many(tmp_path):
    result = run_cuda_check('launcher', str(tmp_path))
    assert result['single_rc'] == 0 and not result['launched'], result['single_out']
    assert result['too_many_rc'] == 2
    assert f"but this machine shows {result['gpus']} GPU(s)" in result['too_many_err']
    assert 'Traceback' not in result['too_many_err']


@pytest.mark.cuda(gpus=2)
def test_launcher_two_gpus_nccl(tmp_path):
    result = run_cuda_check('launcher_two_gpus', str(tmp_path))
    assert result['rc'] == 0, result['out']
    assert 'launching 2 processes on GPUs [0, 1]' in result['out'] and 'nccl' in result['out']
    assert result['ckpt']


def test_fast_inference_agrees_with_fp32(tmp_path):
    result = run_cuda_check('fast_inference', str(tmp_path))
    # Random weights on noise images leave near-ties: where float32's decision is clear,
    # the reduced-precision one is the same; overall the floors measured on CPU hold.
    for precision, floor in (('fp16', 0.995), ('bf16', 0.98)):
        r = result[precision]
        assert r['rel_err'] <= r['tol'] and r['clear_agreement'] == 1.0, result
        assert r['clear_share'] > 0.5 and r['agreement'] >= floor, result
    assert result['compiled']['agreement'] >= 0.999, result
    assert result['compiled']['repeat_equal'], result
