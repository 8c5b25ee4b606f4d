"""The one exception type users see: a clear, one-line message and exit code 2 (no traceback)."""


class UserError(Exception):
    """Bad input from the user (file, config value, CLI flag). The CLI prints `error: <msg>` and exits 2."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
