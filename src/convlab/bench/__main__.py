"""``python -m convlab.bench``: the same as ``convlab bench``."""

import sys

from .cli import main

sys.exit(main())
