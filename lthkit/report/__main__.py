"""python -m lthkit.report <params.yaml> [...]: the lthkit-report command."""

import sys

from lthkit.report.runner import main

sys.exit(main())
