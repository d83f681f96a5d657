"""Metadata filters: parsed once, applied before the ranking is cut to k (so k hits come back when k exist)."""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.filters import allowed_chunks, metadata, parse
from rag.load import load_file
from rag.parse import parse_bytes
from rag.pipeline import Rag

QUERY = "glacier ice melting rivers"


def _write(corpus, rel, text, author=None, date=None):
    path = corpus / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    front = "".join(f"{k}: {v}\n" for k, v in (("author", author), ("date", date)) if v)
    path.write_text(f"---\n{front}---\n{text}" if front else text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def crowded(tmp_path_factory):
    """120 documents by Bob that match the query well, 5 by Alice (in reports/) that match it weakly:
    without a filter none of Alice's are in the top 100 of any ranking."""
    from conftest import FakeEmbedder
    from rag.config import load_settings

    root = tmp_path_factory.mktemp("crowded")
    corpus = root / "corpus"
    for i in range(120):
        _write(corpus, f"bob/{i:03d}.md", f"Glacier ice melting feeds rivers, report {i}. Glacier ice melting rivers.",
               author="Bob Writer", date=f"2018-0{1 + i % 9}-1{i % 10}")
    for i in range(5):
        _write(corpus, f"reports/alice-{i}.txt", f"Notes {i} on farming, soil and ice in spring.",
               author="Alice Author", date=f"2021-0{1 + i}-01")
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=root / "index", refusal_threshold="0.2",
                             merge_adjacent="false")
    rag = Rag(settings, embedder=FakeEmbedder())
    rag.build(log=lambda *_: None)
    return rag


def test_parse_operators_and_forms():
    f = parse(["author=Elsa Kania", "date>=2019-01-01", "path=reports/*", "pages<3", "title!=Draft*"])
    assert [(c.key, c.op, c.value) for c in f.conditions] == [
        ("author", "=", "Elsa Kania"), ("date", ">=", "2019-01-01"), ("path", "=", "reports/*"),
        ("pages", "<", "3"), ("title", "!=", "Draft*")]
    assert parse({"author": "Elsa Kania", "date": [">=2019", "<2020-06"]}) == parse(
        ["author=Elsa Kania", "date>=2019", "date<2020-06"])
    assert parse("author = Ann Lee").conditions[0].value == "Ann Lee"
    assert not parse(None) and not parse([])


