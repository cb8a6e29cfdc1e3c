"""The one error the generator reports: where in which YAML file, which field, what is wrong."""


class SpecError(Exception):
    """A mistake in an operator spec. str() is `file:line: field: message`."""

    def __init__(self, file: str, line: int, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        super().__init__(f"{file}:{line}: {field}: {message}")
