"""The one exception type the devnet raises for problems a user can fix."""


class DevnetError(Exception):
    """A one-line, actionable devnet failure (port taken, packages missing, node down...)."""
