"""`python -m hpo.cli ...`: the same as `hpo ...` (how jobs and tests start it)."""

from hpo.cli import console_main

console_main()
