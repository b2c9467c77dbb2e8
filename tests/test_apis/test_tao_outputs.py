"""Each spec form gets its TAO's outputs: TAO 6's inference files (colour maps named as the
inputs, combined visualisations) for images of any size, and TAO's status.json lines for
evaluate, inference and export in both forms.

The expected keys and messages are recorded from NVIDIA's sources in
``tests/data/tao_status/keys.json`` (sources in its README).
"""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
import yaml
from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
from PIL import Image

from mmseg_tao.apis.evaluate import evaluate
from mmseg_tao.apis.export import export
from mmseg_tao.apis.inference import inference, tao6_color_map, tao6_colorize, write_tao6_outputs
from mmseg_tao.spec import load_spec
from model_utils import tiny_segmentor

KEYS = json.load(open(osp.join(osp.dirname(__file__), '..', 'data', 'tao_status',
                               'keys.json')))
COLORS = [[0, 0, 0], [220, 20, 60], [0, 160, 80]]
CLASSES = ['background', 'blob', 'stripe']
PALETTE6 = [dict(seg_class=c, mapping_class=c, label_id=i, rgb=rgb)
            for i, (c, rgb) in enumerate(zip(CLASSES, COLORS))]
PALETTE5 = [dict(seg_class=c, mapping_class=c, label_id=i, rgb=rgb)
            for i, (c, rgb) in enumerate(zip(CLASSES, COLORS))]
IMG_SIZE = 64
# (height, width, name): non-square, odd, smaller and larger than img_size, and a JPEG.
INPUTS = [(96, 128, 'a_96x128.png'), (131, 77, 'b_131x77.png'), (40, 40, 'c_40.png'),
          (150, 90, 'd_150x90.jpg')]


