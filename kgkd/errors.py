"""The kgkd exception hierarchy.

Every user mistake surfaces as one of these, with a message that names the file,
line, node or parameter at fault and says how to fix it. Catch ``KGKDError`` to
handle them all.
"""

from __future__ import annotations


class KGKDError(Exception):
    """Base class of every error kgkd raises on purpose."""


# --- knowledge graph -------------------------------------------------------
class GraphError(KGKDError):
    """A knowledge graph cannot be loaded, validated or converted."""


class GraphParseError(GraphError):
    """A graph file is not well-formed (message carries file and line)."""


class GraphValidationError(GraphError):
    """A graph parses but breaks the kgkd shapes or a structural rule."""


class GraphSecurityError(GraphError):
    """A graph or query asked for a network fetch (owl:imports, SERVICE)."""


class LabelMapError(GraphError):
    """Teacher labels cannot be mapped into the student's label space."""


# --- data ------------------------------------------------------------------
class DataError(KGKDError):
    """A dataset is unknown, missing or malformed."""


class UnknownDatasetError(DataError):
    """A dataset/domain name that kgkd does not know."""


class MissingDataError(DataError):
    """A built data file is absent; the message names the build command."""


# --- config ----------------------------------------------------------------
class ConfigError(KGKDError):
    """A config file or option is invalid (unknown key, wrong type, bad value)."""


# --- models / teachers -----------------------------------------------------
class ModelError(KGKDError):
    """A teacher or student model cannot be built, loaded or run."""


class CheckpointError(ModelError):
    """A checkpoint folder/file is missing, truncated or inconsistent."""


# --- distillation ----------------------------------------------------------
class DistillError(KGKDError):
    """The distillation losses or engine got inconsistent inputs."""


class CacheError(DistillError):
    """A teacher-output cache is stale, truncated or holds bad values."""


# --- signals ---------------------------------------------------------------
class SignalError(KGKDError):
    """Teacher weights / alignment signals cannot be fitted or predicted."""


# --- outputs ---------------------------------------------------------------
class OutputExistsError(KGKDError):
    """An output folder already holds files kgkd would replace (pass --overwrite or pick another)."""


class ConfigValueError(ConfigError):
    """A config error about one dotted key; ``key`` lets the loader say where the value came from."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key
