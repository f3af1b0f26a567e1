"""Environment switches, parsed one way in one place.

Example:
    >>> import os
    >>> os.environ["COVIDLIB_EXAMPLE_FLAG"] = " Off "
    >>> env_flag("COVIDLIB_EXAMPLE_FLAG", default=True)
    False
    >>> del os.environ["COVIDLIB_EXAMPLE_FLAG"]
    >>> env_flag("COVIDLIB_EXAMPLE_FLAG", default=True)
    True
"""

from __future__ import annotations

import os

FALSE_VALUES = frozenset({"0", "false", "no", "off", ""})
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str, default: bool) -> bool:
    """Return the on/off switch ``name`` of the environment, or ``default`` when unset.

    ``0``/``false``/``no``/``off`` and the empty string are off, ``1``/``true``/``yes``/``on``
    are on (any case, surrounding spaces ignored).

    Raises:
        ValueError: any other value, naming the variable and the accepted values.

    Example:
        >>> import os
        >>> os.environ["COVIDLIB_EXAMPLE_FLAG"] = "maybe"
        >>> env_flag("COVIDLIB_EXAMPLE_FLAG", default=False)
        Traceback (most recent call last):
        ...
        ValueError: COVIDLIB_EXAMPLE_FLAG='maybe' is not an on/off value; use one of ...
        >>> del os.environ["COVIDLIB_EXAMPLE_FLAG"]
    """
    value = os.environ.get(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in FALSE_VALUES:
        return False
    if text in TRUE_VALUES:
        return True
    raise ValueError(
        f"{name}={value!r} is not an on/off value; use one of 1, true, yes, on, 0, false, no, off."
    )
