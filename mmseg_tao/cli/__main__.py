"""``python -m mmseg_tao.cli COMMAND ...`` (as ``mmseg-tao``; the torchrun relaunch uses it)."""
import sys

from .main import main

sys.exit(main())
