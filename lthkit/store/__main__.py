"""python -m lthkit.store verify <run> | compare <run a> <run b>."""

import sys

from lthkit.store.compare import main

sys.exit(main())
