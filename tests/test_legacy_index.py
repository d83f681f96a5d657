"""An index written by an earlier version of the code (committed fixture, not rebuilt here)
opens without a rebuild and gives the same passages and answers it gave then."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FakeEmbedder

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-index"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def legacy_rag(tmp_path_factory):
    from rag.config import load_settings
    from rag.pipeline import Rag

    root = tmp_path_factory.mktemp("legacy")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True, symlinks=True)
    s = load_settings(env={}, corpus_dir=root / "corpus", index_dir=root / "index", refusal_threshold="0.2")
    return Rag(s, embedder=FakeEmbedder())


@pytest.mark.parametrize("key", [k for k in EXPECTED if k.startswith("search/")])
def test_search_matches_the_recorded_passages(legacy_rag, key):
    _, mode, question = key.split("/", 2)
    hits = legacy_rag.search(question, mode=mode)
    got = [[h.chunk.doc_id, h.chunk.start, h.chunk.end, round(h.score, 6)] for h in hits]
    assert got == EXPECTED[key]


@pytest.mark.parametrize("key", [k for k in EXPECTED if k.startswith("ask/")])
def test_answers_match_the_recorded_answers(legacy_rag, key):
    question = key.split("/", 1)[1]
    got = legacy_rag.ask(question).to_dict()
    want = EXPECTED[key]
    # fields added to the answer (or its citations and passages) since the fixture was recorded are
    # allowed; none may change or vanish
    assert _recorded_fields(got, want) == want


def _recorded_fields(got, want):
    """`got` cut down to the fields `want` has, at every level."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _recorded_fields(got.get(k), v) for k, v in want.items()}
    if isinstance(want, list) and isinstance(got, list) and len(got) == len(want):
        return [_recorded_fields(g, w) for g, w in zip(got, want)]
    return got
