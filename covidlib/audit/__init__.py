"""Leakage audit: byte-identical and near-duplicate images, pseudo-patients, leaks per fold.

Modules, lowest first: ``duplicates`` (SHA-256 digests, perceptual hashes with
``imagehash``, pair distances, the datasets chapter's :func:`find_duplicates`), ``leaks``
(:func:`audit_images`, pseudo-patients, leaks of a fold assignment).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`).
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "find_duplicates": "covidlib.audit.duplicates",
    "image_hashes": "covidlib.audit.duplicates",
    "DEFAULT_THRESHOLD": "covidlib.audit.leaks",
    "audit_images": "covidlib.audit.leaks",
    "fold_leaks": "covidlib.audit.leaks",
    "pseudo_patients": "covidlib.audit.leaks",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
