"""tools/longform_accuracy.py's pieces: the joined recording, speech spans, word-to-utterance
assignment and boundary errors, checked against values worked out by hand."""

import importlib.util
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FS = 1000   # a small rate keeps the arrays readable: 1 sample = 1 ms


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("longform_accuracy", ROOT / "tools" / "longform_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def utterance(lead_ms, speech_ms, tail_ms):
    return np.concatenate([np.zeros(lead_ms), 0.5 * np.ones(speech_ms), np.zeros(tail_ms)]).astype(np.float32)


def test_speech_span_finds_the_loud_part(tool):
    start, end = tool.speech_span(utterance(200, 500, 300), FS)
    assert (start, end) == (0.2, 0.7)


def test_recording_cycles_the_set_with_pauses_and_knows_where_each_utterance_is(tool):
    audio = {"a": utterance(100, 300, 100), "b": utterance(0, 200, 0)}
    rec, order, spans = tool.build_recording(list(audio), audio, FS, minutes=3 / 60, gap_s=(0.5, 0.5),
                                             gap_noise=0.0, rng=random.Random(0))
    assert len(rec) >= 3 * FS and sorted(order[:2]) == ["a", "b"] and len(order) > 2   # cycled
    for u, (start, end, s0, s1) in zip(order, spans):
        piece = rec[int(round(start * FS)):int(round(end * FS))]
        assert np.array_equal(piece, audio[u])
        assert abs((s1 - s0) - {"a": 0.3, "b": 0.2}[u]) < 1e-9
    # every utterance is followed by exactly the 0.5 s pause
    assert all(abs(spans[i + 1][0] - spans[i][1] - 0.5) < 1e-9 for i in range(len(spans) - 1))


def test_words_go_to_the_utterance_whose_stretch_holds_their_centre(tool):
    spans = [(0.0, 1.0, 0.1, 0.9), (1.5, 2.5, 1.6, 2.4), (3.0, 4.0, 3.2, 3.8)]   # cuts at 1.25 and 2.75
    W = lambda w, s, e: SimpleNamespace(word=w, start=s, end=e)  # noqa: E731
    words = [W("a", 0.15, 0.5), W("b", 0.6, 1.0), W("c", 1.2, 1.4), W("d", 1.7, 2.35), W("e", 3.5, 3.7)]
    mine = tool.words_per_utterance(words, spans)
    assert [[w.word for w in m] for m in mine] == [["a", "b"], ["c", "d"], ["e"]]   # c's centre 1.3 > 1.25
    errors, missing = tool.boundary_errors(mine, spans)
    assert missing == 0
    assert np.allclose(errors, [0.05, 0.1, 0.4, 0.05, 0.3, 0.1])
    errors, missing = tool.boundary_errors([mine[0], [], mine[2]], spans)
    assert missing == 1 and len(errors) == 4


def test_wer_ignores_empty_references(tool):
    assert tool.wer(["a b c d", ""], ["a x c d", "spurious"]) == 25.0