@pytest.mark.parametrize("spec, words", [
    ("author~Kania", "is not KEY<op>VALUE"), ("date=>2019", "unknown operator '=>'"),
    ("author<>x", "unknown operator '<>'"), ("date>=2019-13-01", "is not a date"),
    ("date<yesterday", "is not a date"), ("pages>=two", "whole number"), ("author=", "has no value"),
])
def test_bad_filters_are_one_line_errors(spec, words):
    with pytest.raises(RagError) as e:
        parse(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_metadata_of_each_kind(tmp_path):
    md = _write(tmp_path, "a/notes.md", "# Notes\n\nText here.", author="Ann Lee", date="2019-02-03")
    old = time.mktime((2017, 5, 6, 12, 0, 0, 0, 0, -1))
    plain = _write(tmp_path, "plain.txt", "---\nsource: Wire\n---\nJust text.")
    os.utime(plain, (old, old))
    m = metadata(load_file(md, "a/notes.md"))
    assert (m["path"], m["type"], m["title"], m["author"], m["date"], m["pages"]) == \
        ("a/notes.md", "md", "Notes", "Ann Lee", "2019-02-03", 1)
    p = metadata(load_file(plain, "plain.txt"))
    assert p["date"] == "2017-05-06" and p["source"] == "Wire" and p["author"] == ""  # no date: the file's day
    from pdfgen import make_pdf

    pdf = metadata(parse_bytes(make_pdf(["one", "two", "three"], title="Three"), ".pdf", "x.pdf"))
    assert (pdf["type"], pdf["pages"], pdf["title"]) == ("pdf", 3, "Three")
    assert parse("pages>=3").matches(pdf) and not parse("pages>=3").matches(p)


def test_touching_a_file_does_not_change_the_document():
    a = parse_bytes(b"Same text.", ".txt", "a.txt")
    b = parse_bytes(b"Same text.", ".txt", "a.txt")
    b.metadata["modified"] = "2030-01-01"
    assert a.hash == b.hash


def test_conditions_match_as_documented():
    meta = {"path": "reports/q1.md", "author": "Elsa Kania", "date": "2019-02-01", "pages": 4, "type": "md"}
    holds = ["author=elsa kania", "author=Elsa*", "path=reports/*", "date=2019", "date=2019-02", "date>=2019-01-01",
             "date<2019-03", "pages>3", "pages<=4", "type!=pdf", "author!=Bob"]
    fails = ["author=Elsa", "path=*.txt", "date=2018", "date>2019-02-01", "pages<4", "type!=md", "source=x"]
    assert all(parse(h).matches(meta) for h in holds), [h for h in holds if not parse(h).matches(meta)]
    assert not any(parse(f).matches(meta) for f in fails), [f for f in fails if parse(f).matches(meta)]
    assert parse("source!=x").matches(meta)  # a key the document lacks is "not equal" to anything


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("spec", ["author=Alice Author", "date>=2021", "path=reports/*"])
def test_filter_applies_before_the_cut_so_k_hits_come_back(crowded, mode, spec):
    unfiltered = crowded.search(QUERY, k=4, mode=mode)
    assert all(h.chunk.doc_id.startswith("bob/") for h in unfiltered)
    hits = crowded.search(QUERY, k=4, mode=mode, filters=spec)
    assert len(hits) == 4 and all(h.chunk.doc_id.startswith("reports/alice-") for h in hits)
    assert len({h.chunk.doc_id for h in hits}) == 4


def test_filters_combine_and_ask_takes_them(crowded):
    hits = crowded.search(QUERY, k=5, filters={"author": "Bob Writer", "date": ["<2018-02", ">=2018-01-15"]})
    assert hits and all(crowded.index.documents[h.chunk.doc_id].metadata["date"].startswith("2018-01-1")
                        for h in hits)
    answer = crowded.ask("What melts into rivers?", filters="path=reports/*")
    assert answer.hits and all(h.chunk.doc_id.startswith("reports/") for h in answer.hits)
    assert all(c.doc_id.startswith("reports/") for c in answer.citations)
    assert crowded.search(QUERY, filters="author=Nobody") == []


def test_unknown_key_is_named(crowded):
    with pytest.raises(RagError, match="unknown filter key 'autor'"):
        crowded.search(QUERY, filters="autor=Bob")
    mask = allowed_chunks(crowded.index, parse("author=Alice Author"))
    assert mask.dtype == bool and int(mask.sum()) == 5


def test_a_store_without_subset_search_is_asked_for_more(crowded):
    from rag.retrieve import dense_search

    class Plain:  # a VectorIndex with only search(queries, k): no ID selector
        def __init__(self, inner):
            self.inner, self.count, self.calls = inner, inner.count, []

        def search(self, q, k):
            self.calls.append(k)
            return self.inner.search(q, k)

    plain = Plain(crowded.index.searcher)
    allowed = allowed_chunks(crowded.index, parse("path=reports/*"))
    qv = crowded.embedder.embed_query(QUERY).astype("float32")
    rows, scores = dense_search(plain, qv, 3, allowed)
    assert len(rows) == 3 and all(allowed[r] for r in rows) and len(plain.calls) > 1
    _, exact = dense_search(crowded.index.searcher, qv, 3, allowed)  # FAISS: ID selector, one call
    assert np.allclose(scores, exact) and np.all(np.diff(scores) <= 0)  # the same best scores (ties aside)


def test_a_filtered_hnsw_search_still_returns_k():
    """HNSW with an ID selector can come back short when few rows are allowed; those are then scored exactly."""
    from rag.retrieve import dense_search
    from rag.vectorstore import FaissIndex, write_faiss

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3000, 32)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as d:
        index, info = write_faiss(vecs, Path(d) / "v.faiss", flat_threshold=100, log=lambda *_: None)
    assert info["type"] == "hnsw"
    searcher = FaissIndex(index)
    for n_allowed in (5, 20, 400):
        allowed = np.zeros(3000, dtype=bool)
        allowed[rng.choice(3000, n_allowed, replace=False)] = True
        qv = vecs[rng.integers(3000)]
        rows, scores = dense_search(searcher, qv, 10, allowed)
        want = min(10, n_allowed)
        assert len([r for r in rows if r >= 0]) == want and all(allowed[r] for r in rows if r >= 0)
        truth = np.sort(vecs[allowed] @ qv)[::-1][:want]
        assert np.allclose(np.sort(scores[:want])[::-1], truth, atol=1e-5) or n_allowed > 100
