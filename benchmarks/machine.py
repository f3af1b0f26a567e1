"""What every benchmark records about the machine it ran on.

Example:
    >>> info = describe_machine()
    >>> {"cpu", "cores", "torch"} <= info.keys()
    True
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from covidlib.evaluate.provenance import cpu_model  # one reader of the CPU's name


def describe_machine(device: torch.device | None = None) -> dict[str, Any]:
    """Return CPU model, cores, load, torch threads and versions, and the GPU name when used.

    Args:
        device: the device the benchmark measured; ``None`` names the first GPU if any.
    """
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device is not None:
        info["device"] = str(device)
    cuda_device = device if device is not None and device.type == "cuda" else None
    if cuda_device is None and device is None and torch.cuda.is_available():
        cuda_device = torch.device("cuda", 0)
    if cuda_device is not None:
        info["gpu"] = torch.cuda.get_device_name(cuda_device)
    return info
