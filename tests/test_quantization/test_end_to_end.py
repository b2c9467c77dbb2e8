"""The issue's path from both spec forms, through the command line: ``mmseg-tao quantize``
(modelopt.onnx, the INT8 Q/DQ graph) then ``mmseg-tao evaluate
evaluate.checkpoint=<the INT8 ONNX>``, against ``mmseg-tao evaluate`` of the fp32
checkpoint on the same validation images."""
import json

import onnx
import pytest
import yaml

from mmseg_tao.cli.main import main

pytestmark = pytest.mark.slow  # quantize + two evaluations per spec form

# mIoU points the static int8 graph may lose against fp32 (as test_backends.STATIC_TOLERANCE).
STATIC_TOLERANCE = 5.0


@pytest.fixture(scope='module', params=[5, 6], ids=['tao5', 'tao6'])
def form(request, trained, tmp_path_factory):
    """The trained model's spec in TAO 5's form or converted to TAO 6's, with the keys of
    that form for the calibration images and the export size."""
    if request.param == 5:
        return dict(spec=trained['spec'], overrides=list(trained['overrides']),
                    calib=f'dataset.quant_calibration_dataset.img_dir={trained["calib"]}')
    out = tmp_path_factory.mktemp('tao6') / 'spec_tao6.yaml'
    assert main(['convert-spec', '--to', '6', trained['spec'], *trained['overrides'],
                 '-o', str(out)]) == 0
    spec6 = yaml.safe_load(out.read_text())
    assert 'segment' in spec6['dataset'] and 'train_dataset' not in spec6['dataset']
    # The demo masks hold class ids; TAO 6 matches mask colours (convert-spec says so).
    for entry in spec6['dataset']['segment']['palette']:
        entry['rgb'] = [entry['label_id']] * 3
    out.write_text(yaml.safe_dump(spec6))
    return dict(spec=str(out), overrides=[],
                calib=f'dataset.segment.quant_calibration_dataset.images_dir={trained["calib"]}')


def _results(folder):
    with open(folder / 'results.json') as f:
        result = json.load(f)
    status = [yaml.safe_load(line) for line in open(folder / 'status.json')]
    return result, status


def test_quantize_then_evaluate_the_int8_onnx(form, trained, tmp_path):
    q_dir, fp32_dir, int8_dir = tmp_path / 'q', tmp_path / 'fp32', tmp_path / 'int8'
    assert main(['quantize', '-e', form['spec'], *form['overrides'],
                 'quantize.backend=modelopt.onnx', 'quantize.mode=static_ptq',
                 'quantize.device=cpu', f'quantize.results_dir={q_dir}',
                 f'export.checkpoint={trained["checkpoint"]}', 'export.input_height=64',
                 'export.input_width=64', form['calib']]) == 0
    onnx_file = q_dir / 'quantized_model.onnx'
    ops = {n.op_type for n in onnx.load(str(onnx_file)).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops

    for checkpoint, folder in ((trained['checkpoint'], fp32_dir), (onnx_file, int8_dir)):
        assert main(['evaluate', '-e', form['spec'], *form['overrides'],
                     f'evaluate.checkpoint={checkpoint}',
                     f'evaluate.results_dir={folder}']) == 0
    fp32, fp32_status = _results(fp32_dir)
    int8, int8_status = _results(int8_dir)
    assert int8['checkpoint'] == str(onnx_file) and int8['num_images'] == fp32['num_images'] == 8
    assert abs(int8['summary']['mIoU'] - fp32['summary']['mIoU']) <= STATIC_TOLERANCE, \
        (int8['summary'], fp32['summary'])
    # The same tables and status lines as for a checkpoint, in the spec's form.
    assert [r['Class'] for r in int8['per_class']] == [r['Class'] for r in fp32['per_class']]
    assert int8_status[-1]['status'] == 'SUCCESS'
    assert [r.get('message') for r in int8_status] == [r.get('message') for r in fp32_status]
    if 'kpi' in fp32:  # TAO 6/7: test_* kpis
        assert set(int8['kpi']) == set(fp32['kpi'])
