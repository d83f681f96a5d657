"""Sentence vectors from the chunk's own forward pass (late chunking), with the packaged model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embed import _span_means
from tests.realmodel import real_embedder

TEXT = ("The Eiffel Tower stands on the Champ de Mars in Paris. It was completed in 1889 for the "
        "World's Fair. Gustave Eiffel's company designed and built it.")


def _spans(text: str, *sentences: str) -> list[tuple[int, int]]:
    return [(text.index(s), text.index(s) + len(s)) for s in sentences]


def test_span_means_average_the_tokens_a_span_overlaps():
    tokens = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype="float32")
    offsets = np.array([[0, 3], [4, 7], [8, 12]])  # three words: "abc def ghij"
    out = _span_means(tokens, offsets, [(0, 7), (8, 12), (5, 9), (12, 12)])
    assert np.allclose(out[0], [2 ** -0.5, 2 ** -0.5])  # mean of the first two, unit length
    assert np.allclose(out[1], [0.6, 0.8])
    assert np.allclose(out[2], np.array([3.0, 5.0]) / np.linalg.norm([3.0, 5.0]))  # partial overlaps count
    assert np.isnan(out[3]).all()  # no token inside: NaN, the caller embeds that sentence alone


@pytest.mark.real_model
def test_one_pass_gives_the_chunk_vector_and_its_sentence_vectors():
    emb = real_embedder()
    sentences = ["The Eiffel Tower stands on the Champ de Mars in Paris.", "It was completed in 1889 for the World's Fair."]
    vecs, span_vecs = emb.embed_spans([TEXT, "Short text."], [_spans(TEXT, *sentences), []])
    assert vecs.shape == (2, emb.dim) and span_vecs[0].shape == (2, emb.dim) and span_vecs[1].shape == (0, emb.dim)
    alone = emb.embed_documents([TEXT, "Short text."])
    assert float(np.min(np.sum(vecs * alone, axis=1))) >= 0.999  # the chunk vector is the usual one
    assert np.allclose(np.linalg.norm(span_vecs[0], axis=1), 1.0, atol=1e-5)
    # Context is the point: "It was completed in 1889" knows "it" is the Eiffel Tower.
    q = emb.embed_query("When was the Eiffel Tower completed?")
    in_context = float(span_vecs[0][1] @ q)
    on_its_own = float(emb.embed_documents([sentences[1]])[0] @ q)
    assert in_context > on_its_own + 0.1, (in_context, on_its_own)
    # and each sentence still keeps its own content
    where = emb.embed_query("Which Paris park does the tower stand on?")
    assert float(span_vecs[0][0] @ where) > float(span_vecs[0][1] @ where)


@pytest.mark.real_model
def test_int8_queries_stay_close_to_fp32_and_rank_the_same():
    from rag.embed import SentenceTransformerEmbedder

    fp32 = SentenceTransformerEmbedder(query_precision="fp32")
    fp32._model = real_embedder().model  # share the loaded weights
    int8 = real_embedder()
    assert int8.query_precision == "int8" and int8.query_model is not int8.model  # quantised copy
    docs = fp32.embed_documents(["The Eiffel Tower is in Paris.", "Bees make honey from nectar.",
                                 "Rome was founded in 753 BC."])
    for q, best in (("Where is the Eiffel Tower?", 0), ("How do bees make honey?", 1), ("When was Rome founded?", 2)):
        a, b = int8.embed_query(q), fp32.embed_query(q)
        assert abs(float(np.linalg.norm(a)) - 1) < 1e-5 and float(a @ b) >= 0.95
        assert int(np.argmax(docs @ a)) == int(np.argmax(docs @ b)) == best


def test_unknown_query_precision_is_one_clear_error():
    from rag.config import load_settings
    from rag.errors import RagError

    with pytest.raises(RagError, match="query_precision 'int4' is unknown; use one of int8, fp32"):
        load_settings(env={"RAG_QUERY_PRECISION": "int4"})


def test_int8_sentence_rows_score_as_their_float32_rows():
    from rag.retrieve import _rows_dot
    from rag.store import QuantizedRows

    rng = np.random.default_rng(0)
    rows = QuantizedRows(rng.integers(-127, 128, (50, 384)).astype("int8"), rng.random(50).astype("float32"))
    picked, qv = np.array([3, 7, 7, 49]), rng.random(384).astype("float32")
    assert np.allclose(_rows_dot(rows, picked, qv), rows[picked] @ qv, rtol=1e-5)
    dense = np.asarray(rows)  # an older index's float32 sentences.npy
    assert np.allclose(_rows_dot(dense, picked, qv), dense[picked] @ qv)
