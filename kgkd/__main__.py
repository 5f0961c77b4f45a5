"""``python -m kgkd`` runs the CLI."""

from kgkd.cli import entry

entry()
