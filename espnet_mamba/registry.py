"""The one place that adds our classes to ESPnet's ASR task choices.

ESPnet has no plugin mechanism: ``ClassChoices.get_class`` only knows names in
its ``classes`` dict. ``register()`` adds ours; it must run before the
argument parser is built (training) and before any model is rebuilt from a
config (inference, Speech2Text). ``import espnet_mamba`` arranges that (see
``espnet_mamba/__init__.py``); nothing else calls it.

    encoder: mamba | conmamba      decoder: mamba      model: espnet_mamba
"""

_registered = False


def choices():
    from espnet_mamba.asr.decoder import MambaDecoder
    from espnet_mamba.asr.encoder import ConMambaEncoder, MambaEncoder
    from espnet_mamba.asr.model import MambaASRModel

    return {
        "encoder_choices": {"mamba": MambaEncoder, "conmamba": ConMambaEncoder},
        "decoder_choices": {"mamba": MambaDecoder},
        "model_choices": {"espnet_mamba": MambaASRModel},
    }


def register() -> None:
    """Add our encoders, decoder and model to espnet2.tasks.asr. Idempotent."""
    global _registered
    if _registered:
        return
    import espnet2.tasks.asr as asr_task

    for attr, classes in choices().items():
        target = getattr(asr_task, attr)
        for name, cls in classes.items():
            taken = target.classes.get(name)
            if taken is not None and taken is not cls:
                raise RuntimeError(f"espnet_mamba: ESPnet already has a {target.name} named {name!r} "
                                   f"({taken.__module__}.{taken.__name__}); refusing to replace it")
            target.classes[name] = cls
    _registered = True
