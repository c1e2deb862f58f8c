"""Exceptions raised by nam_core for bad input."""


class NAMInputError(ValueError):
    """Bad user input: the message names the file, column, row or individual at fault."""


class NonFiniteOutputError(ArithmeticError):
    """A result about to be written holds NaN or +-inf where a value is required.

    Raised before the file is written (nothing is left under its name); the message names the
    file, the column or array, how many values and the first rows.
    """


#: How many offending names an error message shows before "and N more".
N_EXAMPLES = 5


def examples(names, limit: int = N_EXAMPLES) -> str:
    """``'a', 'b', 'c' and 4 more`` for error messages."""
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
