#!/usr/bin/env python
"""``mmseg-tao demo-data`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.demo_data`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.demo_data import main

if __name__ == '__main__':
    sys.exit(main())
