"""``python -m convlab.train MODEL ...``: the same as ``convlab train MODEL ...``."""

import sys

from .cli import main

sys.exit(main())
