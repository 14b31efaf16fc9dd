"""``python -m sureid ...``: the same as the ``sureid`` console script."""

from .cli import main

raise SystemExit(main())
