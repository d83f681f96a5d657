"""Issue 14, round 2: uploads, symlinks, login back-off, chat history, odd bytes in questions,
range-checked settings, deep folders, logging, huge single-word lines and huge extractions."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from pdfgen import make_pdf
from rag.config import load_settings
from rag.errors import RagError
from rag.load import load_corpus

ROOT = Path(__file__).parents[1]


# ---------------------------------------------------------------- 2. uploads never overwrite a different document


def _upload(rag, tmp_path, name, text):
    from rag.ui import add_document

    src = tmp_path / "incoming" / f"{abs(hash((name, text)))}.md"
    src.parent.mkdir(exist_ok=True)
    src.write_text(text, encoding="utf-8")
    return add_document(rag, src, name=name)


def test_unicode_upload_names_are_kept_and_never_collide(tiny_rag, tmp_path):
    texts = {"東京.md": "Tokyo has the busiest railway station, Shinjuku.",
             "大阪.md": "Osaka is famous for takoyaki street food.",
             "résumé.md": "Marie worked as a glassblower in Murano.",
             "résumè.md": "Pierre trained falcons in Provence."}
    for name, text in texts.items():
        status = _upload(tiny_rag, tmp_path, name, text)
        assert status.startswith(f"Added {name}:"), status
    corpus = Path(tiny_rag.settings.corpus_dir)
    assert set(texts) <= {p.name for p in corpus.iterdir()}
    ids = {d["id"] for d in tiny_rag.index.manifest["documents"]}
    assert set(texts) <= ids
    for name, query in (("東京.md", "Shinjuku railway station"), ("大阪.md", "takoyaki street food"),
                        ("résumé.md", "glassblower Murano"), ("résumè.md", "falcons Provence")):
        assert tiny_rag.search(query, k=1)[0].chunk.doc_id == name


def test_a_different_file_under_a_taken_name_is_stored_beside_it(tiny_rag, tmp_path):
    corpus = Path(tiny_rag.settings.corpus_dir)
    assert _upload(tiny_rag, tmp_path, "notes.md", "Otters hold hands while sleeping.").startswith("Added notes.md")
    status = _upload(tiny_rag, tmp_path, "notes.md", "Wombats produce cube shaped droppings.")
    assert status.startswith("Added notes (2).md") and "notes.md" in status
    assert _upload(tiny_rag, tmp_path, "notes.md", "Narwhal tusks are teeth.").startswith("Added notes (3).md")
    assert (corpus / "notes.md").read_text() == "Otters hold hands while sleeping."
    before = sorted(p.name for p in corpus.iterdir())
    same = _upload(tiny_rag, tmp_path, "notes.md", "Wombats produce cube shaped droppings.")
    assert "already" in same and "notes (2).md" in same
    assert sorted(p.name for p in corpus.iterdir()) == before
    assert tiny_rag.search("wombats cube droppings", k=1)[0].chunk.doc_id == "notes (2).md"


@pytest.mark.parametrize("raw,clean", [
    ("東京.md", "東京.md"),
    ("re\u0301sume\u0301.md", "résumé.md"),  # NFC
    ("a<b>c:d|e?f*g\".txt", "a_b_c_d_e_f_g_.txt"),
    ("tab\there\x07.md", "tab_here_.md"),
    ("..\\..\\Данные.PDF", "Данные.pdf"),
    ("notes.markdown", "notes.markdown"),
])
def test_upload_names_keep_letters_and_drop_only_unsafe_characters(raw, clean):
    from rag.ui_render import safe_upload_name

    assert safe_upload_name(raw) == clean


def test_a_long_upload_name_fits_a_file_system_name():
    from rag.ui_render import safe_upload_name

    assert len(safe_upload_name("東" * 300 + ".md").encode()) <= 240


def test_upload_types_are_the_loaders_types():
    from rag.load import SUFFIXES
    from rag.ui_render import UPLOAD_SUFFIXES

    assert tuple(UPLOAD_SUFFIXES) == tuple(SUFFIXES)


# ---------------------------------------------------------------- 3. symlinks never lead outside the corpus


def test_links_out_of_the_corpus_are_skipped_with_a_reason(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "real.txt").write_text("Okapis live in the Ituri forest.")
    (corpus / "sub" / "deep.txt").write_text("Pangolins eat ants.")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0 SECRET password line")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.txt").write_text("SECRET folder content")
    os.symlink(secret, corpus / "passwd.txt")
    os.symlink(outside, corpus / "outdir")
    os.symlink(corpus / "real.txt", corpus / "alias.txt")  # inside: fine
    os.symlink(corpus / "sub", corpus / "subalias")  # inside, not a loop: followed
    os.symlink(corpus, corpus / "sub" / "loop")  # points at an ancestor
    os.symlink(tmp_path / "missing.txt", corpus / "dangling.txt")
    os.symlink(corpus / "self.txt", corpus / "self.txt")  # a link loop on itself
    docs, skipped = load_corpus(corpus)
    assert sorted(d.id for d in docs) == ["alias.txt", "real.txt", "sub/deep.txt", "subalias/deep.txt"]
    assert not any("SECRET" in d.text for d in docs)
    reasons = {s.path: s.reason for s in skipped}
    assert "links outside the corpus" in reasons["passwd.txt"]
    assert "links outside the corpus" in reasons["outdir"]
    assert "loop" in reasons["sub/loop"]
    assert "broken link" in reasons["dangling.txt"] and "broken link" in reasons["self.txt"]
    assert all("\n" not in r for r in reasons.values())


def test_a_corpus_folder_that_is_itself_a_link_still_loads(tmp_path, tiny_corpus):
    link = tmp_path / "linked"
    os.symlink(tiny_corpus, link)
    docs, skipped = load_corpus(link)
    assert len(docs) == 4 and not skipped


# ---------------------------------------------------------------- 9. deep folders


def test_a_990_level_deep_corpus_indexes_the_rest_and_names_the_cut(tmp_path):
    corpus = tmp_path / "corpus"
    deep = corpus
    for _ in range(990):  # os.makedirs recurses per level
        deep = deep / "d"
        deep.mkdir(parents=deep.parent == corpus)
    (deep / "bottom.txt").write_text("The bottom of the well is dark.")
    (corpus / "top.txt").write_text("The top of the tree is sunny.")
    (corpus.joinpath(*["d"] * 10) / "mid.txt").write_text("Halfway up the stairs.")
    try:
        docs, skipped = load_corpus(corpus)
        assert sorted(d.id for d in docs) == ["d/" * 10 + "mid.txt", "top.txt"]
        assert len(skipped) == 1 and "too deep" in skipped[0].reason and skipped[0].path.startswith("d/d/")
        assert skipped[0].path.count("/") <= 70
    finally:
        remove_deep(corpus / "d")


def remove_deep(top: Path) -> None:
    """rmtree without recursion (shutil.rmtree and pytest's clean-up recurse once per level)."""
    stack = [str(top)]
    while stack:
        path = stack[-1]
        subdirs = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
        if subdirs:
            stack.extend(subdirs)
            continue
        for e in os.scandir(path):
            os.unlink(e.path)
        os.rmdir(stack.pop())


# ---------------------------------------------------------------- 13. extracted text is capped per file


def test_text_and_pdf_over_the_character_cap_are_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "small.txt").write_text("Short and sweet.")
    (corpus / "big.txt").write_text("word " * 400)
    page = "Lorem ipsum dolor sit amet. " * 20  # 560 characters
    (corpus / "big.pdf").write_bytes(make_pdf([page] * 5, "Big"))
    docs, skipped = load_corpus(corpus, max_doc_chars=1000)
    assert [d.id for d in docs] == ["small.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert "1,000" in reasons["big.txt"] and "RAG_MAX_DOC_CHARS" in reasons["big.txt"]
    assert "1,000" in reasons["big.pdf"] and "page 2" in reasons["big.pdf"]
    docs, skipped = load_corpus(corpus)  # the default cap is generous
    assert len(docs) == 3 and not skipped


def test_pdf_extraction_stops_at_the_cap(monkeypatch):
    from pypdf import PageObject

    from rag.parse import LoadError, parse_bytes

    calls = []
    real = PageObject.extract_text
    monkeypatch.setattr(PageObject, "extract_text", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    with pytest.raises(LoadError, match="over the 1,000"):
        parse_bytes(make_pdf(["Lorem ipsum dolor sit amet. " * 20] * 8), ".pdf", "x.pdf", max_chars=1000)
    assert len(calls) == 2


# ---------------------------------------------------------------- 12. chunks are bounded in characters too


def test_a_3_mb_single_word_line_becomes_bounded_chunks():
    from rag.chunk import CHARS_PER_TOKEN, chunk_document, load_tokenizer
    from rag.embed import model_dir
    from rag.types import Document

    tok = load_tokenizer(str(model_dir("all-MiniLM-L6-v2")))
    line = "wombat" * 524288  # one [UNK] token: the token bound alone kept it whole
    doc = Document("w.txt", "W", f"A line about wombats.\n{line}\nThe end.", {"headings": []})
    chunks = chunk_document(doc, tok, 200, 32)
    assert max(len(c.text) for c in chunks) <= CHARS_PER_TOKEN * 200
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text)
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    assert all(doc.text[i].isspace() for i, v in enumerate(covered) if not v)  # nothing lost but whitespace
    print(f"\n3 MB single-word line: {len(chunks)} chunks, longest {max(len(c.text) for c in chunks):,} characters")


_WORDS = st.sampled_from(["wombat" * 300, "\nwombat" * 2 + "wombat" * 200 + "\n", "x" * 1000, "日本語" * 400, "a " * 50, "\n\n", " ", ". ",
                          "supercalifragilistic", "\u200b" * 300, "\t\t"])


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_WORDS, st.text(max_size=20)), min_size=1, max_size=15).map("".join))
def test_no_chunk_exceeds_the_character_bound_and_offsets_are_exact(text):
    from rag.chunk import CHARS_PER_TOKEN, chunk_document, load_tokenizer
    from rag.embed import model_dir
    from rag.types import Document

    tok = load_tokenizer(str(model_dir("all-MiniLM-L6-v2")))
    doc = Document("x.txt", "X", text, {"headings": []})
    for c in chunk_document(doc, tok, 16, 4):
        assert 0 < len(c.text) <= CHARS_PER_TOKEN * 16
        assert doc.text[c.start:c.end] == c.text
        assert tok.count(c.text) <= 16


