"""Exceptions raised by nam_core for bad input."""


class NAMInputError(ValueError):
    """Bad user input: the message names the file, column, row or individual at fault."""
