"""``kgkd`` command line: one subcommand group per concern.

Each group lives in its own module (``kgkd/cli/<group>.py``) exposing
``register(subparsers)``, which adds its parser and sets ``func`` on the
parsed namespace. ``main`` turns any ``KGKDError`` into one clear line on
stderr and exit code 2, and Ctrl-C into one line saying what was (not) written
and exit code 130 — never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence

from kgkd import __version__
from kgkd.errors import KGKDError
from kgkd.utils.logging import configure_logging

#: Subcommand modules, in the order ``kgkd --help`` lists them.
GROUPS: tuple[str, ...] = ("run", "demo", "graph", "data", "teachers", "signals", "distill", "predict", "export", "eval")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand group."""
    parser = argparse.ArgumentParser(
        prog="kgkd",
        description=(
            "Knowledge-graph-guided, cross-domain knowledge distillation: a knowledge graph of "
            "domains, tasks, labels and teachers decides which teacher to trust on which domain "
            "while several domain teachers are distilled into one compact student."
        ),
        epilog="Run 'kgkd COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"kgkd {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        importlib.import_module(f"kgkd.cli.{group}").register(sub)
    return parser


#: Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def interrupted_message() -> str:
    """The one line printed on Ctrl-C: what was removed, what finished and was kept."""
    from kgkd.utils.io import pop_cleanup_notes, written_files

    notes = pop_cleanup_notes()
    kept = written_files()
    parts = notes or ([] if kept else ["nothing was written"])
    if kept:
        parts.append(f"finished files were kept ({len(kept)}, last: {kept[-1]})")
    return "kgkd: interrupted; " + "; ".join(parts)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals cannot be changed here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kgkd`` script; returns the process exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        configure_logging(-1 if args.quiet else args.verbose)
        from kgkd.utils.io import forget_written, pop_cleanup_notes

        pop_cleanup_notes()  # notes of an earlier command in this process are not this one's
        forget_written()
        result = args.func(args)
    except KGKDError as exc:
        print(f"kgkd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        with _sigint_ignored():  # a second Ctrl-C must not print a traceback now
            print(interrupted_message(), file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(result or 0)


def entry() -> None:
    """Process entry point (``kgkd`` script, ``python -m kgkd``): exit with :func:`main`'s code.

    After Ctrl-C the process leaves at once with 130 once the message is out, so a late
    second interrupt during interpreter shutdown cannot turn it into a death by SIGINT.
    """
    try:
        code = main()
    except KeyboardInterrupt:  # a second Ctrl-C while the first one was being reported
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        with _sigint_ignored():
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
