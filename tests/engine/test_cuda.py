"""CUDA-only checks of the GPU code paths; skipped without a GPU (CI has none).

On a GPU machine: ``pytest tests/engine/test_cuda.py`` (``benchmarks/run_gpu.sh`` runs it). They
cover what the CPU tests cannot reach: batches pinned and augmented on the device, mixed
precision with channels-last, and a run interrupted and resumed on the GPU (the checkpoint
then carries the gradient scaler's state).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastai.callback.core import Callback

from covidlib.config import AugmentConfig, ExperimentConfig, RuntimeSettings
from covidlib.data.index import index_dataset
from covidlib.data.loaders import fold_dataloaders
from covidlib.engine.checkpoint import load_checkpoint
from covidlib.engine.cv import CVResult
from covidlib.engine.runs import RunFolder
from covidlib.transforms import augment_batch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
GPU = RuntimeSettings(device="cuda")


def test_fold_loaders_deliver_the_same_test_batches_on_the_gpu(phantom_root: Path) -> None:
    images = index_dataset("phantom", phantom_root).images
    loaders = {  # dataset=None: an in-memory letterbox cache
        device: fold_dataloaders(images, range(20), range(20, 30), (70, 51), 8,
                                 device=torch.device(device), dataset=None)
        for device in ("cpu", "cuda")
    }
    x, y = loaders["cuda"].train.one_batch()
    assert x.is_cuda and y.is_cuda and x.shape == (8, 3, 51, 70) and x.dtype == torch.float32
    gpu_test = torch.cat([batch[0].cpu() for batch in loaders["cuda"].valid])
    cpu_test = torch.cat([batch[0] for batch in loaders["cpu"].valid])
    torch.testing.assert_close(gpu_test, cpu_test)


def test_augmentation_on_the_gpu_draws_the_cpu_parameters() -> None:
    """Parameters come from a CPU generator, so GPU and CPU crop, flip, blur alike."""
    x = torch.rand(6, 1, 40, 56, generator=torch.Generator().manual_seed(0))
    config = replace(AugmentConfig(), noise_std=0.0, blur_p=1.0)  # noise: device RNG
    on_cpu = augment_batch(x, config, torch.Generator().manual_seed(1))
    on_gpu = augment_batch(x.cuda(), config, torch.Generator().manual_seed(1))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=1e-4)
    # with noise (drawn by the GPU's generator, seeded from the CPU one): repeatable too
    noisy = [augment_batch(x.cuda(), AugmentConfig(), torch.Generator().manual_seed(1))
             for _ in range(2)]
    assert noisy[0].is_cuda and torch.equal(noisy[0], noisy[1])


def test_interrupted_gpu_run_resumes_with_its_scaler(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig],
    interrupt: type[Callback], tmp_path: Path,
) -> None:
    config = small_config(model="resnet18", epochs=2, canvas_scale=0.2)  # AMP + channels-last
    straight = cv(tmp_path / "a", config=config, runtime=GPU)
    with pytest.raises(KeyboardInterrupt):
        cv(tmp_path / "b", config=config, runtime=GPU, callbacks=[interrupt(after=0)])
    run_dir = tmp_path / "b" / "phantom" / "resnet18" / "quick"
    checkpoint = load_checkpoint(RunFolder(run_dir).fold(0).checkpoint)
    assert checkpoint["epochs_done"] == 1 and "scaler" in checkpoint
    resumed = cv(tmp_path / "b", config=config, runtime=GPU)
    assert json.loads((run_dir / "summary.json").read_text())["complete"]
    # cuDNN picks its kernels by timing (benchmark mode): equal up to float16 rounding.
    np.testing.assert_allclose(
        resumed.predictions["probability"], straight.predictions["probability"], atol=5e-3
    )


def test_gpu_trained_run_predicts_on_the_cpu(
    cv: Callable[..., CVResult], small_config: Callable[..., ExperimentConfig],
    phantom_root: Path, tmp_path: Path,
) -> None:
    from covidlib.engine.predict import predict_images

    config = small_config(model="resnet18", epochs=1, canvas_scale=0.2)
    result = cv(tmp_path, config=config, runtime=GPU, only_fold=0)
    test_rows: pd.DataFrame = result.predictions[result.predictions["fold"] == 0]
    paths = [phantom_root / p for p in test_rows["path"]]
    again = predict_images(result.run_dir, paths, fold=0)
    # test-fold predictions ran in float16 on the GPU; predict runs float32 on the CPU
    np.testing.assert_allclose(again["probability"], test_rows["probability"], atol=1e-2)
