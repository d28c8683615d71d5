"""`python -m hpo.cli ...`: the same as `hpo ...` (how jobs and tests start it)."""

import sys

from hpo.cli import main

sys.exit(main())
