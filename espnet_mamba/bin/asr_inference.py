"""python -m espnet_mamba.bin.asr_inference: ESPnet's espnet2.bin.asr_inference, exactly its arguments.

Our models are registered by the ``espnet_mamba`` package import (see asr_train).
"""

from espnet_mamba.asr.espnet_compat import asr_inference_main as main

if __name__ == "__main__":
    main()
