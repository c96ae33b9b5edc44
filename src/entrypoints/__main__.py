"""``python -m entrypoints`` is the ``chatcore`` command."""

import sys

from entrypoints.cli import main

sys.exit(main())
