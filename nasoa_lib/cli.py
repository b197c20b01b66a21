"""The ``nasoa`` command: reproduce the study, prepare notebooks for tests, list profiles.

Each subcommand is a pair of small functions (arguments, action) and one line in
:data:`COMMANDS`. Every :class:`~nasoa_lib.errors.NasoaError` reaches the user as one
``error:`` line and one ``hint:`` line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from nasoa_lib import __version__
from nasoa_lib.errors import NasoaError
from nasoa_lib.generator import commands as _generator_commands

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, a one-line help, examples, and the two functions behind it."""

    name: str
    help: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _split_only(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give notebook prefixes separated by commas, e.g. 00,04")
    return parts


# ---- reproduce ---------------------------------------------------------------------------------


def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    from nasoa_lib.profiles import DEFAULT_PROFILE

    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="scale profile (default: %(default)s)")
    parser.add_argument("--only", type=_split_only, metavar="NN[,NN...]",
                        help="run only these notebooks, by number prefix or name (e.g. 00,04)")
    parser.add_argument("--force", action="store_true",
                        help="re-run notebooks even when unchanged since their last successful run")
    parser.add_argument("--no-progress", action="store_true", help="hide the per-cell progress bar")


def _reproduce(args: argparse.Namespace) -> int:
    from nasoa_lib.report import run_notebooks

    summary = run_notebooks(args.profile, only=args.only, force=args.force, progress=not args.no_progress)
    print(summary.format())
    print(f"index: {summary.reports_dir.parent / 'index.html'}")
    return EXIT_OK


# ---- prepare-notebooks -------------------------------------------------------------------------


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="profile injected into every notebook")
    parser.add_argument("--out", required=True, type=Path, help="folder for the parameterised copies")


def _prepare(args: argparse.Namespace) -> int:
    from nasoa_lib.report import prepare_notebooks

    written = prepare_notebooks(args.profile, args.out)
    print(f"prepared {len(written)} notebook(s) for profile {args.profile} in {args.out}")
    return EXIT_OK


# ---- index -------------------------------------------------------------------------------------


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _index(args: argparse.Namespace) -> int:
    from nasoa_lib.report import write_index

    print(write_index())
    return EXIT_OK


# ---- profiles ----------------------------------------------------------------------------------


def _profiles_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _profiles(args: argparse.Namespace) -> int:
    from nasoa_lib.profiles import DEFAULT_PROFILE, available_profiles, load_profile

    names = available_profiles()
    width = max(map(len, names), default=0)
    for name in names:
        marker = " (default)" if name == DEFAULT_PROFILE else ""
        print(f"{name:<{width}}  {load_profile(name).description}{marker}")
    return EXIT_OK


COMMANDS: list[Command] = [
    Command("reproduce", "execute the notebooks in order and write reports/<profile>/ and reports/index.html",
            "nasoa reproduce --profile laptop\n  nasoa reproduce --profile smoke --only 00,04 --force",
            _reproduce_arguments, _reproduce),
    Command("prepare-notebooks", "copy the notebooks with a profile injected (for pytest --nbval-lax)",
            "nasoa prepare-notebooks --profile smoke --out build/smoke-notebooks",
            _prepare_arguments, _prepare),
    Command("index", "rewrite reports/index.html from what reports/ holds", "nasoa index",
            _index_arguments, _index),
    Command("profiles", "list the scale profiles of configs/profiles.yaml", "nasoa profiles",
            _profiles_arguments, _profiles),
    Command("recommend", _generator_commands.RECOMMEND_HELP, _generator_commands.RECOMMEND_EXAMPLES,
            _generator_commands.recommend_arguments, _generator_commands.recommend_command),
    Command("finetune", _generator_commands.FINETUNE_HELP, _generator_commands.FINETUNE_EXAMPLES,
            _generator_commands.finetune_arguments, _generator_commands.finetune_command),
]


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The argument parser with one subparser per :class:`Command` (default: :data:`COMMANDS`)."""
    commands = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog="nasoa",
        description="Rebuild the NASOA study: run its notebooks, write reports, manage profiles.",
        epilog="examples:\n" + "\n".join(f"  {c.examples.splitlines()[0]}" for c in commands),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nasoa_lib {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in commands:
        child = sub.add_parser(
            command.name, help=command.help, description=command.help,
            epilog="examples:\n" + textwrap.indent(command.examples, "  ").replace("\n    ", "\n  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
        child.set_defaults(_run=command.run)
    return parser


def report_error(err: NasoaError, stream=None) -> None:
    """Print ``error: <message>`` and ``hint: <hint>`` (each on one line)."""
    stream = sys.stderr if stream is None else stream
    message = " ".join(str(err.args[0] if err.args else err).split())
    print(f"error: {message}", file=stream)
    if err.hint:
        print(f"hint: {' '.join(err.hint.split())}", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nasoa``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        return int(args._run(args))
    except NasoaError as err:
        report_error(err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
