"""python -m espnet_mamba.bin.asr_train: ESPnet's espnet2.bin.asr_train, exactly its arguments.

Being inside ``espnet_mamba`` is what registers our models: the package import
runs first (also in worker processes, which re-import this module).
"""

from espnet_mamba.asr.espnet_compat import asr_train_main as main

if __name__ == "__main__":
    main()
