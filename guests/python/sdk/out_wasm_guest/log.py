"""Lines into the agent's own log, at the instance's ``log_level``.

The host drops lines above the instance's level; checking ``enabled`` first saves formatting
a line nobody will read.
"""

from wit_world.imports import logging as _wit

Level = _wit.Level
_ORDER = {Level.ERROR: 0, Level.WARN: 1, Level.INFO: 2, Level.DEBUG: 3, Level.TRACE: 4}
_max = None


def enabled(level):
    """Whether a line at ``level`` would be written."""
    global _max
    if _max is None:
        _max = _ORDER[_wit.max_level()]
    return _ORDER[level] <= _max


def log(level, message):
    if enabled(level):
        _wit.log(level, message)


def error(message):
    log(Level.ERROR, message)


def warn(message):
    log(Level.WARN, message)


def info(message):
    log(Level.INFO, message)


def debug(message):
    log(Level.DEBUG, message)


def trace(message):
    log(Level.TRACE, message)
