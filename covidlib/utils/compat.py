"""Small shims around third-party quirks, kept in one place.

Example:
    >>> with quiet_fastai_import():
    ...     from fastai.learner import Learner
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_fastai_import() -> Iterator[None]:
    """Hide two known, harmless warnings that importing fastai 2.8 prints.

    fastai decorates helpers with ``torch.jit.script`` (deprecated in recent torch) and
    sets a pandas option that pandas 3 deprecates; neither affects training.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"The 'mode\.chained_assignment' option is deprecated"
        )
        yield
