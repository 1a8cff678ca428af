"""Mamba (selective state-space) models for ESPnet speech recognition.

``import espnet_mamba`` makes ``encoder: mamba``, ``encoder: conmamba``,
``decoder: mamba`` and ``model: espnet_mamba`` available to ESPnet's ASR task.
This is the one registration path: the entry points in ``espnet_mamba.bin``
get it by living in this package (``python -m`` imports the package first, in
worker processes too), user code by importing the package.

ESPnet's choices are dicts filled when ``espnet2.tasks.asr`` executes; we must
add to them after that and before a parser or model is built. Importing that
module here would cost seconds (and torchaudio) for users of ``espnet_mamba.ops``
alone, so if it is not imported yet we register the moment it is (a one-shot
import hook); if it is, we register now. Either way ``registry.register()``
does the work.
"""

import importlib.abc
import importlib.machinery
import sys

__version__ = "0.1.0"

_ASR_TASK = "espnet2.tasks.asr"


class _RegisterWhenImported(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _ASR_TASK:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            from espnet_mamba import registry

            registry.register()

        spec.loader.exec_module = exec_module
        return spec


def _arrange_registration():
    if _ASR_TASK in sys.modules:
        from espnet_mamba import registry

        registry.register()
    elif not any(isinstance(f, _RegisterWhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenImported())


_arrange_registration()
