"""User-facing errors. The CLI prints `Error: <message>` and exits 1 for these; a
message is one line that names the file, field or row at fault."""

import re


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



_SETTING_REF = re.compile(r"\{([a-z_]+)\}")


class SettingError(FoldgateError, ValueError):
    """A run setting (a field of engine.pipeline.RunConfig, named by `field`) whose value
    cannot be used. `reason` may name other settings as `{field}`; the message shows
    them as field names, the CLI as its flags (cli/options.py, the one place that maps
    fields to flags). `usage`: the value itself is wrong (the CLI's exit status 2);
    False when it is valid but does not fit this data or machine (exit status 1), e.g.
    more folds than bars, or `cuda` without a GPU; then `value` is the value given."""

    def __init__(self, field: str, reason: str, *, usage: bool = True, value=None):
        self.field, self.reason, self.usage, self.value = field, reason, usage, value
        super().__init__(self.render(lambda name: name))

    def describe(self, name) -> str:
        """The reason, each setting it names shown as `name(field)`."""
        return _SETTING_REF.sub(lambda m: name(m.group(1)), self.reason)

    def render(self, name) -> str:
        """The whole message, the setting (and its value) first, shown as `name(field)`."""
        head = name(self.field) + ("" if self.value is None else f" {self.value}")
        return f"{head}: {self.describe(name)}"
