#!/usr/bin/env python
"""``mmseg-tao check-dataset`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.check_dataset`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.check_dataset import main

if __name__ == '__main__':
    sys.exit(main())
