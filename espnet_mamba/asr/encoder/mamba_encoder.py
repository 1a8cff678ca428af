"""encoder: mamba -- ESPnet input layer, N pre-norm Mamba blocks, final RMSNorm."""

from typing import List, Optional, Tuple

import torch
from typeguard import typechecked

from espnet_mamba.asr.conf_keys import checked_conf
from espnet_mamba.asr.encoder.input_layer import build_input_layer, embed
from espnet_mamba.asr.encoder.intermediate_ctc import IntermediateCTC, set_interctc_attributes
from espnet_mamba.asr.espnet_compat import CTC, AbsEncoder
from espnet_mamba.nn.blocks import MambaBlock, build_mixer


@checked_conf("encoder_conf")
class MambaEncoder(AbsEncoder):
    """Mamba encoder for ESPnet ASR. Every argument is an ``encoder_conf`` key.

    Args:
        input_size: feature dimension (set by ESPnet from the frontend).
        output_size: model dimension d_model.
        num_blocks: number of Mamba blocks.
        d_state: SSM state size per channel.
        d_conv: width of the causal depthwise convolution inside each mixer.
        expand: mixer inner width = expand * output_size.
        bidirectional: "none" (causal, streaming-friendly), "add", "mean" or
            "concat" (forward + backward scan, each utterance reversed within
            its own length).
        share_input_projection: with bidirectional, one in_proj for both directions.
        dropout_rate: dropout on each block's output and in the input layer.
        input_layer: "conv2d" (4x subsampling), "conv2d1", "conv2d2", "conv2d6",
            "conv2d8", "linear" (ESPnet's own subsampling modules), or "none"/null
            (no input layer: input_size must equal output_size).
        norm_eps: RMSNorm epsilon.
        residual_in_fp32: keep the residual stream in fp32 under mixed precision.
        interctc_layer_idx: 1-based layers whose output feeds intermediate CTC.
        interctc_use_conditioning: feed the intermediate CTC posteriors back
            (self-conditioned CTC), as ESPnet's conformer does.
    """

    @typechecked
    def __init__(self, input_size: int, output_size: int = 256, num_blocks: int = 12,
                 d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 bidirectional: str = "none", share_input_projection: bool = False,
                 dropout_rate: float = 0.1, input_layer: Optional[str] = "conv2d", norm_eps: float = 1e-5,
                 residual_in_fp32: bool = True, interctc_layer_idx: List[int] = [],  # noqa: B006
                 interctc_use_conditioning: bool = False):
        super().__init__()
        self._output_size = output_size
        set_interctc_attributes(self, interctc_layer_idx, interctc_use_conditioning, num_blocks)
        self.embed = build_input_layer(input_layer, input_size, output_size, dropout_rate)
        self.encoders = torch.nn.ModuleList([
            MambaBlock(output_size,
                       build_mixer(output_size, bidirectional, share_input_projection,
                                   d_state=d_state, d_conv=d_conv, expand=expand, layer_idx=i),
                       norm_eps=norm_eps, dropout_rate=dropout_rate,
                       residual_in_fp32=residual_in_fp32)
            for i in range(num_blocks)
        ])
        self.after_norm = torch.nn.RMSNorm(output_size, eps=norm_eps)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None,
                ctc: Optional[CTC] = None, return_all_hs: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """xs_pad (batch, T, input_size), ilens (batch,) -> (batch, T', output_size), olens, None.

        With interctc_layer_idx or ``return_all_hs`` the first element is a tuple
        (output, intermediate outputs): see :class:`IntermediateCTC`.
        """
        xs, pad = embed(self.embed, xs_pad, ilens)
        outputs = IntermediateCTC(self, ctc, return_all_hs)
        for index, block in enumerate(self.encoders, start=1):
            xs = outputs.after_block(index, block(xs, pad), pad)
        return outputs.finish(xs, pad)
