"""``python -m ptyfast``: the command line (see :mod:`ptyfast.cli`)."""

import sys

from .cli import main

sys.exit(main())
