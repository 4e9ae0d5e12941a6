"""`python -m affectgpt`: the same as the `affectgpt` command."""

import sys

from affectgpt.cli import main

sys.exit(main())
