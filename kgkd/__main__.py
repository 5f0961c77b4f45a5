"""``python -m kgkd`` runs the CLI."""

import sys

from kgkd.cli import main

sys.exit(main())
