"""Exceptions raised by alpharefine-sdk."""


class WeightsError(ValueError):
    """A weight file or folder is missing, corrupt, foreign, or does not fit the architecture."""


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
