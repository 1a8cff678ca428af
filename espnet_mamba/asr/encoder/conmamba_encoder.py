"""encoder: conmamba -- a Conformer whose self-attention is a bidirectional Mamba.

Block (macaron, as ESPnet's conformer, with ESPnet's own modules):
    x = x + 1/2 FFN(LN(x))
    x = x + BiMamba(LN(x))
    x = x + Conv(LN(x))          ESPnet's conformer convolution module, run with
                                 padded frames zeroed before its depthwise conv
                                 (ESPnet's forward does not mask, so an utterance's
                                 last frames would read its neighbours' padding)
    x = x + 1/2 FFN(LN(x))
    x = LN(x)
"""

from typing import List, Optional

import torch
from typeguard import typechecked

from espnet_mamba.asr.conf_keys import checked_conf
from espnet_mamba.asr.encoder.base import MambaEncoderBase, build_input_layer
from espnet_mamba.asr.espnet_compat import (
    ConvolutionModule,
    LayerNorm,
    PositionwiseFeedForward,
    get_activation,
    make_pad_mask,
)
from espnet_mamba.nn import build_mixer


def masked_conformer_conv(module: torch.nn.Module, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """ESPnet ConvolutionModule.forward with padding zeroed where the depthwise conv reads it.

    x (batch, T, C); pad (batch, T, 1) True on padded frames.
    """
    h = torch.nn.functional.glu(module.pointwise_conv1(x.transpose(1, 2)), dim=1)  # batch, C, T
    h = h.masked_fill(pad.transpose(1, 2), 0.0)
    if getattr(module, "causal", False):  # cnn_module_causal: only past frames, left zero padding
        conv = module.depthwise_conv
        h = torch.nn.functional.pad(h, (conv.dilation[0] * (conv.kernel_size[0] - 1), 0))
    h = module.depthwise_conv(h)
    h = module.pointwise_conv2(module.activation(module.norm(h)))
    return h.transpose(1, 2)


def _conv_module(size: int, kernel: int, activation: torch.nn.Module, causal: bool) -> torch.nn.Module:
    """ESPnet's ConvolutionModule; causal: its depthwise conv unpadded (masked_conformer_conv
    pads on the left), marked ``module.causal``."""
    module = ConvolutionModule(size, kernel, activation)
    if causal:
        module.depthwise_conv.padding = (0,)
        module.causal = True
    return module


class ConMambaBlock(torch.nn.Module):
    def __init__(self, size: int, mixer: torch.nn.Module, feed_forward: Optional[torch.nn.Module],
                 feed_forward_macaron: Optional[torch.nn.Module], conv_module: Optional[torch.nn.Module],
                 dropout_rate: float):
        super().__init__()
        self.mixer = mixer
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.conv_module = conv_module
        self.norm_mixer = LayerNorm(size)
        self.norm_ff = LayerNorm(size) if feed_forward is not None else None
        self.norm_ff_macaron = LayerNorm(size) if feed_forward_macaron is not None else None
        self.norm_conv = LayerNorm(size) if conv_module is not None else None
        self.norm_final = LayerNorm(size) if conv_module is not None else None
        self.dropout = torch.nn.Dropout(dropout_rate)
        self.ff_scale = 0.5 if feed_forward_macaron is not None else 1.0

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.feed_forward_macaron is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        x = x + self.dropout(self.mixer(self.norm_mixer(x), lengths)).to(x.dtype)
        if self.conv_module is not None:
            pad = make_pad_mask(lengths, maxlen=x.size(1)).to(x.device)[:, :, None]
            x = x + self.dropout(masked_conformer_conv(self.conv_module, self.norm_conv(x), pad))
        if self.feed_forward is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        if self.norm_final is not None:
            x = self.norm_final(x)
        return x


@checked_conf("encoder_conf")
class ConMambaEncoder(MambaEncoderBase):
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
        super().__init__(output_size, interctc_layer_idx, interctc_use_conditioning, num_blocks)
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
                conv_module=(_conv_module(output_size, cnn_module_kernel,
                                          get_activation(activation_type), cnn_module_causal)
                             if use_cnn_module else None),
                dropout_rate=dropout_rate)
            for i in range(num_blocks)
        ])
        self.after_norm = LayerNorm(output_size)
