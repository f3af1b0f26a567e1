"""Models: the registry of the paper's 12 architectures (a table as data, Table 1), the model
factory and weight loading, and architecture inspection for the chapters.

Modules, lowest first: ``registry`` (specs, random-init architectures, Table 1), ``factory``
(``create_model`` with ImageNet or local weights), ``inspection`` (blocks, feature maps,
drawings, ``to_model_input``).

Public names are importable from the package and loaded on first use
(:func:`covidlib.utils.lazy.lazy_exports`), so importing it stays cheap.
"""

from covidlib.utils.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BackboneMismatchError": "covidlib.models.factory",
    "CONTAINER_NAMES": "covidlib.models.inspection",
    "HF_WEIGHT_FILES": "covidlib.models.factory",
    "IGNORED_KEY_PREFIXES": "covidlib.models.factory",
    "MODEL_TABLE_FILE": "covidlib.models.registry",
    "ModelSpec": "covidlib.models.registry",
    "NETWORK_PROBE_TIMEOUT_S": "covidlib.models.factory",
    "OFFLINE_ENV_VARS": "covidlib.models.factory",
    "PAPER_TABLE1_FILE": "covidlib.models.registry",
    "WeightsLocation": "covidlib.models.factory",
    "WeightsNotCachedError": "covidlib.models.factory",
    "block_output_channels": "covidlib.models.inspection",
    "build_architecture": "covidlib.models.registry",
    "compare_with_paper": "covidlib.models.registry",
    "conv_kind": "covidlib.models.inspection",
    "conv_label": "covidlib.models.inspection",
    "conv_table": "covidlib.models.inspection",
    "count_parameters": "covidlib.models.registry",
    "create_model": "covidlib.models.factory",
    "draw_block_diagram": "covidlib.models.inspection",
    "draw_channel_shuffle": "covidlib.models.inspection",
    "feature_map_sizes": "covidlib.models.inspection",
    "find_blocks": "covidlib.models.inspection",
    "get_module": "covidlib.models.factory",
    "get_spec": "covidlib.models.registry",
    "group_branches": "covidlib.models.inspection",
    "list_models": "covidlib.models.registry",
    "load_backbone": "covidlib.models.factory",
    "model_table": "covidlib.models.registry",
    "network_available": "covidlib.models.factory",
    "paper_table1": "covidlib.models.registry",
    "require_imagenet_weights": "covidlib.models.factory",
    "shuffle_permutation": "covidlib.models.inspection",
    "stage_modules": "covidlib.models.inspection",
    "to_model_input": "covidlib.models.inspection",
    "weights_location": "covidlib.models.factory",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
