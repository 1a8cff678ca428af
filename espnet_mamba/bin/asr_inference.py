"""python -m espnet_mamba.bin.asr_inference: ESPnet's espnet2.bin.asr_inference, exactly its arguments.

Our models are registered by the ``espnet_mamba`` package import (see asr_train).
"""

from espnet2.bin.asr_inference import main

if __name__ == "__main__":
    main()
