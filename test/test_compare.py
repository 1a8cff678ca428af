import json
from pathlib import Path

import pytest

from espnet_mamba import compare

LOG = """[vm] 2026-11-22 06:28:05,000 (abs_task:1) INFO: start
    Total Number of model parameters: 2.64 M
[vm] 2026-11-22 06:28:11,646 (trainer:394) INFO: 1epoch results: [train] loss_ctc=24.6, acc=0.234, loss=12.767, time=0.18 seconds, [valid] loss_att=6.0, acc=0.350, loss=6.934, time=0.02 seconds
[vm] 2026-11-22 06:29:15,281 (trainer:394) INFO: 2epoch results: [train] loss_ctc=10.4, acc=0.524, loss=7.668, time=0.23 seconds, [valid] loss_att=5.3, acc=0.400, loss=5.876, time=0.04 seconds, [att_plot] time=0.08 seconds
[vm] 2026-11-22 06:30:05,000 (trainer:534) INFO: The training was finished at 2 epochs
# Accounting: time=120.00 max_rss_mb=1388.5
"""


def make_exp(root: Path, name: str, wer: float, decode: str = "decode_x", counts: dict = None) -> Path:
    exp = root / name
    test = exp / decode / "test"
    (test / "score_wer").mkdir(parents=True)
    (test / "logdir").mkdir()
    (exp / "train.log").write_text(LOG)
    summary = {"metric": "wer", "Err": wer, **({"counts": counts} if counts else {})}
    (test / "score_wer" / "summary.json").write_text(json.dumps(summary))
    (test / "audio_seconds").write_text("100.0\n")
    (test / "logdir" / "asr_inference.1.log").write_text("# Accounting: time=20.00 max_rss_mb=500.0\n")
    (test / "logdir" / "asr_inference.2.log").write_text("# Accounting: time=30.00 max_rss_mb=700.0\n")
    return exp


def test_table_and_plot(tmp_path, capsys):
    a, b = make_exp(tmp_path, "asr_mamba", 12.5), make_exp(tmp_path, "asr_transformer", 14.0)
    compare.main([str(a), str(b), "--out", str(tmp_path / "cmp")])
    table = (tmp_path / "cmp.md").read_text()
    assert "| asr_mamba | 2.64M | 12.5 | 2 | 2.0 min | 1388 MB | 0.500 |" in table
    assert "| asr_transformer | 2.64M | 14.0 |" in table
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    info = compare.parse_train_log(a / "train.log")
    assert [e["valid"]["acc"] for e in info["epochs"]] == [0.35, 0.4]


def test_seed_means_table(tmp_path):
    """Two seeds of one model are averaged (mean and range per test set); a model with one seed keeps
    its own value; the seed comes from the run's config.yaml, not from the directory name."""
    runs = [make_exp(tmp_path, "asr_conmamba_word", 18.1), make_exp(tmp_path, "asr_conmamba_word_seed1", 26.9),
            make_exp(tmp_path, "asr_transformer_word", 40.9)]
    for exp, seed in zip(runs, (0, 1, 0)):
        (exp / "config.yaml").write_text(f"batch_size: 8\nseed: {seed}\nmax_epoch: 12\n")
    compare.main([str(e) for e in runs] + ["--out", str(tmp_path / "cmp")])
    table = (tmp_path / "cmp.md").read_text()
    assert "| asr_conmamba_word_seed1 | 2.64M | 26.9 |" in table  # every run keeps its own row
    means = table.split("Mean over seeds")[1]
    assert "| asr_conmamba_word | 0 1 | 22.5 (18.1-26.9) | 2.0 min |" in means
    assert "| asr_transformer_word | 0 | 40.9 (40.9-40.9) | 2.0 min |" in means


def test_seed_means_pool_error_counts(tmp_path):
    """10.04 and 9.96 both round to 10.0: the summed errors/words say which side of 10% the mean is on.
    A model where one seed's summary has no counts shows no sum rather than a sum over fewer seeds."""
    def counts(sub, dele, ins, wrd):
        return {"wrd": wrd, "sub": sub, "dele": dele, "ins": ins}
    runs = [make_exp(tmp_path, "asr_conmamba_word", 12.17, counts=counts(81, 1, 0, 674)),
            make_exp(tmp_path, "asr_conmamba_word_seed1", 9.35, counts=counts(60, 2, 1, 674)),
            make_exp(tmp_path, "asr_conmamba_word_seed2", 8.61, counts=counts(55, 3, 0, 674)),
            make_exp(tmp_path, "asr_mamba_word", 8.0, counts=counts(50, 4, 0, 674)),
            make_exp(tmp_path, "asr_mamba_word_seed1", 9.0)]
    compare.main([str(e) for e in runs] + ["--out", str(tmp_path / "cmp")])
    means = (tmp_path / "cmp.md").read_text().split("Mean over seeds")[1]
    assert "| asr_conmamba_word | ? ? ? | 10.0 (8.6-12.2; 203/2022 words) |" in means
    assert "| asr_mamba_word | ? ? | 8.5 (8.0-9.0) |" in means


def test_seed_mean_from_counts_not_rounded_wers(tmp_path):
    """56/674 and 74/674 errors are 8.31% and 10.98%, mean 9.64%; their summaries say 8.3 and 11.0,
    whose mean 9.65 would print as 9.7. The mean must come from the counts."""
    runs = [make_exp(tmp_path, "asr_conmamba_word", 8.3, counts={"wrd": 674, "sub": 54, "dele": 1, "ins": 1}),
            make_exp(tmp_path, "asr_conmamba_word_seed4", 11.0, counts={"wrd": 674, "sub": 72, "dele": 1, "ins": 1})]
    compare.main([str(e) for e in runs] + ["--out", str(tmp_path / "cmp")])
    means = (tmp_path / "cmp.md").read_text().split("Mean over seeds")[1]
    assert "| asr_conmamba_word | ? ? | 9.6 (8.3-11.0; 130/1348 words) |" in means


