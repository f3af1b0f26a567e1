"""covidlib: data, preprocessing, models, training, metrics and explanations for the
course book "Deep transfer learning for COVID-19 detection from chest CT".

Submodules are imported on demand so that ``import covidlib`` stays fast:

Example:
    >>> import covidlib
    >>> covidlib.get_profile("quick").dataset
    'phantom'
"""

from covidlib.config import Profile, data_dir, get_profile

__version__ = "0.1.0"

__all__ = ["Profile", "__version__", "data_dir", "get_profile"]
