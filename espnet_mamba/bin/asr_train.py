"""python -m espnet_mamba.bin.asr_train: ESPnet's espnet2.bin.asr_train with our models registered.

Takes exactly ESPnet's arguments (see --help).
"""

from espnet_mamba import registry

registry.register()  # at import: also covers worker processes that re-import this module

from espnet2.bin.asr_train import main as espnet_main  # noqa: E402


def main(cmd=None):
    espnet_main(cmd)


if __name__ == "__main__":
    main()
