"""GPU checks run by tests/test_gpu in a process that sees the machine's GPUs.

    python cuda_checks.py CHECK [WORK_DIR]

Each check prints one JSON line last, which the test asserts on. Checks:

- ``backbones``: every TAO backbone, float32, CPU vs CUDA features (TF32 off).
- ``amp_step``: training steps with TAOAmpOptimWrapper on CUDA.
- ``train_export``: the TAO command trains on the GPU, evaluates and segments with that
  checkpoint on the GPU (fp16, batches of 2), then exports it.
- ``launcher``: single-GPU training on gpu_ids [0]; a request for more GPUs than exist.
- ``launcher_two_gpus``: train.num_gpus 2 (NCCL, one process per GPU).
- ``fast_inference``: fp16 / bf16 / compiled prediction vs float32 eager on CUDA.
"""
import json
import os
import os.path as osp
import subprocess
import sys

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.join(HERE, '..', '..'))  # tests/: seg_data, model_utils

import torch  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

import mmseg_tao  # noqa: E402,F401

BACKBONES = ['mit_b0', 'mit_b1', 'mit_b2', 'mit_b3', 'mit_b4', 'mit_b5',
             'fan_tiny_8_p4_hybrid', 'fan_small_12_p4_hybrid', 'fan_base_16_p4_hybrid',
             'fan_large_16_p4_hybrid']


def tao(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'mmseg_tao.cli', *args],
                          capture_output=True, text=True, timeout=1200)


def tiny_spec(work: str, **train) -> str:
    from seg_data import write_isbi_spec
    train = dict(dict(max_iters=4, checkpoint_interval=4, logging_interval=2), **train)
    return write_isbi_spec(work, train, val='same', results_dir=osp.join(work, 'results'),
                           evaluate=dict(checkpoint=osp.join(work, 'results', 'train',
                                                             'iter_4.pth')),
                           export=dict(checkpoint=osp.join(work, 'results', 'train',
                                                           'iter_4.pth'),
                                       input_height=64, input_width=64))


def check_backbones(work: str) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for name in BACKBONES:
        torch.manual_seed(0)
        model = MODELS.build(dict(type=name)).eval()
        model.init_weights()
        with torch.no_grad():
            cpu = model(x)
            gpu = model.cuda()(x.cuda())
        out[name] = dict(
            max_abs=max(float((a - b.cpu()).abs().max()) for a, b in zip(cpu, gpu)),
            scale=max(float(a.abs().max()) for a in cpu), shapes=[list(a.shape) for a in cpu])
        del model
        torch.cuda.empty_cache()
    return out


def check_amp_step(work: str) -> dict:
    from mmseg.registry import OPTIM_WRAPPERS

    from model_utils import seg_batch, tiny_segmentor
    result = {}
    for amp in (False, True):
        model = tiny_segmentor(num_classes=3, perturbed=False).cuda().train()
        dtypes = []
        model.decode_head.linear_pred.register_forward_hook(lambda m, i, o: dtypes.append(
            str(o.dtype)))
        wrapper = OPTIM_WRAPPERS.build(dict(
            type='TAOAmpOptimWrapper' if amp else 'OptimWrapper',
            optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3)))
        before = model.backbone.patch_embed1.proj.weight.detach().clone()
        data = seg_batch([(64, 64)] * 2, num_classes=3)
        losses = [model.train_step(data, wrapper)['loss'].item() for _ in range(3)]
        after = model.backbone.patch_embed1.proj.weight
        result['amp' if amp else 'fp32'] = dict(
            losses=losses, head_dtypes=sorted(set(dtypes)), changed=not torch.equal(
                before, after), weight_dtype=str(after.dtype),
            scaler=type(getattr(wrapper, 'loss_scaler', None)).__name__)
    result['bf16_supported'] = torch.cuda.is_bf16_supported()
    return result


