"""`python -m sitl ...`: see `sitl.cli`."""

import sys

from sitl.cli import main

sys.exit(main())
