"""``python -m casework.reference [--check]``: write (or check) the pages of ``docs/`` made from the code."""

import sys

from casework.reference import main

sys.exit(main())
