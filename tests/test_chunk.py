import pytest
from hypothesis import given, settings as hsettings, strategies as st

from rag.chunk import check_budget, chunk_document, embed_text, load_tokenizer, split_sentences
from rag.embed import model_dir
from rag.errors import RagError
from rag.types import Document

TOK = load_tokenizer(str(model_dir("all-MiniLM-L6-v2")))

words = st.sampled_from(["the", "Industry", "4.0", "U.S.", "naïve", "数据", "état", "—", "e.g.", "AI", "x" * 40,
                         "\u200b", "\u202e", "Mr.", "2025.", "quantum", "semiconductors", "!", "?"])
seps = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "  ", "\t"])
texts = st.lists(st.tuples(words, seps), min_size=1, max_size=400).map(lambda xs: "".join(w + s for w, s in xs))


@hsettings(max_examples=60, deadline=None)
@given(texts, st.sampled_from([(16, 0), (32, 8), (64, 16), (200, 32)]))
def test_chunk_offsets_are_exact_and_within_token_limit(text, params):
    size, overlap = params
    doc = Document("d.txt", "T", text)
    chunks = chunk_document(doc, TOK, size, overlap)
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.text.strip()
        assert TOK.count(c.text) <= size
    covered = [False] * len(text)
    for c in chunks:
        covered[c.start:c.end] = [True] * (c.end - c.start)
    lost = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not lost, f"text not in any chunk at {lost[:5]}"


@hsettings(max_examples=100, deadline=None)
@given(texts)
def test_sentence_spans_are_exact_and_ordered(text):
    spans = split_sentences(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip()
        last = e


def test_sentences_respect_abbreviations():
    text = "The U.S. Department of Justice acted. Elsa B. Kania wrote it. Then it ended!"
    got = [text[s:e] for s, e in split_sentences(text)]
    assert got == ["The U.S. Department of Justice acted.", "Elsa B. Kania wrote it.", "Then it ended!"]


def test_real_article_chunks_never_exceed_model_limit():
    from pathlib import Path

    from rag.load import load_file

    doc = load_file(Path(__file__).parents[1] / "corpus" / "made-in-china-2025-explained.txt",
                    "made-in-china-2025-explained.txt")
    chunks = chunk_document(doc, TOK, 200, 32)
    assert len(chunks) > 10
    for c in chunks:
        full = embed_text(c.text, c.title, c.section, TOK, True)
        assert TOK.count(full) + 2 <= TOK.max_seq_length
        assert doc.text[c.start:c.end] == c.text


def test_chunk_size_over_model_limit_is_refused():
    with pytest.raises(RagError, match="max_seq_length=256"):
        check_budget(TOK, 250, True)
