"""mmdeploy 1.3.1's own tools on a config written by tools/spec2cfg.py, with the
repository's configs/deploy/segmentation_onnxruntime_dynamic.py.

mmdeploy's ``tools/deploy.py`` and ``tools/test.py`` live in the mmdeploy repository, not in
the pip package; :func:`run_deploy_py` and :func:`run_test_py` make their calls, in their
order, with their arguments (v1.3.1, ONNX Runtime backend, ``--device cpu``). The data is
tools/make_demo_dataset.py's ``shapes`` kind (4 classes) at 64x64; the checkpoint is a
seeded mit_b0 (32-wide head) whose classifier (``decode_head.linear_pred``) is fitted to
the demo masks, so that it predicts every class (a fast stand-in for a training run).
"""
import copy
import importlib.util
import os
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
from PIL import Image

import mmseg_tao  # noqa: F401

pytestmark = pytest.mark.slow  # ONNX export, ONNX Runtime and PyTorch test runs

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEPLOY_CFG = osp.join(ROOT, 'configs', 'deploy', 'segmentation_onnxruntime_dynamic.py')
# make_demo_dataset.py's shapes classes and colours (training ids 0..3)
CLASSES = ('background', 'ellipse', 'box', 'triangle')
PALETTE = np.array([[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]])


