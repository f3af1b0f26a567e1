"""Train the quick-profile ShuffleNet on the real COVID19-CT (official split, CPU) and score
its Grad-CAM maps on the 50 real lesion slices; store the scores with provenance.

The Grad-CAM chapter shows the stored file when ../shared/datasets is absent.

    PYTHONPATH=$PWD python benchmarks/explain_real_masks.py
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "explain" / "real-lesion-masks.json"


def main() -> int:
    from covidlib.book import real_lesion_scores, shared_datasets_dir
    from covidlib.engine.runs import RunFolder

    shared = shared_datasets_dir()
    if shared is None:
        print("../shared/datasets not found", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result, run_dir, config = real_lesion_scores(shared, log=print)
    seconds = time.perf_counter() - started
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    summary = RunFolder(run_dir).summary_file
    record = {
        "what": "Grad-CAM of a COVID19-CT-trained model on the 50 ct-lesion-masks slices",
        "profile": "quick",
        "model": config.model,
        "weights": config.weights,
        "split": config.split,
        "canvas": list(config.canvas or ()),
        "epochs": config.train.epochs,
        "data": "COVID19-CT (UCSD-AI4H, official split) for training; ct-lesion-masks (MedSeg/"
                "SIRM via Inf-Net, 50 slices) for scoring",
        "hardware": f"{platform.machine()} CPU, {platform.processor() or 'unknown'}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "commit": commit,
        "seconds": round(seconds, 1),
        "test_metrics": json.loads(summary.read_text()).get("mean", {}) if summary.is_file()
        else {},
        **result.summary,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(result.lines()))
    print(f"wrote {OUT} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
