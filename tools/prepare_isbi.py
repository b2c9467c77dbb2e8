#!/usr/bin/env python
"""``mmseg-tao prepare-isbi`` as a script (OpenMMLab's tools/ habit), implemented in
:mod:`mmseg_tao.cli.prepare_isbi`: the same arguments and exit codes (``--help``)."""
import sys

from mmseg_tao.cli.prepare_isbi import main

if __name__ == '__main__':
    sys.exit(main())
