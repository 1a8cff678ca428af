"""python -m espnet_mamba.bin.asr_inference_streaming: streaming decoding of causal Mamba models.

ESPnet's ``espnet2.bin.asr_inference_streaming`` arguments (its parser is reused:
see --help), decoding with :class:`espnet_mamba.asr.streaming.Speech2TextStreaming`:
each utterance is fed in chunks of ``--sim_chunk_length`` samples (0: one chunk)
and carried state, partial hypotheses after each chunk, the final result from joint
CTC/attention decoding at the end. Writes ESPnet's ``{n}best_recog/{text,token,
token_int,score}`` and, per utterance, ``streaming/latency`` (compute time per chunk in ms:
p50 p95 max, number of chunks), ``streaming/chunk_ms`` (the compute time of every chunk but
the last, ms), ``streaming/final_ms`` (the last chunk's, which includes the end-of-stream
search) and ``streaming/rtf`` (compute time of all chunks / audio duration).

More options: ``--token_beam`` (tokens per frame that may extend a prefix;
default the beam size, 0 for all), ``--exact_ctc_rescoring`` (default true) and
``--final_search beam|rescore`` (see :class:`Speech2TextStreaming`).

A model with ESPnet's own streaming encoder (``contextual_block_transformer`` or
``contextual_block_conformer``) is decoded with ESPnet's ``Speech2TextStreaming``
(block processing, BatchBeamSearchOnline) in the same loop, so a recipe's
``asr.sh --use_streaming true`` decodes Mamba models and ESPnet's streaming
baselines alike, with the same chunks and the same latency files.
"""

import logging
import sys
import time
from typing import Optional, Sequence, Tuple, Union

import numpy as np


def get_parser():
    from espnet_mamba.asr.espnet_compat import str2bool
    from espnet_mamba.asr.espnet_compat import streaming_inference_parser as espnet_parser

    parser = espnet_parser()
    parser.description = "ASR streaming decoding of causal Mamba/ConMamba models (espnet_mamba)"
    group = parser.add_argument_group("espnet_mamba streaming")
    group.add_argument("--token_beam", type=int, default=None,
                       help="tokens per frame that may extend a CTC prefix (default: beam_size; 0: all)")
    group.add_argument("--exact_ctc_rescoring", type=str2bool, default=True,
                       help="recompute the final n-best's CTC scores exactly over all frames")
    group.add_argument("--final_search", choices=["beam", "rescore"], default="beam",
                       help="end of stream: joint CTC/attention beam search over the whole encoder "
                            "output (beam), or the CTC n-best rescored by the decoder (rescore)")
    group.add_argument("--fs", type=int, default=16000,
                       help="sampling rate, for the real-time factor only")
    return parser


def uses_espnet_streaming_encoder(asr_train_config: str) -> bool:
    """The training config names one of ESPnet's own streaming (contextual block) encoders."""
    import yaml

    with open(asr_train_config, encoding="utf-8") as f:
        encoder = (yaml.safe_load(f) or {}).get("encoder")
    return isinstance(encoder, str) and encoder.startswith("contextual_block")


def chunk_bounds(n_samples: int, chunk: int):
    """[(begin, end, is_final)] covering n_samples; one chunk when chunk <= 0. The last chunk
    is final even when it is short (the stream ends mid-chunk)."""
    if chunk <= 0 or n_samples <= chunk:
        return [(0, n_samples, True)]
    bounds = [(b, min(b + chunk, n_samples), False) for b in range(0, n_samples, chunk)]
    b, e, _ = bounds[-1]
    bounds[-1] = (b, e, True)
    return bounds