def _write(root, split, masks=True):
    rng = np.random.default_rng(0)
    os.makedirs(root / 'images' / split, exist_ok=True)
    os.makedirs(root / 'masks' / split, exist_ok=True)
    for h, w, name in INPUTS:
        ids = np.zeros((h, w), np.uint8)
        ids[h // 4:h // 2, w // 4:w // 2] = 1
        ids[:, :4] = 2
        img = np.clip(ids[..., None] * 70.0 + 40 + rng.normal(0, 8, (h, w, 3)), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(root / 'images' / split / name)
        if masks:
            Image.fromarray(np.array(COLORS, np.uint8)[ids]).save(
                root / 'masks' / split / (osp.splitext(name)[0] + '.png'))


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _check_common(rows, task, form):
    """Every line has TAO's common keys in TAO's formats; the first and last lines are
    TAO's task lines (mmseg-tao adds a final SUCCESS)."""
    for r in rows:
        assert set(KEYS['common']['line']) <= set(r)
        assert r['status'] in KEYS['common']['status_values'] and r['verbosity'] == 'INFO'
        month, day, year = map(int, r['date'].split('/'))
        hour, minute, second = map(int, r['time'].split(':'))
        assert r['date'] == f'{month}/{day}/{year}' and 0 <= hour < 24
        assert r['time'] == f'{hour}:{minute}:{second}'  # TAO does not zero-pad
    name = KEYS[f'tao{form}']['task_name'][task]
    assert (rows[0]['status'], rows[0]['message']) == ('STARTED', f'Starting {name} {task}.')
    assert (rows[-2]['status'], rows[-2]['message']) == (
        'RUNNING', f'{task.capitalize()} finished successfully.')
    assert (rows[-1]['status'], rows[-1]['message']) == (
        'SUCCESS', f'{task.capitalize()} succeeded.')
    messages = [r['message'] for r in rows if 'message' in r]
    expected = KEYS[f'tao{form}'][task]['messages']
    assert [m for m in messages if m in expected] == expected


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """A TAO 6 dataset root (images/test without masks, images+masks/val) and a
    checkpoint of a 3-class mit_b0 with a 32-wide head; the TAO 6 and TAO 5 specs."""
    root = tmp_path_factory.mktemp('tao_outputs')
    _write(root / 'data', 'test', masks=False)
    _write(root / 'data', 'val')
    ckpt = str(root / 'model.pth')
    model = tiny_segmentor(num_classes=3, size=(IMG_SIZE, IMG_SIZE))
    save_checkpoint(dict(state_dict=weights_to_cpu(model.state_dict()), meta=dict(iter=0)),
                    ckpt)
    spec6 = dict(
        results_dir=str(root / 'results6'),
        model=dict(backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(segment=dict(
            root_dir=str(root / 'data'), num_classes=3, img_size=IMG_SIZE,
            label_transform=None, palette=PALETTE6, batch_size=2, workers=0,
            test_split='val', predict_split='test')),
        train=dict(num_epochs=1),
        evaluate=dict(checkpoint=ckpt), inference=dict(checkpoint=ckpt),
        export=dict(checkpoint=ckpt, input_width=IMG_SIZE, input_height=IMG_SIZE))
    spec5 = dict(
        results_dir=str(root / 'results5'),
        model=dict(input_height=IMG_SIZE, input_width=IMG_SIZE,
                   backbone=dict(type='mit_b0'),
                   decode_head=dict(decoder_params=dict(embed_dim=32))),
        dataset=dict(data_root=str(root / 'data'), palette=PALETTE5, workers_per_gpu=0,
                     test_dataset=dict(img_dir='images/val', ann_dir='masks/val')),
        evaluate=dict(checkpoint=ckpt), inference=dict(checkpoint=ckpt),
        export=dict(checkpoint=ckpt, input_height=IMG_SIZE, input_width=IMG_SIZE))
    paths = []
    for name, spec in (('spec6.yaml', spec6), ('spec5.yaml', spec5)):
        (root / name).write_text(yaml.safe_dump(spec))
        paths.append(str(root / name))
    return root, paths[0], paths[1]


# --------------------------------------------------------------------------- inference
def test_tao6_inference_any_image_size(data):
    root, spec6, _ = data
    inference(spec6)
    out = root / 'results6' / 'inference'
    lut = np.array(COLORS, np.uint8)
    for _, _, name in INPUTS:
        # TAO names the files as the inputs (extension kept) and draws them at img_size.
        colour = np.array(Image.open(out / name).convert('RGB'))
        combined = np.array(Image.open(out / 'combined_visualisation' / name).convert('RGB'))
        assert colour.shape == (IMG_SIZE, IMG_SIZE, 3)
        assert combined.shape == (IMG_SIZE, 2 * IMG_SIZE + 10, 3)  # input | 10 px | map
        ids = np.array(Image.open(out / 'mask_tao' / (osp.splitext(name)[0] + '.png')))
        assert ids.shape == (IMG_SIZE, IMG_SIZE) and ids.max() < 3
        if name.endswith('.png'):  # lossless: exactly the palette colours of the ids
            assert Image.open(out / name).mode == 'RGBA'  # matplotlib's imsave, as TAO
            np.testing.assert_array_equal(colour, lut[ids])
            np.testing.assert_array_equal(combined[:, IMG_SIZE + 10:], lut[ids])
            assert not combined[:, IMG_SIZE:IMG_SIZE + 10].any()  # the black bar
            # The input at img_size (Pillow bicubic), drawn from TAO's de-normalised tensor.
            src = Image.open(root / 'data' / 'images' / 'test' / name).convert('RGB')
            src = np.array(src.resize((IMG_SIZE, IMG_SIZE), Image.BICUBIC), np.int16)
            assert np.abs(combined[:, :IMG_SIZE].astype(np.int16) - src).max() <= 1
    assert not (out / 'vis_tao').exists()
    rows = _rows(out / 'status.json')
    _check_common(rows, 'inference', 6)


def test_tao6_norm_palette_drawn_on_tao_scale(tmp_path):
    """label_transform norm: the palette's rgb is on a 0-1 scale (TAO 6's default binary
    palette [0,0,0] / [1,1,1] draws black / white); without it, 0-255."""
    ids = np.zeros((IMG_SIZE, IMG_SIZE), np.int64)
    ids[:, IMG_SIZE // 2:] = 1
    img = tmp_path / 'in.png'
    Image.fromarray(np.full((30, 50, 3), 128, np.uint8)).save(img)
    for transform, rgb1, want in (('norm', [1, 1, 1], 255), (None, [1, 1, 1], 1),
                                  (None, [255, 255, 255], 255), ('norm', [0, 0, 1], None)):
        spec = yaml.safe_dump(dict(dataset=dict(segment=dict(
            root_dir=str(tmp_path), img_size=IMG_SIZE, num_classes=2,
            label_transform=transform,
            palette=[dict(seg_class='bg', mapping_class='bg', label_id=0, rgb=[0, 0, 0]),
                     dict(seg_class='fg', mapping_class='fg', label_id=1, rgb=rgb1)]))))
        (tmp_path / 'spec.yaml').write_text(spec)
        seg = load_spec(str(tmp_path / 'spec.yaml'), tao_version=6).tao6.dataset.segment
        colour, combined = write_tao6_outputs(str(img), ids, str(tmp_path / 'out'),
                                              'in.png', seg)
        drawn = np.array(Image.open(colour).convert('RGB'))
        assert (drawn[:, :IMG_SIZE // 2] == 0).all()
        if want is None:
            assert (drawn[:, IMG_SIZE // 2:] == [0, 0, 255]).all()
        else:
            assert (drawn[:, IMG_SIZE // 2:] == want).all()
        assert Image.open(combined).size == (2 * IMG_SIZE + 10, IMG_SIZE)


def test_tao6_color_map_follows_mapping_class():
    """build_target_class_list: an entry's label_id is drawn in its mapping_class's rgb;
    ids without a palette entry stay white (norm) or 1/255 (0-255 palettes)."""
    palette = [dict(seg_class='road', mapping_class='road', label_id=0, rgb=[10, 20, 30]),
               dict(seg_class='lane', mapping_class='road', label_id=1, rgb=[90, 90, 90])]
    cmap = tao6_color_map(palette)
    assert cmap == {0: [10, 20, 30], 1: [10, 20, 30]}
    drawn = tao6_colorize(np.array([[0, 1, 2]]), cmap, None)
    np.testing.assert_allclose(drawn[0, 2], [1 / 255] * 3)
    np.testing.assert_allclose(tao6_colorize(np.array([[2]]), cmap, 'norm')[0, 0], [1, 1, 1])


def test_tao5_inference_status(data):
    root, _, spec5 = data
    inference(spec5, ['dataset.test_dataset.img_dir=images/test',
                      'dataset.test_dataset.ann_dir=null'])
    out = root / 'results5' / 'inference'
    assert len(os.listdir(out / 'mask_tao')) == len(INPUTS)
    assert len(os.listdir(out / 'vis_tao')) == len(INPUTS)
    _check_common(_rows(out / 'status.json'), 'inference', 5)


# --------------------------------------------------------------------------- evaluate
def test_tao6_evaluate_kpi(data, capsys):
    root, spec6, _ = data
    result = evaluate(spec6)
    out = root / 'results6' / 'evaluate'
    rows = _rows(out / 'status.json')
    _check_common(rows, 'evaluate', 6)
    test = next(r for r in rows if r.get('message') == 'Test metrics generated.')
    kpi = test['kpi']
    assert list(kpi) == KEYS['tao6']['evaluate']['test_kpi']
    assert all(isinstance(v, float) and 0 <= v <= 1 for v in kpi.values())  # fractions
    assert kpi['test_miou'] == pytest.approx(result['summary']['mIoU'] / 100, abs=5e-5)
    assert kpi['test_acc'] == pytest.approx(result['summary']['aAcc'] / 100, abs=5e-5)
    # F1, precision, recall in the tables and results.json too.
    saved = json.load(open(out / 'results.json'))
    assert saved['kpi'] == pytest.approx(kpi)
    for key, name in (('mF1', 'test_mf1'), ('mPrecision', 'test_mprecision'),
                      ('mRecall', 'test_mrecall')):
        assert saved['summary'][key] == pytest.approx(kpi[name] * 100, abs=0.006)
    assert {'Fscore', 'Precision', 'Recall'} <= set(saved['per_class'][0])
    printed = capsys.readouterr().out
    assert '| Class ' in printed and '| F1 ' in printed and '| mRecall ' in printed


def test_tao6_scores_are_tao_definitions():
    """TAOIoUMetric.tao_scores = TAO 6's MeanIoUMeter.total_area_to_metrics by hand: acc
    over all pixels, NaN-ignoring means over classes (a class never predicted has NaN
    precision; one predicted but never right has NaN F1 there too)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmseg_tao.evaluation import TAOIoUMetric
    g = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 3, (1, 16, 16), generator=g)
    gt[0, :2] = 255
    pred = torch.where(torch.rand(1, 16, 16, generator=g) < 0.6, gt.clamp(max=1),
                       torch.zeros_like(gt))  # class 2 never predicted
    sample = SegDataSample(gt_sem_seg=PixelData(data=gt), pred_sem_seg=PixelData(data=pred))
    metric = TAOIoUMetric()
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process([], [sample.to_dict()])
    metric.compute_metrics(metric.results)
    valid = gt != 255
    p, t = pred[valid].numpy(), gt[valid].numpy()
    inter = np.array([np.sum((p == c) & (t == c)) for c in range(3)], float)
    area_p = np.array([np.sum(p == c) for c in range(3)], float)
    area_t = np.array([np.sum(t == c) for c in range(3)], float)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou, prec, rec = inter / (area_p + area_t - inter), inter / area_p, inter / area_t
        f1 = 2 * rec * prec / (rec + prec)
    want = dict(acc=inter.sum() / area_t.sum(), miou=np.nanmean(iou), mf1=np.nanmean(f1),
                mprecision=np.nanmean(prec), mrecall=np.nanmean(rec))
    assert list(metric.tao_scores) == list(want)
    for k, v in want.items():
        assert metric.tao_scores[k] == pytest.approx(v, rel=1e-5)


def test_tao5_evaluate_status(data):
    root, _, spec5 = data
    result = evaluate(spec5)
    rows = _rows(root / 'results5' / 'evaluate' / 'status.json')
    _check_common(rows, 'evaluate', 5)
    test = next(r for r in rows if r.get('mode') == 'test')
    assert list(test)[:3] == KEYS['tao5']['evaluate']['test_row']
    assert list(test['kpi']) == KEYS['tao5']['evaluate']['test_kpi']
    assert test['Mean IOU'] == test['kpi']['Mean IOU'] == result['summary']['mIoU']  # in %
    assert test['mAcc'] == result['summary']['mAcc']
    assert 'mF1' not in result['summary'] and 'kpi' not in result


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize('form', [5, 6])
def test_export_status(data, form):
    root, spec6, spec5 = data
    if form == 6:
        export(spec6, check_images=1)
    else:
        export(spec5, ['export.verify=false'])
    rows = _rows(root / f'results{form}' / 'export' / 'status.json')
    _check_common(rows, 'export', form)


def test_failure_line(data):
    """A failing task: TAO's FAILURE line with its message, and the error raised on."""
    root, spec6, _ = data
    with pytest.raises(FileNotFoundError):
        inference(spec6, ['inference.checkpoint=/nonexistent/model.pth',
                          f'inference.results_dir={root / "failed"}'])
    rows = _rows(root / 'failed' / 'status.json')
    assert [r['status'] for r in rows] == ['STARTED', 'FAILURE']
    assert rows[-1]['message'].startswith('File system error: ')
    assert rows[-1]['verbosity'] == 'INFO'  # as TAO writes failures
