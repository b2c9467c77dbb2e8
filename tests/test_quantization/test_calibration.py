"""Calibration folder errors: one message naming the path, exit status 2."""
import pytest

from mmseg_tao.datasets.tao_dataset import DatasetError
from mmseg_tao.quantization.calibration import calibration_images

KEY = 'dataset.segment.quant_calibration_dataset.images_dir'


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match=f'{KEY}: calibration folder {tmp_path}/nope does '
                       'not exist'):
        calibration_images(str(tmp_path / 'nope'), KEY)


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match=f'no images in the calibration folder {tmp_path}'):
        calibration_images(str(tmp_path), KEY)


def test_non_image_file(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(DatasetError, match=f'{tmp_path}/notes.txt is not an image'):
        calibration_images(str(tmp_path), KEY)


def test_sorted_images_dot_files_left_out(tmp_path):
    for name in ('b.jpg', 'a.png', '.DS_Store'):
        (tmp_path / name).write_bytes(b'')
    assert calibration_images(str(tmp_path), KEY) == [str(tmp_path / 'a.png'),
                                                      str(tmp_path / 'b.jpg')]


def test_cli_exit_2_for_a_missing_folder(tmp_path, capsys):
    from mmseg_tao.cli.tasks import main
    spec = tmp_path / 'spec.yaml'
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'PK\x03\x04')
    spec.write_text('dataset:\n  segment:\n    root_dir: /x\n    quant_calibration_dataset:\n'
                    f'      images_dir: {tmp_path}/calib\nquantize:\n  backend: '
                    f'modelopt.pytorch\n  mode: static_ptq\n  model_path: {ckpt}\n'
                    f'results_dir: {tmp_path}/results\n')
    rc = main(['-e', str(spec)], task='quantize')
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f'calibration folder {tmp_path}/calib does not exist' in err or 'model' in err
