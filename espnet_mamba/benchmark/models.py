"""The models the benchmarks compare, and the one way every benchmark builds them."""

import importlib
from pathlib import Path

import torch

FS = 16000
FEATURE_DIM = 80
TOKENS = ["<blank>", "<unk>", "<space>"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["'", "<sos/eos>"]

# ~31-33M parameters each at d_model 512 (7.4M of it is the shared conv2d subsampling design).
# use_flash_attn: false: not installed on CPU; keeps ESPnet from trying
ENCODERS = {
    "mamba": ("espnet_mamba.asr.encoder:MambaEncoder",
              dict(output_size=512, num_blocks=7, bidirectional="add", dropout_rate=0.0)),
    "conmamba": ("espnet_mamba.asr.encoder:ConMambaEncoder",
                 dict(output_size=512, linear_units=1024, num_blocks=4, bidirectional="add",
                      dropout_rate=0.0)),
    "transformer": ("espnet2.asr.encoder.transformer_encoder:TransformerEncoder",
                    dict(output_size=512, attention_heads=8, linear_units=1536, num_blocks=9,
                         dropout_rate=0.0, attention_dropout_rate=0.0, positional_dropout_rate=0.0,
                         use_flash_attn=False)),
    "conformer": ("espnet2.asr.encoder.conformer_encoder:ConformerEncoder",
                  dict(output_size=512, attention_heads=8, linear_units=1024, num_blocks=6,
                       cnn_module_kernel=31, macaron_style=True, pos_enc_layer_type="rel_pos",
                       selfattention_layer_type="rel_selfattn", use_cnn_module=True,
                       dropout_rate=0.0, attention_dropout_rate=0.0, positional_dropout_rate=0.0,
                       use_flash_attn=False)),
}

DECODERS = {
    "mamba": ("espnet_mamba.asr.decoder:MambaDecoder",
              dict(attention_heads=4, linear_units=2048, num_blocks=6, dropout_rate=0.0,
                   src_attention_dropout_rate=0.0)),
    "transformer": ("espnet2.asr.decoder.transformer_decoder:TransformerDecoder",
                    dict(attention_heads=4, linear_units=2048, num_blocks=6, dropout_rate=0.0,
                         positional_dropout_rate=0.0, self_attention_dropout_rate=0.0,
                         src_attention_dropout_rate=0.0)),
}


def scaled(conf: dict, scale: float) -> dict:
    """A copy of conf; scale < 1 shrinks width and depth (tests, quick checks)."""
    conf = dict(conf)
    if scale == 1.0:
        return conf
    if "output_size" in conf:
        conf["output_size"] = max(32, int(conf["output_size"] * scale) // 32 * 32)
    conf["num_blocks"] = max(1, int(conf["num_blocks"] * scale))
    if "linear_units" in conf:
        conf["linear_units"] = max(32, int(conf["linear_units"] * scale))
    if "attention_heads" in conf:
        conf["attention_heads"] = 4
    return conf


def build(table: dict, name: str, *args, scale: float = 1.0) -> torch.nn.Module:
    """``table[name]`` = ("module:Class", conf): Class(*args, **conf scaled), in eval mode.

    Encoders take (FEATURE_DIM,), decoders (vocab, encoder_dim).
    """
    path, conf = table[name]
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)(*args, **scaled(conf, scale)).eval()


def write_random_model(workdir: Path, config: dict) -> Path:
    """config.yaml + model.pth of a random model built by ESPnet's ASRTask from ``config``
    (its frontend, model, encoder and decoder keys), char tokens :data:`TOKENS`."""
    import yaml

    from espnet_mamba.asr.espnet_compat import ASRTask, yaml_no_alias_safe_dump

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    keep = {k: v for k, v in config.items() if k in ("frontend", "frontend_conf", "model", "model_conf",
                                                       "encoder", "encoder_conf", "decoder", "decoder_conf")}
    (workdir / "train.yaml").write_text(yaml.safe_dump(keep))
    args = ASRTask.get_parser().parse_args([
        "--config", str(workdir / "train.yaml"), "--token_list", str(workdir / "tokens.txt"),
        "--token_type", "char", "--output_dir", str(workdir), "--normalize", "none", "--ngpu", "0"])
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    torch.save(model.state_dict(), workdir / "model.pth")
    with (workdir / "config.yaml").open("w") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return workdir
