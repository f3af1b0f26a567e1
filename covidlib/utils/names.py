"""The error for a name that is not in a registry: a model, dataset, profile or method."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Registries this small are listed in full when nothing is close to the name given.
LIST_IN_FULL = 8


class UnknownNameError(ValueError):
    """An unknown registry name; the message offers at most three close matches.

    Attributes:
        kind: what was looked up, e.g. ``"model"``.
        name: the name given.
        matches: the closest known names (at most three, possibly none).

    Example:
        >>> print(UnknownNameError("model", "resnet19", ["resnet18", "resnet50", "vgg16"]))
        unknown model 'resnet19': did you mean resnet18 or resnet50?
        >>> print(UnknownNameError("model", "resnet", ["resnet18", "resnet50", "resnet101"]))
        unknown model 'resnet': did you mean resnet18, resnet50 or resnet101?
        >>> print(UnknownNameError("profile", "slow", ["quick", "cpu", "full"]))
        unknown profile 'slow'; choose one of quick, cpu, full.
    """

    def __init__(self, kind: str, name: object, choices: Iterable[str], hint: str = "") -> None:
        known = [str(choice) for choice in choices]
        self.kind, self.name = kind, name
        close = difflib.get_close_matches(str(name).strip().lower(), known, n=3)
        self.matches = [choice for choice in known if choice in close]  # the registry's order
        if self.matches:
            options = " or ".join([", ".join(self.matches[:-1]), self.matches[-1]] if
                                  len(self.matches) > 1 else self.matches)
            message = f"unknown {kind} {name!r}: did you mean {options}?"
        elif len(known) <= LIST_IN_FULL:
            message = f"unknown {kind} {name!r}; choose one of {', '.join(known)}."
        else:
            message = f"unknown {kind} {name!r}; {hint or f'{len(known)} names are known'}."
        super().__init__(message)


def check_name(kind: str, name: str, choices: Iterable[str], hint: str = "") -> str:
    """Return ``name`` when it is one of ``choices``, else raise :class:`UnknownNameError`.

    Example:
        >>> check_name("method", "gradcam", ("gradcam", "scorecam"))
        'gradcam'
    """
    known = tuple(choices)
    if name not in known:
        raise UnknownNameError(kind, name, known, hint)
    return name
