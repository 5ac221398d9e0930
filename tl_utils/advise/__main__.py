"""`python -m tl_utils.advise`: the same as the `tl-advise` command."""

import sys

from .cli import main

sys.exit(main())
