"""The exit convention of the recipe's command-line tools (stage scripts read the exit status)."""

import sys
from typing import Callable, Tuple, Type


def run_reporting(action: Callable[[], object], errors: Tuple[Type[Exception], ...]) -> int:
    """0 when ``action()`` returns; 1 with one 'ERROR: ...' line on stderr for an expected error
    (a problem of the user's data or options), so a recipe stops with a message, not a traceback."""
    try:
        action()
    except errors as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0
