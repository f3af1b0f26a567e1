"""Data: the dataset registry, sources (downloads), indexing, image decoding, the
synthetic phantom, and the letterbox cache with its fold loaders.

Modules, lowest first (each imports only those above it): ``images``, ``registry``,
``phantom``, ``index``, ``sources`` (downloads, :func:`ensure_dataset`),
``cache`` (the letterbox cache), ``loaders`` (fastai loaders per fold).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "letterbox_cache": "covidlib.data.cache",
    "load_grayscale": "covidlib.data.images",
    "DatasetIndex": "covidlib.data.index",
    "DatasetLayoutError": "covidlib.data.index",
    "DatasetProblemsError": "covidlib.data.index",
    "index_dataset": "covidlib.data.index",
    "CachedDataLoader": "covidlib.data.loaders",
    "fold_dataloaders": "covidlib.data.loaders",
    "PATIENT_DEFAULTS": "covidlib.data.phantom",
    "PATIENT_PHANTOM": "covidlib.data.phantom",
    "generate_patient_phantom": "covidlib.data.phantom",
    "generate_phantom": "covidlib.data.phantom",
    "read_manifest": "covidlib.data.phantom",
    "get_dataset": "covidlib.data.registry",
    "list_datasets": "covidlib.data.registry",
    "download_dataset": "covidlib.data.sources",
    "ensure_dataset": "covidlib.data.sources",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
