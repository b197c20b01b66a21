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
from typing import Callable, NoReturn, Sequence

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
    from nasoa_lib.reporting.runner import run_notebooks

    summary = run_notebooks(args.profile, only=args.only, force=args.force, progress=not args.no_progress)
    print(summary.format())
    print(f"index: {summary.reports_dir.parent / 'index.html'}")
    return EXIT_OK


# ---- prepare-notebooks -------------------------------------------------------------------------


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="profile injected into every notebook")
    parser.add_argument("--out", required=True, type=Path, help="folder for the parameterised copies")


def _prepare(args: argparse.Namespace) -> int:
    from nasoa_lib.reporting.runner import prepare_notebooks

    written = prepare_notebooks(args.profile, args.out)
    print(f"prepared {len(written)} notebook(s) for profile {args.profile} in {args.out}")
    return EXIT_OK


# ---- index -------------------------------------------------------------------------------------


def _index_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _index(args: argparse.Namespace) -> int:
    from nasoa_lib.reporting.index import write_index

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


# ---- status ------------------------------------------------------------------------------------

def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="only this profile (default: every profile)")


def _predictor_updates(path: Path) -> str:
    import json

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
        return f"{meta['kind']}, {meta['updates']} online updates"
    except (OSError, ValueError, KeyError) as err:
        return f"unreadable ({err})"


def status_lines(profile: str) -> list[str]:
    """What ``profile``'s store and reports hold: zoo, predictors, meta-dataset, step-time tables,
    pretrained models, and each notebook's last run (``stale`` when its outputs left the store).
    Imports no torch: the kinds come from :mod:`nasoa_lib.kinds` and torch-free modules."""
    from nasoa_lib import paths
    from nasoa_lib.generator.timing import COST_KIND
    from nasoa_lib.kinds import CARD_KIND, META_RUN_KIND, PRETRAINED_KIND, TABLE_KIND
    from nasoa_lib.online.predictor import PREDICTOR_FILE, PREDICTOR_KIND
    from nasoa_lib.profiles import load_profile
    from nasoa_lib.reporting.outputs import STATUS_OK, read_runs
    from nasoa_lib.reporting.runner import discover_notebooks, is_cached, notebook_fingerprint, service_build_command
    from nasoa_lib.store import ArtifactStore

    prof = load_profile(profile)
    store = ArtifactStore(paths.store_dir(prof.name))
    lines = [f"profile {profile}: store {store.root}"]
    if not store.exists():
        return lines + ["  no store yet: build what nasoa recommend needs with", f"    {service_build_command(profile)}"]
    cards = store.records(CARD_KIND, skip_corrupt=True)
    ours = [c for c in cards if c.get("group") == "ours"]
    lines.append(f"  zoo: {len(ours)} of ours, {len(cards) - len(ours)} released")
    lines += [f"    {c.get('name')}: source top-1 {float(c.get('source_top1', float('nan'))):.3f}" for c in cards]
    predictor_dir = store.artifacts_root / PREDICTOR_KIND  # predictors are artifacts without a record
    predictors = sorted(p.name for p in predictor_dir.glob("*") if p.is_dir())
    lines.append(f"  predictors: {len(predictors)}" + ("" if predictors else " (nasoa recommend needs 'adaptive')"))
    lines += [f"    {name}: {_predictor_updates(predictor_dir / name / PREDICTOR_FILE)}" for name in predictors]
    lines.append(f"  meta-dataset rows: {store.count(META_RUN_KIND)}")
    lines.append(f"  step-time tables: {store.count(TABLE_KIND)} (zoo), "
                 f"{store.count(COST_KIND)} fine-tuning cost entries (this device)")
    lines.append(f"  pretrained models: {store.count(PRETRAINED_KIND)}")
    runs = read_runs(profile)
    notebooks = {nb.stem: nb for nb in discover_notebooks()}
    outputs = store.output_rows()
    lines.append(f"  reports: {len(runs)} notebook(s) in runs.json")
    for name, run in sorted(runs.items()):
        state = run.get("status", "?")
        if state == STATUS_OK and name in notebooks:
            html = paths.report_dir(profile) / f"{name}.html"
            fresh = is_cached(run, notebook_fingerprint(notebooks[name], prof), html, outputs)
            state += "" if fresh else " but stale (notebook, profile or its outputs in the store changed: reproduce re-runs it)"
        lines.append(f"    {name}: {state}")
    return lines


def _status(args: argparse.Namespace) -> int:
    from nasoa_lib.profiles import available_profiles

    for profile in [args.profile] if args.profile else available_profiles():
        print("\n".join(status_lines(profile)))
    return EXIT_OK


# ---- which profile's store: --profile, or the only one built -----------------------------------


def resolve_store_profile(given: str | None) -> str:
    """``--profile`` when given; else the default profile, unless its store does not exist and
    exactly one other profile's store does: then that one, said on stderr. Several others and no
    default store: a :class:`StoreNotFoundError` naming them."""
    from nasoa_lib.errors import StoreNotFoundError
    from nasoa_lib.profiles import DEFAULT_PROFILE, available_profiles
    from nasoa_lib.reporting.runner import service_build_command
    from nasoa_lib.store import ArtifactStore

    if given is not None:
        return given
    built = [p for p in available_profiles() if ArtifactStore.for_profile(p).exists()]
    if DEFAULT_PROFILE in built or not built:
        return DEFAULT_PROFILE
    if len(built) == 1:
        print(f"note: using profile {built[0]!r}: the default {DEFAULT_PROFILE!r} has no store and {built[0]!r} "
              f"is the only profile that has one (give --profile to choose)", file=sys.stderr)
        return built[0]
    raise StoreNotFoundError(
        f"the default profile {DEFAULT_PROFILE!r} has no store; profiles {', '.join(built)} have one",
        hint=f"choose one with --profile {built[0]} (or build {DEFAULT_PROFILE}: {service_build_command(DEFAULT_PROFILE)})")


def _with_store_profile(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def resolved(args: argparse.Namespace) -> int:
        args.profile = resolve_store_profile(args.profile)
        return run(args)
    return resolved


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
            _generator_commands.recommend_arguments,
            _with_store_profile(_generator_commands.recommend_command)),
    Command("finetune", _generator_commands.FINETUNE_HELP, _generator_commands.FINETUNE_EXAMPLES,
            _generator_commands.finetune_arguments,
            _with_store_profile(_generator_commands.finetune_command)),
    Command("status", "what each profile's store and reports hold (zoo, predictors, meta-dataset, step-time "
            "tables, pretrained models, notebook runs)", "nasoa status\n  nasoa status --profile smoke",
            _status_arguments, _status),
    Command("predict", _generator_commands.PREDICT_HELP, _generator_commands.PREDICT_EXAMPLES,
            _generator_commands.predict_arguments, _generator_commands.predict_command),
]


class _Parser(argparse.ArgumentParser):
    """argparse with the study's error path: a bad argument is one ``error:`` line and one ``hint:``
    line naming the ``--help`` that explains it, exit status 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        print(f"hint: {self.prog} --help lists the arguments and examples", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    """The argument parser with one subparser per :class:`Command` (default: :data:`COMMANDS`)."""
    commands = COMMANDS if commands is None else commands
    parser = _Parser(
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
