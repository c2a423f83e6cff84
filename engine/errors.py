"""User-facing errors. The CLI prints `Error: <message>` and exits 1 for these; a
message is one line that names the file, field or row at fault."""


class FoldgateError(Exception):
    """A problem with the user's input or environment, not a bug in foldgate."""


class DataError(FoldgateError):
    """Bars that are missing, too few, or invalid."""


class PolicyError(FoldgateError):
    """A checkpoint that cannot be loaded or does not validate."""


class ArchiveError(FoldgateError):
    """A training archive or summary that cannot be used."""


class ConfigError(FoldgateError):
    """A thresholds or settings file with unknown keys or wrong types."""


class SourceError(FoldgateError):
    """A market-data source that refused or failed."""


class FeatureError(PolicyError, ValueError):
    """An unknown or malformed feature name (a policy naming it cannot be loaded)."""


class WriteError(FoldgateError, OSError):
    """A file that could not be written (full disk, no permission, read-only file
    system). Also an OSError, so code that handles OSError keeps working."""

    def __str__(self) -> str:
        # OSError's own __str__ would print "[Errno N] ..." around the message
        return str(self.args[0]) if self.args else "cannot write a file"