def inference(output_dir: str, maxlenratio: float, minlenratio: float, batch_size: int, dtype: str,
              beam_size: int, ngpu: int, seed: int, ctc_weight: float, lm_weight: float, penalty: float,
              nbest: int, normalize_length: bool, num_workers: int, log_level: Union[int, str],
              data_path_and_name_and_type: Sequence[Tuple[str, str, str]], key_file: Optional[str],
              asr_train_config: str, asr_model_file: str, lm_train_config: Optional[str],
              lm_file: Optional[str], word_lm_train_config: Optional[str], word_lm_file: Optional[str],
              token_type: Optional[str], bpemodel: Optional[str], allow_variable_data_keys: bool,
              sim_chunk_length: int, disable_repetition_detection: bool, encoded_feat_length_limit: int,
              decoder_text_length_limit: int, token_beam: Optional[int] = None,
              exact_ctc_rescoring: bool = True, final_search: str = "beam", fs: int = 16000):
    import torch

    from espnet_mamba.asr.espnet_compat import ASRTask, DatadirWriter, TooShortUttError, set_all_random_seed
    from espnet_mamba.asr.streaming import Speech2TextStreaming

    if batch_size > 1:
        raise NotImplementedError("batch decoding is not implemented (streams are decoded one by one)")
    if word_lm_train_config is not None:
        raise NotImplementedError("Word LM is not implemented")
    if ngpu > 1:
        raise NotImplementedError("only single GPU decoding is supported")
    logging.basicConfig(level=log_level,
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    device = "cuda" if ngpu >= 1 else "cpu"
    set_all_random_seed(seed)
    common = dict(
        asr_train_config=asr_train_config, asr_model_file=asr_model_file, lm_train_config=lm_train_config,
        lm_file=lm_file, token_type=token_type, bpemodel=bpemodel, device=device, maxlenratio=maxlenratio,
        minlenratio=minlenratio, dtype=dtype, beam_size=beam_size, ctc_weight=ctc_weight,
        lm_weight=lm_weight, penalty=penalty, nbest=nbest, normalize_length=normalize_length,
        disable_repetition_detection=disable_repetition_detection,
        decoder_text_length_limit=decoder_text_length_limit,
        encoded_feat_length_limit=encoded_feat_length_limit)
    if uses_espnet_streaming_encoder(asr_train_config):
        from espnet_mamba.asr.espnet_compat import Speech2TextStreaming as ESPnetStreaming

        logging.info("contextual block encoder: decoding with ESPnet's Speech2TextStreaming")
        speech2text = ESPnetStreaming(**common)
    else:
        speech2text = Speech2TextStreaming(**common, token_beam=token_beam,
                                           exact_ctc_rescoring=exact_ctc_rescoring,
                                           final_search=final_search)
    loader = ASRTask.build_streaming_iterator(
        data_path_and_name_and_type, dtype=dtype, batch_size=batch_size, key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=ASRTask.build_preprocess_fn(speech2text.asr_train_args, False),
        collate_fn=ASRTask.build_collate_fn(speech2text.asr_train_args, False),
        allow_variable_data_keys=allow_variable_data_keys, inference=True)
    with DatadirWriter(output_dir) as writer:
        for keys, batch in loader:
            key = keys[0]
            speech = batch["speech"][0]
            chunk_seconds = []
            try:
                for begin, end, final in chunk_bounds(len(speech), sim_chunk_length):
                    start = time.perf_counter()
                    try:
                        results = speech2text(speech[begin:end], is_final=final)
                        if device == "cuda":
                            torch.cuda.synchronize()
                    finally:
                        chunk_seconds.append(time.perf_counter() - start)
            except TooShortUttError as e:
                logging.warning(f"Utterance {key} {e}")
                results = []
            if chunk_seconds:
                ms = np.array(chunk_seconds) * 1000
                writer["streaming"]["latency"][key] = (f"{np.percentile(ms, 50):.3f} {np.percentile(ms, 95):.3f} "
                                          f"{ms.max():.3f} {len(ms)}")
                writer["streaming"]["rtf"][key] = f"{sum(chunk_seconds) / max(len(speech) / fs, 1e-9):.4f}"
                # the listening cost (every chunk but the last) apart from the last chunk, which
                # also runs the end-of-stream search
                writer["streaming"]["chunk_ms"][key] = " ".join(f"{v:.3f}" for v in ms[:-1])
                writer["streaming"]["final_ms"][key] = f"{ms[-1]:.3f}"
            if not results:   # nothing recognised (too short): an empty line, as offline decoding
                ibest = writer["1best_recog"]
                ibest["token"][key], ibest["token_int"][key], ibest["score"][key] = "", "", "0.0"
                ibest["text"][key] = ""
                continue
            for n, (text, token, token_int, hyp) in zip(range(1, nbest + 1), results):
                ibest = writer[f"{n}best_recog"]
                ibest["token"][key] = " ".join(token)
                ibest["token_int"][key] = " ".join(map(str, token_int))
                ibest["score"][key] = str(float(hyp.score))
                if text is not None:
                    ibest["text"][key] = text


def main(cmd=None):
    from espnet_mamba.asr.espnet_compat import get_commandline_args

    print(get_commandline_args(), file=sys.stderr)
    args = get_parser().parse_args(cmd)
    kwargs = vars(args)
    kwargs.pop("config", None)
    inference(**kwargs)


if __name__ == "__main__":
    main()
