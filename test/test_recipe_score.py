import json

import pytest

from espnet_mamba.recipe import score
from espnet_mamba.recipe.data_dir import DataError, read_table


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wer_cer_counts_and_alignment(tmp_path):
    ref = write(tmp_path / "ref", ["u1 the cat sat", "u2 a dog", "u3 hello world"])
    hyp = write(tmp_path / "hyp", ["u1 the bat sat down", "u2 dog", "u3 hello world"])
    score.main(["--ref", str(ref), "--hyp", str(hyp), "--out_dir", str(tmp_path / "dec")])
    wer = json.loads((tmp_path / "dec/score_wer/summary.json").read_text())
    # 7 reference words: cat->bat (S), a (D), down (I)
    assert wer["counts"] == dict(snt=3, wrd=7, cor=5, sub=1, dele=1, ins=1, snt_err=2)
    assert wer["Err"] == 42.9 and wer["S.Err"] == 66.7
    cer = json.loads((tmp_path / "dec/score_cer/summary.json").read_text())
    assert cer["counts"]["wrd"] == len("thecatsat") + len("adog") + len("helloworld")
    text = (tmp_path / "dec/score_wer/result.txt").read_text()
    assert "REF:  the CAT sat ****" in text and "HYP:  the BAT sat DOWN" in text
    assert "HYP:  * dog" in text


def test_missing_hypothesis_is_an_error(tmp_path):
    ref = write(tmp_path / "ref", ["u1 a b", "u2 c"])
    hyp = write(tmp_path / "hyp", ["u1 a b"])
    with pytest.raises(ValueError, match="1 utterances have no hypothesis \\(first: u2\\)"):
        score.main(["--ref", str(ref), "--hyp", str(hyp), "--out_dir", str(tmp_path / "o")])


def test_empty_hypothesis_line_counts_as_deletions(tmp_path):
    ref = write(tmp_path / "ref", ["u1 a b c"])
    hyp = write(tmp_path / "hyp", ["u1"])
    totals, _ = score.score(read_table(ref, allow_empty_value=True), read_table(hyp, allow_empty_value=True),
                            score.word_units)
    assert totals["dele"] == 3 and totals["cor"] == 0


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nope: no such file"):
        score.main(["--ref", str(tmp_path / "nope"), "--hyp", str(tmp_path / "nope"), "--out_dir", str(tmp_path)])
