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
    "BASELINES": "covidlib.explain.localization",
    "CAM_METHODS": "covidlib.explain.cam",
    "CAM_TARGETS": "covidlib.explain.cam",
    "COSTLY_METHODS": "covidlib.explain.cam",
    "CamBatch": "covidlib.explain.cam",
    "EMBEDDING_METHODS": "covidlib.explain.embedding",
    "FeatureSet": "covidlib.explain.features",
    "ImageCam": "covidlib.explain.cam",
    "LocalizationResult": "covidlib.explain.localization",
    "RunInputs": "covidlib.explain.features",
    "body_map": "covidlib.explain.localization",
    "body_mask": "covidlib.explain.body",
    "cascading_randomization": "covidlib.explain.sanity",
    "explanation_provenance": "covidlib.explain.records",
    "localize_targets": "covidlib.explain.records",
    "lung_map": "covidlib.explain.localization",
    "lung_mask": "covidlib.explain.body",
    "plot_randomization": "covidlib.explain.sanity",
    "randomization_record": "covidlib.explain.sanity",
    "run_randomization": "covidlib.explain.sanity",
    "separation_study": "covidlib.explain.separation",
    "zero_map_diagnostics": "covidlib.explain.records",
    "center_map": "covidlib.explain.localization",
    "compute_cams": "covidlib.explain.cam",
    "embed": "covidlib.explain.embedding",
    "energy_share": "covidlib.explain.localization",
    "explain_images": "covidlib.explain.cam",
    "explorer_figure": "covidlib.explain.explorer",
    "extract_features": "covidlib.explain.features",
    "faithfulness": "covidlib.explain.cam",
    "leftover_hooks": "covidlib.explain.cam",
    "live_frontend": "covidlib.explain.explorer",
    "localize_folder": "covidlib.explain.localization",
    "localize_pairs": "covidlib.explain.localization",
    "localize_run": "covidlib.explain.localization",
    "mask_pairs": "covidlib.explain.localization",
    "mask_for": "covidlib.explain.explorer",
    "normalized_batch": "covidlib.explain.features",
    "overlay": "covidlib.explain.cam",
    "plot_cams": "covidlib.explain.cam",
    "plot_embedding": "covidlib.explain.embedding",
    "pointing_game": "covidlib.explain.localization",
    "random_map": "covidlib.explain.localization",
    "run_features": "covidlib.explain.features",
    "run_inputs": "covidlib.explain.features",
    "score_maps": "covidlib.explain.localization",
    "show_explorer": "covidlib.explain.explorer",
    "separation_report": "covidlib.explain.embedding",
    "separation_scores": "covidlib.explain.embedding",
    "summarize_scores": "covidlib.explain.localization",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