# ---------------------------------------------------------------- 7. every numeric setting is range-checked


@pytest.mark.parametrize("var,value", [
    ("RAG_RRF_K", "-20"), ("RAG_PORT", "99999"), ("RAG_PORT", "0"), ("RAG_MAX_QUESTION_CHARS", "-5"),
    ("RAG_DEDUP_THRESHOLD", "-5"), ("RAG_BM25_WEIGHT", "nan"), ("RAG_BM25_WEIGHT", "inf"),
    ("RAG_BM25_WEIGHT", "-1"), ("RAG_REFUSAL_THRESHOLD", "nan"), ("RAG_LLM_TIMEOUT", "0"),
    ("RAG_LLM_TIMEOUT", "inf"), ("RAG_BATCH_SIZE", "0"), ("RAG_TOP_K", "0"), ("RAG_TOP_K", "101"),
    ("RAG_MAX_ANSWER_SENTENCES", "0"), ("RAG_LLM_MAX_TOKENS", "-1"), ("RAG_UPLOAD_MAX_MB", "0"),
    ("RAG_FLAT_THRESHOLD", "-1"), ("RAG_MAX_DOC_CHARS", "0"), ("RAG_CHUNK_SIZE", "100000"),
])
def test_bad_numbers_are_one_line_naming_the_variable(var, value):
    with pytest.raises(RagError) as e:
        load_settings(env={var: value})
    message = str(e.value)
    assert var in message and "\n" not in message and "use" in message