def _tool(name: str):
    """tools/NAME.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f'_tools_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_deploy_py(deploy_cfg_path: str, model_cfg_path: str, checkpoint_path: str,
                  img: str, work_dir: str) -> None:
    """mmdeploy 1.3.1 ``tools/deploy.py DEPLOY_CFG MODEL_CFG CKPT IMG --work-dir WORK
    --device cpu``: torch2onnx, to_backend (ONNX Runtime: the ONNX file itself), then
    visualize_model with the backend and with PyTorch (deploy.py runs each in a process of
    its own and exits 1 when one raises)."""
    from mmdeploy.apis import torch2onnx, visualize_model
    from mmdeploy.apis.utils import to_backend
    from mmdeploy.utils import Backend, get_backend, get_ir_config, load_config
    deploy_cfg, _ = load_config(deploy_cfg_path, model_cfg_path)
    os.makedirs(work_dir, exist_ok=True)
    ir_save_file = get_ir_config(deploy_cfg)['save_file']
    torch2onnx(img, work_dir, ir_save_file, deploy_cfg_path, model_cfg_path,
               checkpoint_path, device='cpu')
    ir_files = [osp.join(work_dir, ir_save_file)]
    backend = get_backend(deploy_cfg)
    backend_files = to_backend(backend, ir_files, work_dir=work_dir, deploy_cfg=deploy_cfg,
                               device='cpu')
    visualize_model(model_cfg_path, deploy_cfg_path, backend_files, img, 'cpu',
                    backend=backend,
                    output_file=osp.join(work_dir, f'output_{backend.value}.jpg'),
                    show_result=False)
    visualize_model(model_cfg_path, deploy_cfg_path, [checkpoint_path], img, 'cpu',
                    backend=Backend.PYTORCH,
                    output_file=osp.join(work_dir, 'output_pytorch.jpg'),
                    show_result=False)


def run_test_py(deploy_cfg_path: str, model_cfg_path: str, model_files, work_dir: str) -> dict:
    """mmdeploy 1.3.1 ``tools/test.py DEPLOY_CFG MODEL_CFG --model FILES --device cpu
    --work-dir WORK`` (batch size 1); returns the metrics ``runner.test()`` logs."""
    from mmdeploy.apis import build_task_processor
    from mmdeploy.utils.config_utils import load_config
    deploy_cfg, model_cfg = load_config(deploy_cfg_path, model_cfg_path)
    task_processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    test_dataloader = copy.deepcopy(model_cfg['test_dataloader'])
    test_dataloader['batch_size'] = 1
    dataset = task_processor.build_dataset(test_dataloader['dataset'])
    test_dataloader['dataset'] = dataset
    dataloader = task_processor.build_dataloader(test_dataloader)
    model = task_processor.build_backend_model(
        model_files, data_preprocessor_updater=task_processor.update_data_preprocessor)
    runner = task_processor.build_test_runner(model, work_dir, log_file=None, show=False,
                                              show_dir=None, wait_time=2, interval=1,
                                              dataloader=dataloader)
    return runner.test()


def _fit_classifier(model, dataset, steps: int = 300) -> None:
    """Fit ``decode_head.linear_pred`` (the 1x1 classifier) to the dataset's masks on the
    fixed features of the rest of the (seeded) network."""
    batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]),
                                    False)
    feats = {}
    head = model.decode_head
    hook = head.linear_pred.register_forward_pre_hook(lambda m, args: feats.update(x=args[0]))
    with torch.no_grad():
        head(model.backbone(batch['inputs']))
    hook.remove()
    gt = torch.stack([s.gt_sem_seg.data for s in batch['data_samples']]).float()
    target = F.interpolate(gt, size=feats['x'].shape[2:], mode='nearest')[:, 0].long()
    opt = torch.optim.Adam(head.linear_pred.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head.linear_pred(feats['x']), target).backward()
        opt.step()


@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    """The demo data (4 test images), ``my_config.py`` from tools/spec2cfg.py, a fitted
    checkpoint, and deploy.py's work dir ``out`` for the first test image."""
    root = tmp_path_factory.mktemp('mmdeploy_tools')
    init_default_scope('mmseg')  # module scope: before the suite's autouse fixture
    assert _tool('make_demo_dataset').main(
        [str(root), '--kind', 'shapes', '--size', '64', '--num-train', '1',
         '--num-val', '4']) == 0
    cfg_path = str(root / 'my_config.py')
    assert _tool('spec2cfg').main(
        [str(root / 'shapes' / 'spec.yaml'), 'model.decode_head.decoder_params.embed_dim=32',
         'dataset.workers_per_gpu=0', '-o', cfg_path]) == 0
    cfg = Config.fromfile(cfg_path)
    assert cfg.tao_metainfo.classes == CLASSES  # what this test is about

    from mmseg.registry import DATASETS, MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    _fit_classifier(model, DATASETS.build(cfg.test_dataloader.dataset))
    ckpt = str(root / 'fitted.pth')
    save_checkpoint(dict(state_dict=weights_to_cpu(model.state_dict()), meta=dict(iter=0)),
                    ckpt)

    image = str(root / 'shapes' / 'images' / 'val' / 'val_0000.png')
    work = str(root / 'out')
    run_deploy_py(DEPLOY_CFG, cfg_path, ckpt, image, work)
    return SimpleNamespace(root=root, cfg_path=cfg_path, ckpt=ckpt, image=image, work=work,
                           onnx=osp.join(work, 'end2end.onnx'))


def _nearest_palette_ids(rgb: np.ndarray) -> np.ndarray:
    dist = ((rgb[..., None, :].astype(np.int64) - PALETTE) ** 2).sum(-1)
    return dist.argmin(-1)


