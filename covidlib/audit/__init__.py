"""Leakage audit: byte-identical and near-duplicate images, pseudo-patients, leaks per fold.

Modules, lowest first: ``duplicates`` (SHA-256 digests, perceptual hashes with
``imagehash``, pair distances, the datasets chapter's :func:`find_duplicates`), ``leaks``
(:func:`audit_images`, pseudo-patients, leaks of a fold assignment).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`).
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DEFAULT_THRESHOLD": "covidlib.audit.leaks",
    "FEATURE_THRESHOLD": "covidlib.audit.leaks",
    "HASH_METHODS": "covidlib.audit.duplicates",
    "MIN_PAIRS": "covidlib.audit.leaks",
    "AuditResult": "covidlib.audit.leaks",
    "audit_images": "covidlib.audit.leaks",
    "average_hash": "covidlib.audit.duplicates",
    "feature_distances": "covidlib.audit.leaks",
    "file_digests": "covidlib.audit.duplicates",
    "find_duplicates": "covidlib.audit.duplicates",
    "fold_leaks": "covidlib.audit.leaks",
    "identical_sets": "covidlib.audit.duplicates",
    "image_hashes": "covidlib.audit.duplicates",
    "near_matrix": "covidlib.audit.leaks",
    "pair_distances": "covidlib.audit.duplicates",
    "pseudo_patients": "covidlib.audit.leaks",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
