"""python -m k2calc: see k2calc.cli."""

import sys

from .cli import main

sys.exit(main())
