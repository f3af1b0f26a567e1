"""`covidlib models`: print Table 1 computed from the instantiated architectures.

Example:
    $ covidlib models
    $ covidlib models --json
    $ covidlib models --names resnet18 densenet121 --compare
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``models`` command to the top-level parser."""
    parser = subparsers.add_parser(
        "models",
        help="list the 12 architectures with Table 1 computed from the models",
        description=(
            "Instantiate every architecture (random init, one-logit head, no network) and "
            "print its default and custom input, nominal layers, trainable parameters "
            "(millions) and model size (MB of float32 parameters)."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects")
    parser.add_argument(
        "--names", nargs="+", metavar="NAME", help="only these models (default: all 12)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="add the paper's Table 1 values next to ours"
    )
    parser.set_defaults(func=models_command)


def _size(value: tuple[int, int]) -> list[int]:
    return [int(value[0]), int(value[1])]


def models_command(args: argparse.Namespace) -> int:
    """Print the table (text or JSON); unknown names are a user error.

    Example:
        >>> from covidlib.cli import main
        >>> main(["models", "--names", "squeezenet", "--json"])  # doctest: +ELLIPSIS
        [
          {
            "name": "squeezenet",
            "paper_name": "SqueezeNet",
        ...
            "params_millions": 0.74,
            "size_mb": 2.9,
        ...
        ]
        0
    """
    from covidlib.models import registry as models

    names = [models.get_spec(n).name for n in args.names] if args.names else None
    table = models.compare_with_paper(names) if args.compare else models.model_table(names)
    if args.json:
        records = []
        for row in table.to_dict("records"):
            spec = models.get_spec(row["name"])
            row.update(
                default_input=_size(row["default_input"]),
                custom_input=_size(row["custom_input"]),
                min_input=_size(spec.min_input),
                gradcam_layer=spec.gradcam_layer,
                feature_dim=spec.feature_dim,
            )
            records.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
        print(json.dumps(records, indent=2))
        return 0
    shown = table.copy()
    for column in ("default_input", "custom_input"):
        shown[column] = shown[column].map(lambda s: f"{s[0]}x{s[1]}")
    print(shown.drop(columns=["params"]).to_string(index=False))
    return 0
