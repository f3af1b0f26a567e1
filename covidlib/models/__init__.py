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
    "WeightsNotCachedError": "covidlib.models.factory",
    "create_model": "covidlib.models.factory",
    "ModelSpec": "covidlib.models.registry",
    "build_architecture": "covidlib.models.registry",
    "compare_with_paper": "covidlib.models.registry",
    "count_parameters": "covidlib.models.registry",
    "get_spec": "covidlib.models.registry",
    "list_models": "covidlib.models.registry",
    "model_table": "covidlib.models.registry",
    "paper_table1": "covidlib.models.registry",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
