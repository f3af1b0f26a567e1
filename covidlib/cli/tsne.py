"""`covidlib tsne`: a t-SNE (or PCA) map of a fold model's penultimate features.

The plot shows COVID / non-COVID images of the fold's training and test part in four
colours (the paper's figure); ``--json`` prints the separation scores (silhouette and
k-NN accuracy, in the 2-D map and in the feature space). With ``--root DIR`` (a folder of
your own images, or ``--dataset NAME``) it maps that dataset's images instead, all unseen
by the fold model (``test``). ``--out-json FILE`` stores the scores of the trained fold model
and of the untrained network it started from, with ``trained_on`` and the run's provenance
(``--with-points`` adds the 2-D points).

Example:
    >>> import tempfile
    >>> from covidlib.cli import main
    >>> main(["tsne", "--run", tempfile.mkdtemp(), "--out", "map.png"])
    2

    $ covidlib tsne --run runs/phantom/resnet18/quick --out tsne.png --json
    $ covidlib tsne --run runs/phantom/resnet18/quick --root my-scans --out mine.png
    $ covidlib tsne --run RUN --out tsne.png --out-json results/explain/tsne-RUN.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from covidlib.cli import CommandError
from covidlib.cli.dataset_args import add_dataset_arguments, dataset_name, index_images


def register(subparsers: Any) -> None:
    """Add the ``tsne`` command."""
    from covidlib.explain.embedding import EMBEDDING_METHODS

    parser = subparsers.add_parser(
        "tsne",
        help="t-SNE or PCA map of a fold model's learned features",
        description="Embed the penultimate features of every image of a run (fold K's model) "
        "in 2-D and plot COVID / non-COVID x train / test.",
    )
    parser.add_argument("--run", type=Path, required=True, help="run folder of `covidlib cv`")
    parser.add_argument("--fold", type=int, default=0, help="fold model (default 0)")
    parser.add_argument("--method", choices=EMBEDDING_METHODS, default="tsne",
                        help="embedding (default tsne)")
    parser.add_argument("--out", type=Path, required=True, help="the plot (.png)")
    parser.add_argument("--json", action="store_true",
                        help="print the separation scores as JSON")
    add_dataset_arguments(parser)  # default: the run's own images
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--out-json", type=Path, metavar="FILE",
                        help="store trained and untrained scores with provenance in FILE")
    parser.add_argument("--with-points", action="store_true",
                        help="with --out-json: store the 2-D points (label, split) too")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="the copy the run was trained on, for the provenance digest")
    parser.set_defaults(func=tsne_command)


def dataset_features(args: argparse.Namespace, name: str) -> Any:
    """Features of every image of a dataset (a folder of your own) under the run's fold
    model, all ``test``: a :class:`covidlib.explain.features.FeatureSet`."""
    from covidlib.data.cache import letterbox_cache
    from covidlib.engine.predict import load_fold_model
    from covidlib.explain.features import FeatureSet, extract_features, run_inputs

    _, _, images = index_images(args, name)
    if images["label"].nunique() < 2:
        raise ValueError(f"{args.root or name} holds one class only; a map needs both.")
    inputs = run_inputs(args.run)
    model = load_fold_model(args.run, args.fold)
    pixels = letterbox_cache(list(images["path"]), inputs.canvas, persist=False).pixels
    table = pd.DataFrame({"path": images["path"].astype(str),
                          "label": images["label"].astype(int), "split": "test"})
    features = extract_features(model, inputs.model, pixels, device=args.device)
    return FeatureSet(features, table, inputs.model, args.fold)


def tsne_command(args: argparse.Namespace) -> int:
    """Run ``covidlib tsne``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from covidlib.engine.runs import RunFolder
    from covidlib.explain.embedding import embed, plot_embedding, separation_report
    from covidlib.explain.features import run_features
    from covidlib.utils.fileio import atomic_path

    if args.out.suffix.lower() != ".png":
        raise CommandError(f"--out {args.out}: give a .png file name")
    try:
        RunFolder(args.run).read_config()
        if args.root is None and args.dataset is None:
            features = run_features(args.run, args.fold, device=args.device)
        else:
            features = dataset_features(args, dataset_name(args))
        points = embed(features.features, args.method)
        labels = features.images["label"].to_numpy()
        report = separation_report(features.features, points, labels)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    ax = plot_embedding(points, labels, features.images["split"].to_numpy(),
                        title=f"{features.model}, fold {args.fold}, {args.method}")
    figure = ax.get_figure(root=True)
    assert figure is not None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    result = {"run": str(args.run), "model": features.model, "fold": args.fold,
              "method": args.method, "n_images": int(len(labels)), "out": str(args.out),
              **report}
    if args.out_json is not None:
        _store(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for space, scores in report.items():
            print(f"{space:<10} silhouette {scores['silhouette']:.3f}  "
                  f"{5}-NN accuracy {scores['knn_accuracy']:.3f}")
        print(f"wrote {args.out}")
    return 0


def _store(args: argparse.Namespace) -> None:
    """Write the trained and untrained separation scores with provenance."""
    from covidlib.explain.records import explanation_provenance, write_result
    from covidlib.explain.separation import separation_study

    try:
        study = separation_study(args.run, args.fold, method=args.method, device=args.device,
                                 with_points=args.with_points)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from error
    stored = {**study, **explanation_provenance(args.run, args.data_root)}
    print(f"wrote {write_result(args.out_json, stored)}")
