"""encoder: conmamba -- a Conformer whose self-attention is a bidirectional Mamba.

Blocks: :class:`espnet_mamba.nn.blocks.ConMambaBlock` (macaron, as ESPnet's
conformer, with ESPnet's own feed-forward and convolution modules; the
convolution never reads padding, see ``espnet_compat.MaskedConvolutionModule``).
"""

from typing import List, Optional, Tuple

import torch
from typeguard import typechecked

from espnet_mamba.asr.conf_keys import checked_conf
from espnet_mamba.asr.encoder.input_layer import build_input_layer, embed
from espnet_mamba.asr.encoder.intermediate_ctc import IntermediateCTC, set_interctc_attributes
from espnet_mamba.asr.espnet_compat import (
    CTC,
    AbsEncoder,
    LayerNorm,
    MaskedConvolutionModule,
    PositionwiseFeedForward,
    get_activation,
)
from espnet_mamba.nn.blocks import ConMambaBlock, build_mixer


@checked_conf("encoder_conf")
class ConMambaEncoder(AbsEncoder):
    """ConMamba encoder for ESPnet ASR. Every argument is an ``encoder_conf`` key.

    Args:
        input_size: feature dimension (set by ESPnet from the frontend).
        output_size: model dimension.
        linear_units: hidden units of each feed-forward module.
        num_blocks: number of ConMamba blocks.
        d_state, d_conv, expand: Mamba mixer sizes (see encoder: mamba).
        bidirectional: how the two scan directions combine: "add", "mean",
            "concat", or "none" for a causal mixer.
        share_input_projection: one in_proj for both directions.
        dropout_rate: dropout on every residual branch and the input layer.
        input_layer: ESPnet subsampling: "conv2d", "conv2d1", "conv2d2",
            "conv2d6", "conv2d8", "linear" or "none"/null
            (no input layer: input_size must equal output_size).
        macaron_style: two half-step feed-forward modules around the mixer.
        use_cnn_module: ESPnet's conformer convolution module after the mixer.
        cnn_module_kernel: its depthwise kernel size (odd).
        cnn_module_causal: the depthwise convolution reads the current and the
            kernel-1 previous frames only (left zero padding), instead of a centred
            window; with bidirectional: none the encoder is causal and streams
            (espnet_mamba.asr.streaming). Same parameters either way.
        activation_type: activation of the feed-forward and convolution
            modules ("swish", "relu", ...; ESPnet's get_activation names).
        interctc_layer_idx: 1-based layers whose output feeds intermediate CTC.
        interctc_use_conditioning: self-conditioned CTC, as ESPnet's conformer.
    """

    @typechecked
    def __init__(self, input_size: int, output_size: int = 256, linear_units: int = 1024,
                 num_blocks: int = 12, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 bidirectional: str = "add", share_input_projection: bool = False,
                 dropout_rate: float = 0.1, input_layer: Optional[str] = "conv2d", macaron_style: bool = True,
                 use_cnn_module: bool = True, cnn_module_kernel: int = 31,
                 cnn_module_causal: bool = False,
                 activation_type: str = "swish", interctc_layer_idx: List[int] = [],  # noqa: B006
                 interctc_use_conditioning: bool = False):
        super().__init__()
        self._output_size = output_size
        set_interctc_attributes(self, interctc_layer_idx, interctc_use_conditioning, num_blocks)
        if use_cnn_module and cnn_module_kernel % 2 == 0:
            raise ValueError(f"encoder_conf: cnn_module_kernel must be odd, got {cnn_module_kernel}")
        self.embed = build_input_layer(input_layer, input_size, output_size, dropout_rate)

        def ffn():
            return PositionwiseFeedForward(output_size, linear_units, dropout_rate,
                                           get_activation(activation_type))

        self.encoders = torch.nn.ModuleList([
            ConMambaBlock(
                output_size,
                build_mixer(output_size, bidirectional, share_input_projection,
                            d_state=d_state, d_conv=d_conv, expand=expand, layer_idx=i),
                feed_forward=ffn(),
                feed_forward_macaron=ffn() if macaron_style else None,
                conv_module=(MaskedConvolutionModule(output_size, cnn_module_kernel,
                                                     get_activation(activation_type), cnn_module_causal)
                             if use_cnn_module else None),
                dropout_rate=dropout_rate, norm=LayerNorm)
            for i in range(num_blocks)
        ])
        self.after_norm = LayerNorm(output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None,
                ctc: Optional[CTC] = None, return_all_hs: bool = False
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """As :meth:`MambaEncoder.forward`: the input layer, the blocks (all given the padding
        built once), intermediate CTC, the final LayerNorm."""
        xs, pad = embed(self.embed, xs_pad, ilens)
        outputs = IntermediateCTC(self, ctc, return_all_hs)
        for index, block in enumerate(self.encoders, start=1):
            xs = outputs.after_block(index, block(xs, pad), pad)
        return outputs.finish(xs, pad)