def test_deploy_py_writes_onnx_and_both_visualisations(deployed):
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.codebase.mmseg.deploy.segmentation import _get_dataset_metainfo
    from mmdeploy.utils import load_config

    # mmengine's LocalVisBackend names the drawings NAME_STEP.png (not the .jpg asked for).
    assert sorted(os.listdir(deployed.work)) == \
        ['end2end.onnx', 'output_onnxruntime_0.png', 'output_pytorch_0.png']
    drawn = {}
    for name in ('onnxruntime', 'pytorch'):
        with Image.open(osp.join(deployed.work, f'output_{name}_0.png')) as im:
            assert im.size == (64, 64) and im.mode == 'RGB'  # the prediction only, no GT
            drawn[name] = np.asarray(im)
    # Same predictions, same drawing.
    differ = (drawn['onnxruntime'] != drawn['pytorch']).any(-1).mean()
    assert differ <= 0.01, f'{differ:.1%} of the pixels differ'

    # Drawn in the spec's colours: every class the PyTorch model predicts on this image
    # covers its pixels mostly in its own palette colour (80% colour, 20% image).
    deploy_cfg, model_cfg = load_config(DEPLOY_CFG, deployed.cfg_path)
    processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    model = processor.build_pytorch_model(deployed.ckpt)
    data, _ = processor.create_input(deployed.image, input_shape=None)
    with torch.no_grad():
        pred = model.test_step(data)[0].pred_sem_seg.data[0].numpy()
    assert pred.shape == (64, 64)
    present = [c for c in range(len(CLASSES)) if (pred == c).sum() >= 30]
    assert len(present) >= 3, np.bincount(pred.ravel())
    nearest = _nearest_palette_ids(drawn['onnxruntime'])
    for c in present:
        assert (nearest[pred == c] == c).mean() > 0.8, CLASSES[c]

    # The class names mmdeploy's visualiser gets: the spec's, from the dataset's metainfo.
    meta = _get_dataset_metainfo(model_cfg)
    assert tuple(meta['classes']) == CLASSES
    assert [list(c) for c in meta['palette']] == PALETTE.tolist()
    visualizer = processor.get_visualizer('onnxruntime', str(deployed.root / 'vis'))
    assert tuple(visualizer.dataset_meta['classes']) == CLASSES


def test_deploy_py_visualisation_fails_without_the_metainfo(deployed):
    """Configs written before the dataset configs carried ``metainfo`` (TAOSegDataset's
    palette argument is invisible to mmdeploy): no class names, and deploy.py's
    visualisation step raises (deploy.py then exits 1 after writing end2end.onnx)."""
    from mmdeploy.apis import visualize_model
    from mmdeploy.codebase.mmseg.deploy.segmentation import _get_dataset_metainfo
    from mmdeploy.utils import Backend, load_config

    text = open(deployed.cfg_path).read()
    assert text.count('metainfo=tao_metainfo,') == 3  # train, val and test datasets
    old = str(deployed.root / 'old_config.py')
    with open(old, 'w') as f:
        f.write(text.replace('metainfo=tao_metainfo,', ''))
    _, model_cfg = load_config(DEPLOY_CFG, old)
    assert not (_get_dataset_metainfo(model_cfg) or {}).get('classes')
    with pytest.raises(AssertionError, match='class information is not provided'):
        visualize_model(old, DEPLOY_CFG, [deployed.onnx], deployed.image, 'cpu',
                        backend=Backend.ONNXRUNTIME,
                        output_file=str(deployed.root / 'old' / 'output_onnxruntime.jpg'),
                        show_result=False)


def test_test_py_onnxruntime_miou_equals_pytorch(deployed, tmp_path):
    ort = run_test_py(DEPLOY_CFG, deployed.cfg_path, [deployed.onnx], str(tmp_path / 'ort'))
    # PyTorch: mmseg's tools/test.py MODEL_CFG CKPT (an mmengine Runner from the config).
    cfg = Config.fromfile(deployed.cfg_path)
    cfg.load_from = deployed.ckpt
    cfg.work_dir = str(tmp_path / 'pytorch')
    pytorch = Runner.from_cfg(cfg).test()
    print(f"mIoU: ONNX Runtime (mmdeploy tools/test.py) {float(ort['mIoU']):.2f}, "
          f"PyTorch (Runner.test) {float(pytorch['mIoU']):.2f}")

    # The evaluator names the spec's classes.
    assert {f'IoU.{c}' for c in CLASSES} <= set(ort)
    assert abs(float(ort['mIoU']) - float(pytorch['mIoU'])) <= 0.01
    for c in CLASSES:
        assert abs(ort[f'IoU.{c}'] - pytorch[f'IoU.{c}']) <= 0.01, c
    # A model that finds the classes: the comparison means something (all-background
    # scores about 75 / 4 here).
    assert float(pytorch['mIoU']) > 40
    assert sum(pytorch[f'IoU.{c}'] > 20 for c in CLASSES) >= 3
