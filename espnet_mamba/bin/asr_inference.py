"""python -m espnet_mamba.bin.asr_inference: ESPnet's espnet2.bin.asr_inference with our models registered.

Takes exactly ESPnet's arguments (see --help).
"""

from espnet_mamba import registry

registry.register()  # at import: also covers worker processes that re-import this module

from espnet2.bin.asr_inference import main as espnet_main  # noqa: E402


def main(cmd=None):
    espnet_main(cmd)


if __name__ == "__main__":
    main()
