"""Generated configs are composed like mmseg's: mmseg's own runtime base file is inherited
where it holds the same entries, equal sections are written once by name, and mmengine reads
the composed file back to exactly the flat config."""
import os.path as osp

import mmseg
import pytest
from mmengine.config import Config

from mmseg_tao.spec import compose_config, write_config
from mmseg_tao.spec.compose import MMSEG_RUNTIME, unscoped
from mmseg_tao.spec.writer import Ref

# mmseg 1.x's configs/_base_/default_runtime.py, as shipped in its wheel (mmseg/.mim).
RUNTIME_FILE = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', '_base_',
                        'default_runtime.py')
VIS_BACKENDS = [dict(type='LocalVisBackend')]
STOCK_RUNTIME = dict(
    default_scope='mmseg',
    env_cfg=dict(cudnn_benchmark=True,
                 mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
                 dist_cfg=dict(backend='nccl')),
    vis_backends=VIS_BACKENDS,
    visualizer=dict(type='SegLocalVisualizer', vis_backends=VIS_BACKENDS,
                    name='visualizer'),
    log_processor=dict(by_epoch=False),
    log_level='INFO',
    load_from=None,
    resume=False,
    tta_model=dict(type='SegTTAModel'))


def _loaded(cfg, tmp_path, name='cfg.py'):
    """The written text and what mmengine reads, without the _scope_='mmseg' marks mmengine
    puts on entries from mmseg's base (the configs' default_scope: builds are the same)."""
    out = str(tmp_path / name)
    text = write_config(cfg, out)
    loaded = Config.fromfile(out)
    if '_base_' in cfg:
        assert loaded.tta_model._scope_ == 'mmseg'  # the mark is there, and only that
    return text, Config(unscoped(loaded.to_dict(), 'mmseg'))


def _flat(**changes):
    dataloader = dict(batch_size=1, dataset=dict(type='TAOSegDataset', img_dirs=['v']))
    cfg = dict(custom_imports=dict(imports=['mmseg_tao'], allow_failed_imports=False),
               **STOCK_RUNTIME, val_dataloader=dataloader, test_dataloader=dict(dataloader),
               val_evaluator=dict(type='TAOIoUMetric'), test_evaluator=dict(type='TAOIoUMetric'))
    cfg.update(changes)
    return cfg


def test_mmseg_runtime_base_is_the_stock_file():
    """The base the composer inherits from is mmseg's file, with the entries recorded from
    mmseg 1.2.2's configs/_base_/default_runtime.py."""
    assert osp.isfile(RUNTIME_FILE)
    probe = Config.fromfile(RUNTIME_FILE).to_dict()
    assert probe == STOCK_RUNTIME


def test_stock_entries_are_inherited_and_equal_sections_shared(tmp_path):
    cfg = _flat()
    text, loaded = _loaded(compose_config(cfg), tmp_path)
    assert text.startswith(f"_base_ = ['{MMSEG_RUNTIME}']\ncustom_imports = ")
    for key in STOCK_RUNTIME:
        assert f'\n{key} = ' not in text, key
    assert '\ntest_dataloader = val_dataloader\n' in text
    assert '\ntest_evaluator = val_evaluator\n' in text
    assert loaded.to_dict() == cfg
    # Shared by name, still separate entries: an override of one leaves the other.
    loaded.merge_from_dict({'test_dataloader.batch_size': 3})
    assert loaded.val_dataloader.batch_size == 1


def test_differing_entries_replace_the_base(tmp_path):
    """Our value wins; where mmengine's key-by-key merge would keep a key of the base's that
    ours lacks, the entry is written with _delete_=True."""
    env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))  # no mp_cfg
    visualizer = dict(type='SegLocalVisualizer', vis_backends=VIS_BACKENDS, name='vis')
    cfg = _flat(env_cfg=env_cfg, visualizer=visualizer, load_from='a.pth', log_level='DEBUG')
    text, loaded = _loaded(compose_config(cfg), tmp_path)
    assert 'env_cfg = dict(_delete_=True, cudnn_benchmark=False' in text
    assert "visualizer = dict(type='SegLocalVisualizer'" in text  # merges cleanly as is
    assert loaded.to_dict() == cfg
    assert 'mp_cfg' not in loaded.env_cfg


def test_base_not_used_when_it_would_add_entries(tmp_path):
    cfg = _flat()
    del cfg['tta_model']  # the base defines it: inheriting would add it
    composed = compose_config(cfg)
    assert '_base_' not in composed
    _, loaded = _loaded(composed, tmp_path)
    assert loaded.to_dict() == cfg


def test_unreadable_base_writes_flat(tmp_path):
    cfg = _flat()
    composed = compose_config(cfg, bases=(str(tmp_path / 'missing.py'), ))
    assert '_base_' not in composed
    assert set(composed) == set(cfg)
    assert composed['test_dataloader'] == Ref('val_dataloader')


@pytest.mark.parametrize('value', [[], {}, None, 'x'])
def test_only_nonempty_sections_are_shared(value):
    composed = compose_config(dict(a=value, b=value), bases=())
    assert composed == dict(a=value, b=value)


def test_replaced_entry_given_by_name(tmp_path):
    """An entry written as another's name that must replace the base's is written out."""
    env = dict(cudnn_benchmark=False)
    cfg = dict(my_env=env, **_flat(env_cfg=Ref('my_env')))
    composed = compose_config(cfg)
    assert composed['env_cfg'] == {'_delete_': True, 'cudnn_benchmark': False}
    _, loaded = _loaded(composed, tmp_path)
    assert loaded.env_cfg == env and 'mp_cfg' not in loaded.env_cfg
