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
    "CACHE_VERSION": "covidlib.data.cache",
    "CLASS_NAMES": "covidlib.data.phantom",
    "COVID_FINDINGS": "covidlib.data.phantom",
    "CachedDataLoader": "covidlib.data.loaders",
    "CachedImages": "covidlib.data.loaders",
    "ClassSpec": "covidlib.data.registry",
    "CountVariant": "covidlib.data.registry",
    "DATASETS": "covidlib.data.registry",
    "DatasetIndex": "covidlib.data.index",
    "DatasetLayoutError": "covidlib.data.index",
    "DatasetProblemsError": "covidlib.data.index",
    "DatasetSpec": "covidlib.data.registry",
    "DownloadError": "covidlib.data.sources",
    "GENERATOR": "covidlib.data.phantom",
    "GENERATOR_VERSION": "covidlib.data.phantom",
    "IMAGE_COLUMNS": "covidlib.data.index",
    "ImageInfo": "covidlib.data.images",
    "ImageLoadError": "covidlib.data.images",
    "LABELS_COLUMNS": "covidlib.data.phantom",
    "LABELS_NAME": "covidlib.data.phantom",
    "LetterboxCache": "covidlib.data.cache",
    "MANIFEST_NAME": "covidlib.data.phantom",
    "MetadataSpec": "covidlib.data.registry",
    "NON_COVID_FINDINGS": "covidlib.data.phantom",
    "PATIENT_PHANTOM": "covidlib.data.phantom",
    "PhantomExistsError": "covidlib.data.phantom",
    "PhantomSlice": "covidlib.data.phantom",
    "RemoteFile": "covidlib.data.registry",
    "SIZE_MAX": "covidlib.data.phantom",
    "SIZE_MIN": "covidlib.data.phantom",
    "SPLITS": "covidlib.data.registry",
    "count_class_files": "covidlib.data.sources",
    "default_root": "covidlib.data.registry",
    "download_dataset": "covidlib.data.sources",
    "download_file": "covidlib.data.sources",
    "ensure_dataset": "covidlib.data.sources",
    "ensure_patient_phantom": "covidlib.data.phantom",
    "ensure_phantom": "covidlib.data.phantom",
    "extract_archives": "covidlib.data.index",
    "find_layout": "covidlib.data.index",
    "fold_dataloaders": "covidlib.data.loaders",
    "generate_patient_phantom": "covidlib.data.phantom",
    "generate_phantom": "covidlib.data.phantom",
    "get_dataset": "covidlib.data.registry",
    "index_dataset": "covidlib.data.index",
    "is_covid_index": "covidlib.data.phantom",
    "is_current": "covidlib.data.phantom",
    "is_ignored_name": "covidlib.data.index",
    "letterbox_cache": "covidlib.data.cache",
    "list_datasets": "covidlib.data.registry",
    "load_grayscale": "covidlib.data.images",
    "phantom_manifest": "covidlib.data.phantom",
    "probe_image": "covidlib.data.images",
    "read_manifest": "covidlib.data.phantom",
    "render_phantom": "covidlib.data.phantom",
    "render_slice": "covidlib.data.phantom",
    "sample_size": "covidlib.data.phantom",
    "source_prefix": "covidlib.data.index",
    "walk_visible_files": "covidlib.data.index",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
