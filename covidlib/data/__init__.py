"""Data: the dataset registry, sources (downloads), indexing, image decoding, the synthetic
phantom, and the letterbox cache with its fold loaders.

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CACHE_VERSION": "covidlib.data.loaders",
    "CLASS_NAMES": "covidlib.data.phantom",
    "COVID_FINDINGS": "covidlib.data.phantom",
    "CachedDataLoader": "covidlib.data.loaders",
    "CachedImages": "covidlib.data.loaders",
    "ClassSpec": "covidlib.data.datasets",
    "CountVariant": "covidlib.data.datasets",
    "DATASETS": "covidlib.data.datasets",
    "DatasetIndex": "covidlib.data.datasets",
    "DatasetLayoutError": "covidlib.data.datasets",
    "DatasetProblemsError": "covidlib.data.datasets",
    "DatasetSpec": "covidlib.data.datasets",
    "DownloadError": "covidlib.data.sources",
    "GENERATOR": "covidlib.data.phantom",
    "GENERATOR_VERSION": "covidlib.data.phantom",
    "ImageInfo": "covidlib.data.images",
    "ImageLoadError": "covidlib.data.images",
    "LABELS_COLUMNS": "covidlib.data.phantom",
    "LABELS_NAME": "covidlib.data.phantom",
    "LetterboxCache": "covidlib.data.loaders",
    "MANIFEST_NAME": "covidlib.data.phantom",
    "MetadataSpec": "covidlib.data.datasets",
    "NON_COVID_FINDINGS": "covidlib.data.phantom",
    "PhantomExistsError": "covidlib.data.phantom",
    "PhantomSlice": "covidlib.data.phantom",
    "RemoteFile": "covidlib.data.datasets",
    "SIZE_MAX": "covidlib.data.phantom",
    "SIZE_MIN": "covidlib.data.phantom",
    "average_hash": "covidlib.data.datasets",
    "count_class_files": "covidlib.data.sources",
    "default_root": "covidlib.data.datasets",
    "download_dataset": "covidlib.data.datasets",
    "download_file": "covidlib.data.sources",
    "ensure_dataset": "covidlib.data.datasets",
    "extract_archives": "covidlib.data.datasets",
    "find_duplicates": "covidlib.data.datasets",
    "find_layout": "covidlib.data.datasets",
    "fold_dataloaders": "covidlib.data.loaders",
    "generate_phantom": "covidlib.data.phantom",
    "get_dataset": "covidlib.data.datasets",
    "index_dataset": "covidlib.data.datasets",
    "is_covid_index": "covidlib.data.phantom",
    "is_current": "covidlib.data.phantom",
    "is_ignored_name": "covidlib.data.datasets",
    "letterbox_cache": "covidlib.data.loaders",
    "list_datasets": "covidlib.data.datasets",
    "load_grayscale": "covidlib.data.images",
    "phantom_manifest": "covidlib.data.phantom",
    "probe_image": "covidlib.data.images",
    "read_manifest": "covidlib.data.phantom",
    "render_phantom": "covidlib.data.phantom",
    "render_slice": "covidlib.data.phantom",
    "sample_size": "covidlib.data.phantom",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
