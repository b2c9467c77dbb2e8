#!/usr/bin/env python
"""``mmseg-tao convert-checkpoint`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.convert_checkpoint`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.convert_checkpoint import main

if __name__ == '__main__':
    sys.exit(main())
