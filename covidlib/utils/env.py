"""Environment switches, parsed one way in one place.

Example:
    >>> import os
    >>> os.environ["COVIDLIB_EXAMPLE_FLAG"] = "off"
    >>> env_flag("COVIDLIB_EXAMPLE_FLAG", default=True)
    False
    >>> env_flag("COVIDLIB_UNSET_FLAG", default=True)
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