def test_no_seed_table_for_single_runs(tmp_path):
    a, b = make_exp(tmp_path, "asr_mamba", 12.5), make_exp(tmp_path, "asr_transformer", 14.0)
    compare.main([str(a), str(b), "--out", str(tmp_path / "cmp")])
    assert "Mean over seeds" not in (tmp_path / "cmp.md").read_text()


def test_seed_mean_needs_every_seed_decoded(tmp_path):
    a = make_exp(tmp_path, "asr_mamba", 12.5)
    b = make_exp(tmp_path, "asr_mamba_seed1", 14.0)
    (b / "decode_x" / "test" / "score_wer" / "summary.json").unlink()  # seed 1 trained, not scored yet
    compare.main([str(a), str(b), "--out", str(tmp_path / "cmp")])
    means = (tmp_path / "cmp.md").read_text().split("Mean over seeds")[1]
    assert "| asr_mamba | ? ? | - |" in means


def test_two_decodings_need_an_inference_tag(tmp_path):
    exp = make_exp(tmp_path, "asr_mamba", 12.5, decode="decode_ctc0.5")
    make_exp(tmp_path, "asr_mamba", 9.5, decode="decode_ctc1.0")
    with pytest.raises(SystemExit, match="two scored decodings of test .*pick one with --inference_tag"):
        compare.main([str(exp), "--out", str(tmp_path / "cmp")])
    compare.main([str(exp), "--out", str(tmp_path / "cmp"), "--inference_tag", "decode_ctc1.0"])
    assert "| asr_mamba | 2.64M | 9.5 |" in (tmp_path / "cmp.md").read_text()


def test_one_inference_tag_per_experiment(tmp_path):
    """A streamed model decodes into TAG_streaming160ms: run_models.sh passes a tag per exp dir."""
    offline = make_exp(tmp_path, "asr_mamba", 12.5, decode="decode_x")
    make_exp(tmp_path, "asr_mamba", 30.0, decode="decode_y")
    stream = make_exp(tmp_path, "asr_mamba_streaming", 14.0, decode="decode_x_streaming160ms")
    make_exp(tmp_path, "asr_mamba_streaming", 40.0, decode="decode_x")
    compare.main([str(offline), str(stream), "--out", str(tmp_path / "cmp"),
                  "--inference_tag", "decode_x", "decode_x_streaming160ms"])
    table = (tmp_path / "cmp.md").read_text()
    assert "| asr_mamba | 2.64M | 12.5 |" in table and "| asr_mamba_streaming | 2.64M | 14.0 |" in table
    with pytest.raises(SystemExit):   # three tags for two directories
        compare.main([str(offline), str(stream), "--out", str(tmp_path / "cmp"),
                      "--inference_tag", "decode_x", "decode_y", "decode_x"])


def _log_segment(first_epoch: int, last_epoch: int, start_minute: int, minutes: int, finished: bool) -> str:
    """A train.log of one training segment: epochs first..last, wall time `minutes`."""
    lines = [f"[vm] 2026-11-22 07:{start_minute:02d}:00,000 (abs_task:1) INFO: start",
             "    Total Number of model parameters: 2.64 M"]
    for n in range(first_epoch, last_epoch + 1):
        lines.append(f"[vm] 2026-11-22 07:{start_minute:02d}:30,000 (trainer:394) INFO: {n}epoch results: "
                     f"[train] loss=1.0, [valid] acc={n / 100:.2f}, loss=1.0")
    lines.append(f"[vm] 2026-11-22 07:{start_minute + minutes:02d}:00,000 (trainer:1) INFO: end")
    if finished:
        lines.append("# Accounting: time=60.00 max_rss_mb=900.0")
    return "\n".join(lines) + "\n"


def test_resumed_training_counts_every_log_segment(tmp_path):
    """Killed after epoch 9 and resumed: ESPnet's launcher moved the first segment to train.1.log. The table
    shows all 12 epochs and both segments' wall time (4 + 3 min), not only the resumed part."""
    exp = make_exp(tmp_path, "asr_mamba", 12.5)
    (exp / "train.1.log").write_text(_log_segment(1, 9, 0, 4, finished=False))
    (exp / "train.log").write_text(_log_segment(10, 12, 10, 3, finished=True))
    info = compare.parse_train_logs(exp)
    assert [e["epoch"] for e in info["epochs"]] == list(range(1, 13))
    assert info["wall_s"] == 7 * 60 and info["peak_mem_mb"] == 900.0
    compare.main([str(exp), "--out", str(tmp_path / "cmp")])
    assert "| asr_mamba | 2.64M | 12.5 | 12 | 7.0 min | 900 MB |" in (tmp_path / "cmp.md").read_text()


def test_training_from_scratch_drops_older_segments(tmp_path):
    """train.2.log is an older run; train.1.log starts again at epoch 1 (e.g. resume=false): only it and
    train.log (its resumption) describe the model in this directory."""
    exp = make_exp(tmp_path, "asr_mamba", 12.5)
    (exp / "train.2.log").write_text(_log_segment(1, 12, 0, 9, finished=True))
    (exp / "train.1.log").write_text(_log_segment(1, 5, 20, 2, finished=False))
    (exp / "train.log").write_text(_log_segment(6, 8, 30, 1, finished=True))
    info = compare.parse_train_logs(exp)
    assert [e["epoch"] for e in info["epochs"]] == list(range(1, 9))
    assert info["wall_s"] == 3 * 60
