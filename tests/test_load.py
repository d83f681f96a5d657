from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pdfgen import make_pdf
from rag.load import load_corpus
from rag.parse import LoadError, parse_bytes


def test_bundled_article_has_metadata_and_no_site_furniture():
    docs, skipped = load_corpus(Path(__file__).parents[1] / "corpus")
    assert not skipped
    doc = {d.id: d for d in docs}["made-in-china-2025-explained.txt"]
    assert doc.title == "Made in China 2025, Explained"
    assert doc.metadata["author"] == "Elsa Kania"
    assert "Diplomat" in doc.metadata["source"]
    for furniture in ("Subscribe", "Want to read more?", "Already a subscriber", "Letter From the Editors"):
        assert furniture not in doc.text
    assert "Germany’s “Industry 4.0”" in doc.text


def test_each_format_loads_with_title(tiny_corpus):
    docs, skipped = load_corpus(tiny_corpus)
    by_id = {d.id: d for d in docs}
    assert sorted(by_id) == ["bees.txt", "rome.html", "solar.md", "tea.txt"] and not skipped
    assert by_id["solar.md"].title == "Solar power"
    assert by_id["solar.md"].metadata["headings"][0][1] == "Solar power"
    assert by_id["tea.txt"].title == "A Short History of Tea"
    assert by_id["tea.txt"].metadata["author"] == "Test Author"
    assert not by_id["tea.txt"].text.startswith("---")
    rome = by_id["rome.html"]
    assert rome.title == "Ancient Rome"
    assert "Rubicon" in rome.text and "secret script text" not in rome.text and "color:red" not in rome.text


def test_pdf_keeps_page_numbers(tmp_path):
    (tmp_path / "fruit.pdf").write_bytes(make_pdf(["Apples grow on trees.", "Pears are sweet."], "Fruit Guide"))
    docs, skipped = load_corpus(tmp_path)
    assert not skipped
    doc = docs[0]
    assert doc.title == "Fruit Guide"
    second = doc.text.index("Pears")
    from rag.chunk import page_at

    assert page_at(doc, 0) == 1 and page_at(doc, second) == 2


@pytest.mark.parametrize("name,data,reason", [
    ("empty.txt", b"", "empty"),
    ("blank.md", b"   \n\n ", "empty"),
    ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "UTF-8"),
    ("binary.txt", bytes(range(256)) * 64, "binary"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "PDF"),
    ("image.png", b"\x89PNG\r\n", "unsupported"),
])
def test_bad_files_are_named_and_skipped_while_others_index(tmp_path, name, data, reason):
    (tmp_path / "good.txt").write_text("A perfectly good document about owls.")
    (tmp_path / name).write_bytes(data)
    docs, skipped = load_corpus(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert [s.path for s in skipped] == [name]
    assert reason.lower() in skipped[0].reason.lower()


@hsettings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([".txt", ".md", ".html", ".pdf"]))
def test_random_bytes_never_crash_a_loader(data, suffix):
    try:
        doc = parse_bytes(data, suffix, "x" + suffix)
    except LoadError as e:
        assert str(e)
    else:
        assert doc.text.strip() and "\x00" not in doc.text
