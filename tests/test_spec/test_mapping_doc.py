"""docs/spec_mapping.md is the translator's table (regenerate with tools/spec2cfg.py)."""
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_tao.cli.spec2cfg import mapping_doc
from mmseg_tao.spec import MAPPING
from mmseg_tao.spec.translate import IGNORED, IGNORED_TAO6, MAPPING_TAO6, TAO6_TO_TAO5

ROOT = osp.join(osp.dirname(__file__), '..', '..')
REGENERATE = 'regenerate: python tools/spec2cfg.py --mapping-doc -o docs/spec_mapping.md'


def _doc() -> str:
    with open(osp.join(ROOT, 'docs', 'spec_mapping.md'), encoding='utf-8') as f:
        return f.read()


def test_mapping_doc_is_generated_from_the_tables():
    """The doc is exactly what the tables generate: one row per rule of MAPPING and
    MAPPING_TAO6, per ignored field, and per row of the TAO 5 <-> TAO 6 correspondence."""
    out = mapping_doc()
    assert _doc() == out, REGENERATE
    assert out.count('\n| `') == (len(MAPPING) + len(IGNORED) + len(TAO6_TO_TAO5) +
                                  len(MAPPING_TAO6) + len(IGNORED_TAO6))


@pytest.mark.slow  # tools/spec2cfg.py in a subprocess
def test_mapping_doc_is_current():
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'spec2cfg.py'),
                          '--mapping-doc'], check=True, capture_output=True, text=True).stdout
    assert _doc() == out, REGENERATE
    # One row per rule of every table.
    assert out.count('\n| `') == (len(MAPPING) + len(IGNORED) + len(TAO6_TO_TAO5) +
                                  len(MAPPING_TAO6) + len(IGNORED_TAO6))
