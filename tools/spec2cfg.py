#!/usr/bin/env python
"""``mmseg-tao spec2cfg`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.spec2cfg`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.spec2cfg import main

if __name__ == '__main__':
    sys.exit(main())
