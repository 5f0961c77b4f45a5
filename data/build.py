#!/usr/bin/env python
"""Rebuild the shipped datasets: a thin shim over ``kgkd data build`` (same options)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kgkd.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "build", *sys.argv[1:]]))
