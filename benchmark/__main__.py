"""``python -m collapselab``: the command line (the same as the ``collapselab`` command)."""

import sys

from collapselab.cli.main import main

sys.exit(main())
