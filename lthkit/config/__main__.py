"""python -m lthkit.config show|check ...: the lthkit-params command."""

import sys

from lthkit.config.cli import main

sys.exit(main())
