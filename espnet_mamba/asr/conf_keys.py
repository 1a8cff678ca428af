"""Unknown YAML keys fail with the key's name and the valid keys, not a TypeError."""

import functools
import inspect


def _named_parameters(init) -> list:
    params = inspect.signature(init).parameters
    return [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def checked_conf(section: str):
    """Class decorator: ``section`` is the YAML key, e.g. "encoder_conf"."""

    def wrap(cls):
        init = cls.__init__
        valid = _named_parameters(init)

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            unknown = [k for k in kwargs if k not in valid]
            if unknown:
                raise ValueError(
                    f"{section}: unknown key{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(k) for k in unknown)} for {cls.__name__}; "
                    f"valid keys: {', '.join(valid)}")
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        return cls

    return wrap
