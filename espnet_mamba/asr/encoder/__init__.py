from espnet_mamba.asr.encoder.conmamba_encoder import ConMambaEncoder
from espnet_mamba.asr.encoder.mamba_encoder import MambaEncoder

__all__ = ["MambaEncoder", "ConMambaEncoder"]