def check_train_export(work: str) -> dict:
    spec = tiny_spec(work)
    train = tao('train', '-e', spec)
    test_data = [f'dataset.test_dataset.img_dir={work}/train/images',
                 f'dataset.test_dataset.ann_dir={work}/train/masks']
    evaluate = tao('evaluate', '-e', spec, *test_data, 'evaluate.precision=fp16',
                   'evaluate.batch_size=2')
    infer = tao('inference', '-e', spec, *test_data, 'inference.precision=bf16',
                'inference.batch_size=2',
                f'inference.checkpoint={work}/results/train/iter_4.pth')
    export = tao('export', '-e', spec)
    log = ''
    for root, _, files in os.walk(osp.join(work, 'results', 'train')):
        log += ''.join(open(osp.join(root, f)).read() for f in files if f.endswith('.log'))
    masks = osp.join(work, 'results', 'inference', 'mask_tao')
    return dict(train_rc=train.returncode, export_rc=export.returncode,
                evaluate_rc=evaluate.returncode, inference_rc=infer.returncode,
                predict_out=(evaluate.stderr + infer.stderr)[-3000:],
                masks=len(os.listdir(masks)) if osp.isdir(masks) else 0,
                results_json=osp.isfile(osp.join(work, 'results', 'evaluate', 'results.json')),
                train_tail=(train.stdout + train.stderr)[-3000:],
                export_out=export.stdout[-3000:] + export.stderr[-2000:],
                gpu_in_log=torch.cuda.get_device_name(0) in log,
                agreements=[float(line.rsplit(' ', 1)[1].rstrip('%'))
                            for line in export.stdout.splitlines()
                            if 'pixel agreement' in line])


def check_launcher(work: str) -> dict:
    spec = tiny_spec(work, gpu_ids=[0])
    single = tao('train', '-e', spec, 'train.max_iters=2', 'train.checkpoint_interval=2')
    too_many = tao('train', '-e', spec, f'train.num_gpus={torch.cuda.device_count() + 1}')
    return dict(single_rc=single.returncode, single_out=(single.stdout + single.stderr)[-3000:],
                launched='launching' in single.stdout,
                too_many_rc=too_many.returncode, too_many_err=too_many.stderr[-2000:],
                gpus=torch.cuda.device_count())


def check_launcher_two_gpus(work: str) -> dict:
    spec = tiny_spec(work)
    run = tao('train', '-e', spec, 'train.num_gpus=2', 'train.max_iters=4')
    return dict(rc=run.returncode, out=(run.stdout + run.stderr)[-4000:],
                ckpt=osp.isfile(osp.join(work, 'results', 'train', 'iter_4.pth')))


def check_fast_inference(work: str) -> dict:
    from model_utils import seg_batch as batch
    from model_utils import tiny_segmentor

    def predict(model, data):
        with torch.no_grad():
            out = model.test_step(data)
        return (torch.stack([s.seg_logits.data for s in out]),
                torch.stack([s.pred_sem_seg.data for s in out]))

    data = batch([(512, 512)] * 4)
    model = tiny_segmentor('mit_b0', embed_dim=256, num_classes=19).eval().cuda()
    ref_logits, ref_masks = predict(model, data)
    top2 = ref_logits.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]) / ref_logits.abs().max()
    result = {}
    for precision, tol in (('fp16', 0.01), ('bf16', 0.05)):
        model = tiny_segmentor('mit_b0', embed_dim=256, num_classes=19).eval().cuda()
        logits, masks = predict(model.set_precision(precision), data)
        clear = (margin > 2 * tol)[:, None]
        result[precision] = dict(
            agreement=float((masks == ref_masks).float().mean()),
            clear_share=float(clear.float().mean()),
            clear_agreement=float((masks == ref_masks)[clear].float().mean()),
            rel_err=float((logits - ref_logits).abs().max() / ref_logits.abs().max()),
            tol=tol)
    model = tiny_segmentor('mit_b0', embed_dim=256, num_classes=19).eval().cuda()
    model.compile_inference()
    logits, masks = predict(model, data)
    logits2, _ = predict(model, data)
    result['compiled'] = dict(agreement=float((masks == ref_masks).float().mean()),
                              max_abs=float((logits - ref_logits).abs().max()),
                              repeat_equal=bool(torch.equal(logits, logits2)))
    return result


if __name__ == '__main__':
    check, work = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else os.getcwd())
    assert torch.cuda.is_available(), 'run where a GPU is visible'
    print(json.dumps(globals()[f'check_{check}'](work)))