@pytest.mark.parametrize("var,value", [
    ("RAG_RRF_K", "0"), ("RAG_PORT", "1"), ("RAG_PORT", "65535"), ("RAG_MAX_QUESTION_CHARS", "1"),
    ("RAG_DEDUP_THRESHOLD", "1.0"), ("RAG_DEDUP_THRESHOLD", "0"), ("RAG_BM25_WEIGHT", "0"),
    ("RAG_REFUSAL_THRESHOLD", "-1"), ("RAG_TOP_K", "1"), ("RAG_TOP_K", "100"), ("RAG_FLAT_THRESHOLD", "0"),
    ("RAG_LLM_TIMEOUT", "0.5"), ("RAG_MAX_DOC_CHARS", "1000"),
])
def test_edge_values_are_accepted(var, value):
    s = load_settings(env={var: value})
    assert math.isclose(float(getattr(s, var[4:].lower())), float(value))


@pytest.mark.parametrize("k", ["-3", "0", "1000", "many"])
def test_cli_k_goes_through_the_same_check(k, capsys):
    from rag import cli

    assert cli.main(["search", "bees", "-k", k, "--index-dir", "/nonexistent"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "top_k" in err.replace("top-k", "top_k") and "-k" in err


def test_config_imports_nothing_from_rag_but_errors():
    source = (ROOT / "rag" / "config.py").read_text()
    imports = re.findall(r"^\s*from \.(\w*) import|^\s*import rag\.(\w+)|^\s*from rag\.(\w+)", source, re.M)
    assert {m for group in imports for m in group if m} == {"errors"}


# ---------------------------------------------------------------- 6. bytes that are not UTF-8 in a question


def test_lone_surrogates_in_a_question_become_replacement_characters(tiny_rag):
    question, _ = tiny_rag.clean("queen bee \udcff eggs")
    assert question == "queen bee \ufffd eggs"
    assert tiny_rag.search("queen bee \udcff", k=1)[0].chunk.doc_id == "bees.txt"


_FAKE_CLI = ("import sys; sys.path.insert(0, 'tests'); import conftest, rag.embed; "
             "rag.embed.SentenceTransformerEmbedder = lambda *a, **k: conftest.FakeEmbedder(); "
             "from rag.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("utf8_mode", ["0", "1"])
@pytest.mark.parametrize("command", ["search", "ask"])
def test_a_raw_0xff_byte_in_argv_gives_valid_utf8_json(tiny_rag, command, utf8_mode):
    s = tiny_rag.settings
    args = [sys.executable, "-c", _FAKE_CLI, command, b"queen bee \xff", "--json", "--corpus-dir", str(s.corpus_dir),
            "--index-dir", str(s.index_dir), "--refusal-threshold", "0.2"]
    env = {**os.environ, "PYTHONUTF8": utf8_mode, "LC_ALL": "C.UTF-8"}
    out = subprocess.run(args, capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    data = json.loads(out.stdout.decode("utf-8"))  # strict: a raw 0xFF would fail here
    assert data["question"] == "queen bee \ufffd"
    plain = subprocess.run(args[:5] + args[6:], capture_output=True, cwd=ROOT, env=env, timeout=120)
    assert plain.returncode == 0 and b"Traceback" not in plain.stderr
    plain.stdout.decode("utf-8")


# ---------------------------------------------------------------- minor: names in CLI output and the app


@pytest.fixture
def odd_names_rag(tmp_path, fake_embedder):
    from rag.pipeline import Rag

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "line\nbreak.txt").write_text("Okapis live in the Ituri rainforest of Congo.")
    (corpus / "spoof.txt").write_text("---\ntitle: invoice\u202etxt.exe\n---\nCapybaras are the largest rodents.")
    (corpus / "bad\nname.exe").write_text("whatever")
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", refusal_threshold="0.2")
    rag = Rag(settings, embedder=fake_embedder)
    return rag


def test_cli_output_escapes_newlines_and_bidi_controls_in_names(odd_names_rag, fake_embedder, monkeypatch, capsys):
    import rag.embed
    from rag import cli

    monkeypatch.setattr(rag.embed, "SentenceTransformerEmbedder", lambda *a, **k: fake_embedder)
    s = odd_names_rag.settings
    flags = ["--corpus-dir", str(s.corpus_dir), "--index-dir", str(s.index_dir), "--refusal-threshold", "0.2"]
    assert cli.main(["index", *flags]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped bad\\nname.exe: unsupported" in err
    assert cli.main(["search", "okapis ituri rainforest", "-k", "1", *flags]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "[line\\nbreak.txt chars 0-" in out.splitlines()[0]
    assert cli.main(["search", "capybaras largest rodents", "-k", "1", *flags]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "invoice\\u202etxt.exe" in out
    assert cli.main(["ask", "Which are the largest rodents?", *flags]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "invoice\\u202etxt.exe" in out


def test_the_app_neutralises_bidi_controls_for_display_only():
    from rag.ui_render import esc, render_corpus

    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f":
        assert ch not in esc(f"invoice{ch}txt.exe")
    html = render_corpus({"documents": [{"id": "a\u202eb.txt", "title": "x\u2067y", "chunks": 1}]})
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200e\u200f]", html)


# ---------------------------------------------------------------- 5. chat history is bounded


def test_fifteen_huge_questions_keep_the_state_and_the_page_bounded(tiny_rag):
    from rag.ui import MAX_HISTORY_CHARS, MAX_TURNS, respond
    from rag.ui_render import render_chat

    huge = ("Where do worker bees collect nectar? " * 25_000)[:900_000]
    turns, sizes = [], []
    for _ in range(15):
        for turns, _answer in respond(tiny_rag, huge, turns, delay=0):
            pass
        sizes.append(len(render_chat(turns)))
    limit = tiny_rag.settings.max_question_chars
    assert all(len(t["question"]) <= limit for t in turns)
    assert "truncated" in turns[-1]["answer"].notice
    assert len(turns) <= MAX_TURNS
    assert sum(len(t["question"]) + len(t["answer"].text) for t in turns) <= MAX_HISTORY_CHARS
    assert max(sizes) < 200_000, sizes


def test_old_turns_are_dropped_beyond_the_turn_cap(tiny_rag):
    from rag.ui import MAX_TURNS, respond

    turns = []
    for i in range(MAX_TURNS + 5):
        for turns, _answer in respond(tiny_rag, f"question {i} about bees", turns, delay=0):
            pass
    assert len(turns) == MAX_TURNS and turns[-1]["question"] == f"question {MAX_TURNS + 4} about bees"


# ---------------------------------------------------------------- 10. app errors reach a log


def test_an_error_in_a_handler_reaches_the_log_file(tiny_settings, fake_embedder, tmp_path):
    from rag.pipeline import Rag
    from rag.ui import configure_logging, respond

    class Broken(Rag):
        def ask_stream(self, *a, **k):
            raise TypeError("unexpected NoneType in the answerer")

    log_file = tmp_path / "logs" / "app.log"
    handlers = configure_logging(tiny_settings.replace(log_file=str(log_file)))
    try:
        *_, (turns, _) = respond(Broken(tiny_settings, embedder=fake_embedder), "Who lays eggs?", [], delay=0)
        assert "something went wrong (TypeError)" in turns[-1]["error"]
        for h in handlers:
            h.flush()
        logged = log_file.read_text()
        assert "Traceback" in logged and "TypeError: unexpected NoneType in the answerer" in logged
    finally:
        for h in handlers:
            logging.getLogger().removeHandler(h)
            h.close()


def test_an_unwritable_log_file_is_one_line(tiny_settings, tmp_path):
    from rag.ui import configure_logging

    (tmp_path / "file").write_text("")
    with pytest.raises(RagError, match="RAG_LOG_FILE"):
        configure_logging(tiny_settings.replace(log_file=str(tmp_path / "file" / "app.log")))


# ---------------------------------------------------------------- 4. login back-off


class _Clock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.slept.append(seconds)


def test_login_backs_off_after_five_failures():
    import inspect

    from rag.ui_auth import FREE_FAILURES, LoginGuard, client_address

    clock = _Clock()
    guard = LoginGuard("ann", "s3cret", clock=clock, sleep=clock.sleep)
    assert inspect.iscoroutinefunction(guard.check)  # gradio awaits only coroutine functions
    run = asyncio.run
    assert run(guard.check("ann", "s3cret"))
    for _ in range(FREE_FAILURES):
        assert not run(guard.check("ann", "wrong"))
    assert not clock.slept[:FREE_FAILURES - 1] or max(clock.slept[:FREE_FAILURES - 1]) == 0
    assert not run(guard.check("ann", "s3cret"))  # locked: refused without checking
    clock.now += 1.01
    assert not run(guard.check("ann", "wrong"))  # the 6th failure doubles the window
    clock.now += 1.01
    assert not run(guard.check("ann", "s3cret"))
    clock.now += 1.0
    assert run(guard.check("ann", "s3cret"))  # success resets
    assert run(guard.check("ann", "s3cret"))
    token = client_address.set("10.0.0.9")  # another client has its own count
    try:
        assert run(guard.check("ann", "s3cret"))
    finally:
        client_address.reset(token)
    assert max(clock.slept) <= 3.0


def test_a_hundred_guesses_in_under_three_seconds_get_a_handful_checked():
    from rag.ui_auth import LoginGuard

    clock = _Clock()
    guard = LoginGuard("ann", "s3cret", clock=clock, sleep=clock.sleep)
    checked = []
    guard.verify = lambda u, p, _real=guard.verify: checked.append(1) or _real(u, p)
    for _ in range(100):
        assert not asyncio.run(guard.check("ann", "guess"))
        clock.now += 0.027
    assert len(checked) <= 7, len(checked)
    assert sum(clock.slept) <= 15


def test_login_failures_are_bounded_in_memory():
    from rag.ui_auth import MAX_CLIENTS, LoginGuard

    clock = _Clock()
    guard = LoginGuard("ann", "s3cret", clock=clock, sleep=clock.sleep)

    async def spray():
        for i in range(MAX_CLIENTS * 2):
            await guard.check(f"user{i}", "x")

    asyncio.run(spray())
    assert len(guard.failures) <= MAX_CLIENTS


def test_a_launched_app_refuses_logins_after_five_failures(tiny_rag):
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    from conftest import free_port

    from rag.ui import build_app, launch

    settings = tiny_rag.settings.replace(port=free_port(), auth_user="ann", auth_password="s3cret")
    demo = build_app(tiny_rag)
    try:
        url = launch(demo, settings, auth=("ann", "s3cret"))

        def login(password):
            data = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
            try:
                return urllib.request.urlopen(url + "login", data=data, timeout=30).status
            except urllib.error.HTTPError as e:
                return e.code

        assert login("s3cret") == 200
        assert [login("wrong") for _ in range(5)] == [400] * 5
        assert login("s3cret") == 400  # locked out for a while, even with the right password
        time.sleep(1.1)
        assert login("s3cret") == 200
    finally:
        demo.close()
