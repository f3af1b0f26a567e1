"""`covidlib` commands for the train domain (not written yet)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add this group's commands to the top-level parser (none yet)."""
    del subparsers
