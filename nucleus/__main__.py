"""`python -m nucleus …` is the `nucleus` command."""

import sys

from nucleus.cli import main

sys.exit(main())
