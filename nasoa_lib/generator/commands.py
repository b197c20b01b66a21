"""``nasoa recommend`` and ``nasoa finetune``: G(D, T) for a practitioner's own images; ``nasoa
predict``: the fine-tuned model used on new images (:mod:`nasoa_lib.generator.predict` reads it).

Each command is an (arguments, action) pair registered in :data:`nasoa_lib.cli.COMMANDS`; every
:class:`~nasoa_lib.errors.NasoaError` (missing path, unreadable image, one class, impossible
budget, zoo or predictor not built, a folder given where a file belongs or the reverse, a damaged
recommendation file) reaches the user as one ``error:`` line and one ``hint:`` line; output paths are
checked before any work, so a failing command writes nothing. Heavy libraries load only when a
command runs.

``nasoa finetune`` keeps its budget end to end: one :class:`~nasoa_lib.generator.timing.Deadline`
starts with the command and covers loading the data and the service, the recommendation, the
pretrained network, training, evaluation and saving; it prints its wall-clock against the budget
(promise: <= 1.1 x budget + 2 s from process start to exit, ``benchmarks/finetune_budget.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

RECOMMEND_HELP = "recommend a zoo model and fine-tuning regime for your images and a time budget (NASOA G(D, T))"
RECOMMEND_EXAMPLES = ("nasoa recommend --data ~/photos/flowers --budget 10m\n"
                      "nasoa recommend --data my_task.npz --budget 90s --json\n"
                      "nasoa recommend --data ~/photos/flowers --budget 1h --save rec.json --profile laptop")
FINETUNE_HELP = "fine-tune the recommended model on your images and teach the online predictor the result"
FINETUNE_EXAMPLES = ("nasoa finetune --data ~/photos/flowers --budget 10m --out runs/flowers\n"
                     "nasoa finetune --data ~/photos/flowers --recommendation rec.json")
PREDICT_HELP = "classify images with a model fine-tuned by nasoa finetune (and score it on labelled data)"
PREDICT_EXAMPLES = ("nasoa predict --model runs/flowers --data ~/photos/new/*.jpg\n"
                    "nasoa predict --model runs/flowers --data ~/photos/flowers --json\n"
                    "nasoa predict --model runs/flowers/model.pt --data flowers.npz --split train --top 3")
_DATA_HELP = ("an image folder (DIR/<class>/<image>.jpg, torchvision ImageFolder layout, split 80/20), given splits "
              "(DIR/train/<class>/... + DIR/test/<class>/...) or an .npz in our format")


def _common(parser: argparse.ArgumentParser) -> None:
    from nasoa_lib.profiles import DEFAULT_PROFILE

    parser.add_argument("--data", required=True, type=Path, metavar="PATH", help=_DATA_HELP)
    parser.add_argument("--profile", default=None,  # None: nasoa_lib.cli.resolve_store_profile chooses
                        help=f"scale profile whose zoo, predictor and store to use (default: {DEFAULT_PROFILE}, "
                        "or the only profile with a store)")


def recommend_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--budget", required=True, metavar="TIME",
                        help="fine-tuning time budget on this machine: 90s, 10m, 1h, 1h30m")
    parser.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    parser.add_argument("--save", type=Path, metavar="FILE", help="also save it for nasoa finetune --recommendation")


def finetune_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--budget", metavar="TIME", help="time budget for the whole command, loading and saving "
                        "included (90s, 10m, 1h; kept within 1.1 x budget + 2s); or give --recommendation")
    parser.add_argument("--recommendation", type=Path, metavar="FILE", help="a recommendation saved by nasoa recommend --save")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write model.pt and run_card.json "
                        "(default: nasoa-runs/<data name>)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _format(recommendation) -> str:
    from nasoa_lib.generator.budget import format_seconds

    r, t = recommendation, recommendation.task
    c = r.chosen
    used = c.expected_seconds / r.time_budget if r.time_budget > 0 else float("nan")
    lines = [
        f"data: {t.name} ({t.num_classes} classes, {t.n_train} training / {t.n_test} test images, "
        f"domain similarity {t.domain_similarity:.3f})",
        f"budget: {format_seconds(r.time_budget)}  (grid: {r.grid_size} regimes fit)",
        "",
        f"model:            {c.model}",
        f"regime:           lr {c.lr:g}, {c.epochs} epoch(s) = {c.iterations} iterations, {c.frozen_stages} frozen "
        f"stage(s), batch {r.settings['batch_size']}, {r.settings['lr_schedule']} schedule",
        f"predicted accuracy: {100 * c.predicted_accuracy:.1f} %",
        f"expected time:    {format_seconds(c.expected_seconds)} of the budget {format_seconds(r.time_budget)} "
        f"({100 * used:.0f} %)",
    ]
    if c.early_stopping:
        lines.append(f"early stopping:   evaluated after epochs {', '.join(map(str, c.eval_epochs))}; keeps the best "
                     f"validation checkpoint (predicted best after {c.predicted_epochs} epochs)")
    if r.runners_up:
        lines += ["", f"runners-up (top {len(r.runners_up)}):",
                  f"  {'model':<22} {'lr':>7} {'epochs':>6} {'iters':>6} {'frozen':>6} {'pred.%':>7} {'time':>9}"]
        lines += [f"  {a.model:<22} {a.lr:>7g} {a.epochs:>6d} {a.iterations:>6d} {a.frozen_stages:>6d} "
                  f"{100 * a.predicted_accuracy:>7.1f} {format_seconds(a.expected_seconds):>9}" for a in r.runners_up]
    return "\n".join(lines)


def recommend_command(args: argparse.Namespace) -> int:
    from nasoa_lib.generator import service
    from nasoa_lib.generator.budget import parse_budget

    if args.save:
        service.check_output_file(args.save, "--save")
    budget = parse_budget(args.budget)
    dataset = service.load_data(args.data, args.profile)
    svc = service.open_service(args.profile, progress=not args.json)
    recommendation = service.recommend_for(dataset, budget, svc)
    if args.save:
        service.save_recommendation(recommendation, args.save)
    if args.json:
        print(json.dumps({**recommendation.to_dict(), "predictor": svc.predictor_name}, indent=2))
    else:
        print(_format(recommendation))
        print(f"\npredictor: {svc.predictor_name} ({getattr(svc.predictor, 'updates', 0)} online updates)")
        if args.save:
            print(f"saved: {args.save}")
    return 0


def finetune_command(args: argparse.Namespace) -> int:
    import time

    start = time.perf_counter()
    from nasoa_lib.errors import NasoaError
    from nasoa_lib.generator import service
    from nasoa_lib.generator.budget import format_seconds, parse_budget
    from nasoa_lib.generator.timing import Deadline

    if (args.budget is None) == (args.recommendation is None):
        raise NasoaError("give either --budget or --recommendation (exactly one)",
                         hint="nasoa finetune --data DIR --budget 10m, or --recommendation rec.json")
    if args.out is not None:
        service.check_output_dir(args.out)
    budget = None if args.budget is None else parse_budget(args.budget)
    dataset = service.load_data(args.data, args.profile)
    recommendation = None if args.recommendation is None else service.load_recommendation(args.recommendation)
    if recommendation is not None:
        service.check_matches(recommendation, dataset)
        budget = recommendation.time_budget
    out = args.out or Path("nasoa-runs") / dataset.name  # an explicit --out is checked above, the default by finetune_for
    deadline = Deadline(budget, start)
    svc = service.open_service(args.profile, progress=not args.no_progress)
    if recommendation is not None:
        service.check_recommendation(recommendation, svc)
    else:
        recommendation = service.recommend_for(dataset, budget, svc, deadline=deadline)
    print(_format(recommendation))
    print(f"deadline:         {format_seconds(deadline.elapsed())} spent on data, service and recommendation; "
          f"{format_seconds(max(deadline.remaining(), 0.0))} left for the run")
    print()
    card = service.finetune_for(dataset, recommendation, svc, out, progress=not args.no_progress, deadline=deadline)
    o, b = card["outcome"], card["budget"]
    print(f"\naccuracy: {100 * o['accuracy']:.1f} % (predicted {100 * o['predicted_accuracy']:.1f} %)")
    if b["steps"] < b["planned_steps"]:
        print(f"training stopped after {b['steps']} of {b['planned_steps']} planned steps to keep the budget")
    print(f"predictor '{card['predictor']['name']}' updated ({card['predictor']['updates']} online updates)")
    print(f"saved: {Path(out) / service.WEIGHTS_FILE}, {Path(out) / service.CARD_FILE}")
    wall = deadline.elapsed()
    print(f"wall-clock {format_seconds(wall)} of budget {format_seconds(budget)}: {deadline.verdict(wall)}")
    return 0


def _format_predictions(result: Mapping[str, Any]) -> str:
    rows = result["predictions"]
    width = min(60, max([len("image")] + [len(r["image"]) for r in rows]))
    labelled = "label" in (rows[0] if rows else {})
    lines = [f"model: {result['model']} ({len(result['class_names'])} classes; {result['weights']})",
             f"data:  {result['data']}", "",
             (f"{'image':<{width}}  {'predicted':<24} {'prob.':>6}" + ("  true" if labelled else "")).rstrip()]
    for r in rows:
        image = r["image"] if len(r["image"]) <= width else "..." + r["image"][-(width - 3):]
        line = f"{image:<{width}}  {r['predicted']:<24} {r['probability']:>6.3f}"
        if labelled:
            line += f"  {r['label'] + ('' if r['label'] == r['predicted'] else ' (wrong)'):<32}"
        if len(r["top"]) > 1:
            line += "  top: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"])
        lines.append(line.rstrip())
    if "accuracy" in result:
        lines += ["", f"accuracy: {100 * result['accuracy']:.1f} % ({result['correct']}/{result['total']} images)"]
    return "\n".join(lines)


def predict_arguments(parser: argparse.ArgumentParser) -> None:
    from nasoa_lib.generator.predict import SPLITS

    parser.add_argument("--model", required=True, type=Path, metavar="RUN",
                        help="the --out folder of nasoa finetune (or its model.pt)")
    parser.add_argument("--data", required=True, type=Path, nargs="+", metavar="PATH",
                        help="image files / folders of images (unlabelled), or one labelled dataset: an image "
                        "folder with class sub-folders (DIR/<class>/ or DIR/train/ + DIR/test/) or an .npz")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="which images of a labelled dataset to classify (default: %(default)s, the "
                        "held-out images fine-tuning scored)")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="also list the K most likely classes")
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")


def predict_command(args: argparse.Namespace) -> int:
    from nasoa_lib.generator.predict import load_finetuned, predict, read_inputs

    fitted = load_finetuned(args.model)
    inputs = read_inputs(args.data, fitted.image_size, args.split)
    result = predict(fitted, inputs, top=args.top)
    print(json.dumps(result, indent=2) if args.json else _format_predictions(result))
    return 0
