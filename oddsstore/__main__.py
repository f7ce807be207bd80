"""``python -m oddsstore``: the same as the ``oddsstore`` command."""

import sys

from oddsstore.cli import main

sys.exit(main())
