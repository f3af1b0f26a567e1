"""`covidlib reproduce`: plan, run and render the whole study (or a smoke subset) in one folder.

``--subset smoke`` is 2 models, 2 folds, 1 epoch on a small canvas (and, on the phantom, 40
images): a check that the pipeline runs end to end in about a minute on a laptop CPU.

Example:
    >>> from covidlib.cli import build_parser
    >>> args = build_parser().parse_args(["reproduce", "--out", "study", "--subset", "smoke"])
    >>> args.subset, args.executor
    ('smoke', 'local')

    $ covidlib reproduce --out study --subset smoke
    $ covidlib reproduce --out study --profile cpu --store results
    $ covidlib reproduce --out study --profile full --gpus 0,1,2,3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from covidlib.cli import CommandError
from covidlib.cli.grid import add_run_options, run_grid
from covidlib.cli.options import add_experiment_options, experiments_from_args

SUBSETS: tuple[str, ...] = ("all", "smoke")
SMOKE_MODELS: tuple[str, ...] = ("squeezenet", "resnet18")
SMOKE = {"n_folds": 2, "epochs": 1, "canvas_scale": 0.12}
SMOKE_PHANTOM_IMAGES = 40
GRADCAM_IMAGES = 2  # COVID test images explained per run


def register(subparsers: Any) -> None:
    """Add the ``reproduce`` command."""
    parser = subparsers.add_parser(
        "reproduce", help="plan, run and render the whole study into one folder",
        description="`grid plan` + `grid run` + every table and figure of the paper rendered "
        "from the run folders into OUT/report/ (Markdown, CSV, PNG). Run it again to resume; "
        "the report covers whatever has finished.",
    )
    add_experiment_options(parser, several=True, runtime=False)
    parser.add_argument("--out", type=Path, required=True, help="the study folder")
    parser.add_argument("--subset", choices=SUBSETS, default="all",
                        help="smoke: 2 models, 2 folds, 1 epoch, small (default: all)")
    parser.add_argument("--data-root", action="append", default=[], metavar="NAME=DIR",
                        help="the folder of one dataset, e.g. sars-cov-2-ct=~/data/sars "
                        "(repeat per dataset; default: the registry's, under the data folder)")
    parser.add_argument("--store", type=Path, metavar="RESULTS",
                        help="store every finished run as a result under RESULTS/<dataset>/"
                        "<model>/<profile>-<split>-seed<seed>/ (predictions and provenance, "
                        "no weights); runs stored earlier are kept")
    add_run_options(parser)
    parser.set_defaults(func=reproduce_command)


def registered_commands() -> set[str]:
    """Return the names of the commands the ``covidlib`` parser has."""
    from covidlib.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _experiments(args: argparse.Namespace) -> list[Any]:
    from covidlib.config import PhantomConfig, get_profile

    if args.subset != "smoke":
        return experiments_from_args(args)
    args.model = args.model or list(SMOKE_MODELS)
    configs = experiments_from_args(args, **SMOKE)
    phantom = PhantomConfig(size=SMOKE_PHANTOM_IMAGES,
                            difficulty=get_profile(args.profile).phantom_difficulty)
    return [c.with_overrides(phantom=phantom) if c.phantom is not None else c for c in configs]


def _explain(run_dir: Path, report: Path, commands: set[str]) -> list[str]:
    """The t-SNE and Grad-CAM figures of one run, through their own commands."""

    from covidlib.cli import main
    from covidlib.engine.runs import RunFolder

    lines = []
    name = f"{run_dir.parent.parent.name}-{run_dir.parent.name}"
    if "tsne" in commands:
        target = report / f"tsne-{name}.png"
        code = main(["tsne", "--run", str(run_dir), "--out", str(target)])
        lines.append(f"t-SNE ({name}): {target.name}" if code == 0
                     else f"t-SNE ({name}): `covidlib tsne` failed (exit {code})")
    if "gradcam" in commands:
        folds = RunFolder(run_dir).read_folds()
        images = folds[(folds["label"] == 1) & (folds["fold"] == 0)]["path"]
        images = [str(p) for p in images.head(GRADCAM_IMAGES)]
        target = report / f"gradcam-{name}"
        code = main(["gradcam", "--run", str(run_dir), "--fold", "0", *images,
                     "--out", str(target)])
        lines.append(f"Grad-CAM ({name}): {target.name}/" if code == 0
                     else f"Grad-CAM ({name}): `covidlib gradcam` failed (exit {code})")
    return lines


def _dataset_roots(args: argparse.Namespace, datasets: set[str]) -> dict[str, Path]:
    """``--root`` (one dataset) and ``--data-root NAME=DIR`` as ``{dataset: folder}``."""
    roots: dict[str, Path] = {}
    if args.root is not None:
        if len(datasets) != 1:
            raise CommandError(f"--root {args.root} names one folder for {len(datasets)} "
                               "datasets; give each with --data-root NAME=DIR")
        roots[next(iter(datasets))] = args.root
    for item in args.data_root:
        name, sep, folder = item.partition("=")
        if not sep or not folder or name not in datasets:
            raise CommandError(f"--data-root {item!r}: use NAME=DIR with NAME one of "
                               f"{sorted(datasets)}")
        roots[name] = Path(folder).expanduser()
    return roots


def _store(plan: Any, results: Path, roots: dict[str, Path]) -> list[str]:
    """Store each complete run of ``plan`` under ``results`` (once); say what was stored."""
    from covidlib.data.registry import default_root
    from covidlib.engine.runs import RunFolder
    from covidlib.evaluate.provenance import store_run
    from covidlib.evaluate.report import profile_of

    lines = []
    for run_dir in plan.run_dirs():
        run = RunFolder(run_dir)
        config = run.read_config()
        expected = 1 if config["split"] == "official" else int(config["n_folds"])
        if len(run.finished_folds()) < expected:
            continue
        result_id = f"{profile_of(config)}-{config['split']}-seed{config['seed']}"
        target = results / config["dataset"] / config["model"] / result_id
        if target.exists():
            continue
        root = roots.get(config["dataset"]) or default_root(config["dataset"])
        store_run(run_dir, results, result_id, root)
        lines.append(f"stored {config['model']} on {config['dataset']}: {target}")
    return lines


def reproduce_command(args: argparse.Namespace) -> int:
    """Run ``covidlib reproduce``."""
    from covidlib.engine.runs import RunFolder
    from covidlib.grid.plan import plan_grid
    from covidlib.grid.report import render_report
    from covidlib.utils.fileio import atomic_write_text

    if args.workers < 0:
        raise CommandError(f"--workers {args.workers}: use 1 or more")
    args.workers = args.workers or (len(args.gpus) if args.gpus else 1)
    configs = _experiments(args)
    roots = _dataset_roots(args, {config.dataset for config in configs})
    plan = plan_grid(configs, args.out, roots=roots)
    print(f"planned {len(plan.tasks)} fold tasks in {args.out}")
    code = run_grid(args)
    if args.executor == "slurm":
        print(f"render the report once the jobs have finished: covidlib reproduce --out "
              f"{args.out} (same options) skips the finished folds")
        return code
    report = Path(args.out) / "report"
    # a smoke run checks the pipeline: fewer bootstrap resamples are plenty there
    lines = render_report(plan, report, n_resamples=500 if args.subset == "smoke" else 2000)
    commands = registered_commands()
    for command, figure in (("tsne", "t-SNE"), ("gradcam", "Grad-CAM")):
        if command not in commands:
            lines.append(f"{figure}: skipped, `covidlib {command}` is not part of this "
                         "covidlib yet")
    if commands & {"tsne", "gradcam"}:
        for run_dir in plan.run_dirs():
            if RunFolder(run_dir).finished_folds():
                lines += _explain(run_dir, report, commands)
    if args.store is not None:
        lines += _store(plan, args.store, roots)
    atomic_write_text(report / "README.md", "# Report\n\n" + "".join(
        f"- {line}\n" for line in lines))
    print("\n".join(lines))
    print(f"report: {report}", file=sys.stderr)
    return code
