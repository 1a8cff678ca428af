from espnet_mamba.asr.frontend.vtlp import VtlpFrontend

__all__ = ["VtlpFrontend"]
