"""Explanations: penultimate features and their t-SNE/PCA maps, class activation maps
(pytorch-grad-cam) for the 12 networks, and their localization scores against lesion masks.

Modules: ``features`` (penultimate features of a run's fold model), ``embedding`` (t-SNE,
PCA, separation scores, the paper-style plot), ``cam`` (Grad-CAM and relatives, mapped back
through the letterbox), ``localization`` (pointing game, energy share, baselines, bootstrap
intervals), ``body`` (body and lung-field masks of a slice, for the baselines), ``sanity``
(cascading-randomization sanity check), ``separation`` (trained vs untrained separation),
``records`` (stored results with provenance, zero-map diagnostics), ``explorer`` (an
ipywidgets explorer; a static figure in the book).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CAM_METHODS": "covidlib.explain.cam",
    "compute_cams": "covidlib.explain.cam",
    "explain_images": "covidlib.explain.cam",
    "faithfulness": "covidlib.explain.cam",
    "overlay": "covidlib.explain.cam",
    "plot_cams": "covidlib.explain.cam",
    "embed": "covidlib.explain.embedding",
    "plot_embedding": "covidlib.explain.embedding",
    "separation_report": "covidlib.explain.embedding",
    "separation_scores": "covidlib.explain.embedding",
    "mask_for": "covidlib.explain.explorer",
    "show_explorer": "covidlib.explain.explorer",
    "extract_features": "covidlib.explain.features",
    "run_features": "covidlib.explain.features",
    "localize_folder": "covidlib.explain.localization",
    "localize_run": "covidlib.explain.localization",
    "random_map": "covidlib.explain.localization",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
