"""``python -m sureid.cli ...``: the same as the ``sureid`` console script."""

import sys

from . import main

sys.exit(main())
