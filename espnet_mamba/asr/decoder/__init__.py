from espnet_mamba.asr.decoder.mamba_decoder import MambaDecoder

__all__ = ["MambaDecoder"]
