#!/usr/bin/env python
"""``mmseg-tao quantize`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.tasks`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.tasks import main

if __name__ == '__main__':
    sys.exit(main(prog='tools/quantize.py', task='quantize'))
