"""Exceptions raised by nam_core for bad input."""


class NAMInputError(ValueError):
    """Bad user input: the message names the file, column, row or individual at fault."""


class NonFiniteOutputError(ArithmeticError):
    """A result about to be written holds NaN or +-inf where a value is required.

    Raised before the file is written (nothing is left under its name); the message names the
    file, the column or array, how many values and the first rows.
    """
