"""Collections: named corpora with their own index; several searched at once with their rankings fused."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import collections as coll
from rag.errors import RagError
from rag.pipeline import Rag

ROOT = Path(__file__).parents[1]


@pytest.fixture
def two(tmp_path, tiny_settings, fake_embedder):
    """default (the tiny corpus) and 'geo' (volcanoes), each indexed on its own."""
    settings = tiny_settings.replace(collections_dir=tmp_path / "collections")
    Rag(settings, embedder=fake_embedder).build(log=lambda *_: None)
    geo = coll.create(settings, "geo")
    (geo.corpus_dir / "volcano.md").write_text(
        "---\nauthor: Vera Vulcan\ndate: 2020-03-04\n---\n# Volcanoes\n\nVolcanoes erupt molten lava and ash. "
        "Honey bees avoid volcanoes because the ash covers flowers.", encoding="utf-8")
    Rag(coll.settings_for(settings, "geo"), embedder=fake_embedder).build(log=lambda *_: None)
    return settings


def test_default_is_corpus_and_index_and_names_are_checked(tmp_path, tiny_settings):
    s = tiny_settings.replace(collections_dir=tmp_path / "collections")
    assert coll.settings_for(s, "default").corpus_dir == s.corpus_dir
    assert [c.name for c in coll.every(s)] == ["default"]
    for bad in ("", "../up", "a/b", "Caps", "-x", "x" * 49, "a:b"):
        with pytest.raises(RagError, match="is not valid"):
            coll.create(s, bad)
    with pytest.raises(coll.UnknownCollection, match="unknown collection 'nope'; known: default"):
        coll.settings_for(s, "nope")
    with pytest.raises(RagError, match="unknown collection"):
        Rag(s.replace(collection="nope"))
    with pytest.raises(RagError, match="already exists"):
        coll.create(s, "default")
    c = coll.create(s, "team-a_1")
    assert c.corpus_dir == tmp_path / "collections" / "team-a_1" / "corpus" and c.corpus_dir.is_dir()
    assert [x.name for x in coll.every(s)] == ["default", "team-a_1"]
    assert coll.settings_for(s, "team-a_1").index_dir == tmp_path / "collections" / "team-a_1" / "index"


def test_collections_toml_names_folders_of_your_own(tmp_path, tiny_settings):
    s = tiny_settings.replace(collections_dir=tmp_path / "collections")
    (tmp_path / "collections").mkdir()
    (tmp_path / "collections" / "collections.toml").write_text(
        f'[papers]\ncorpus = "{tmp_path / "mine"}"\nindex = "{tmp_path / "mine-index"}"\n')
    c = coll.find(s, "papers")
    assert (c.corpus_dir, c.index_dir, c.configured) == (tmp_path / "mine", tmp_path / "mine-index", True)
    with pytest.raises(RagError, match="collections.toml"):
        coll.delete(s, "papers")
    (tmp_path / "collections" / "collections.toml").write_text("[papers\n")
    with pytest.raises(RagError, match="unreadable"):
        coll.every(s)


def test_search_over_two_collections_cites_both(two, fake_embedder):
    both = Rag(two.replace(collection="default,geo"), embedder=fake_embedder)
    hits = both.search("honey bees flowers volcanoes ash", k=4)
    assert {h.collection for h in hits} == {"default", "geo"}
    by = {h.collection: h for h in reversed(hits)}  # the best hit of each
    assert by["geo"].chunk.doc_id == "volcano.md" and by["default"].chunk.doc_id == "bees.txt"
    geo_text = (two.collections_dir / "geo" / "corpus" / "volcano.md").read_text().split("---\n", 2)[2]
    assert geo_text[by["geo"].chunk.start:by["geo"].chunk.end] == by["geo"].chunk.text
    answer = both.ask("Why do honey bees avoid volcanoes, and who makes honey from nectar?")
    assert {c.collection for c in answer.citations} == {"default", "geo"}, answer.text
    for c in answer.citations:  # plain doc ids again, quotes exact in their own collection's documents
        one = Rag(coll.settings_for(two, c.collection), embedder=fake_embedder)
        assert one.index.documents[c.doc_id].text[c.start:c.end] == c.quote
    d = answer.to_dict()
    assert {c["collection"] for c in d["citations"]} == {"default", "geo"}
    assert all("collection" in p and ":" not in p["doc_id"] for p in d["passages"])


def test_one_collection_names_itself_and_filters_work_across_collections(two, fake_embedder):
    geo = Rag(two.replace(collection="geo"), embedder=fake_embedder)
    assert {h.collection for h in geo.search("bees", k=3)} == {"geo"}
    assert {h.collection for h in Rag(two, embedder=fake_embedder).search("bees", k=3)} == {"default"}
    both = Rag(two.replace(collection="default,geo"), embedder=fake_embedder)
    hits = both.search("honey bees", k=3, filters="author=Vera*")
    assert [(h.collection, h.chunk.doc_id) for h in hits] == [("geo", "volcano.md")]
    hits = both.search("honey bees", k=3, filters="path=bees.txt")
    assert [(h.collection, h.chunk.doc_id) for h in hits] == [("default", "bees.txt")]
    with pytest.raises(RagError, match="index one collection at a time"):
        both.build()


def test_collections_built_differently_are_refused(two, fake_embedder):
    other = coll.create(two, "wide")
    (other.corpus_dir / "a.txt").write_text("Wide chunks of text about bees.")
    Rag(coll.settings_for(two, "wide").replace(chunk_size=64), embedder=fake_embedder).build(log=lambda *_: None)
    with pytest.raises(RagError) as e:
        Rag(two.replace(collection="default,wide"), embedder=fake_embedder).search("bees")
    msg = str(e.value)
    assert "'default' and 'wide'" in msg and "chunk_size 200 vs 64" in msg and "\n" not in msg


def test_delete_removes_only_that_collections_files(two, tmp_path, fake_embedder):
    home = two.collections_dir / "geo"
    (home / "gold.jsonl").write_text("{}\n")
    (home / "my-notes.txt").write_text("kept: not made by rag")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    (home / "corpus" / "link").symlink_to(outside)
    removed = coll.delete(two, "geo")
    assert home / "corpus" in removed and home / "index" in removed and home / "gold.jsonl" in removed
    assert (home / "my-notes.txt").read_text() == "kept: not made by rag" and home.is_dir()
    assert (outside / "keep.txt").read_text() == "precious"  # a link inside the corpus: only the link went
    assert (two.corpus_dir / "bees.txt").exists() and (Path(two.index_dir) / "current").exists()
    assert [c.name for c in coll.every(two)] == ["default"]
    with pytest.raises(RagError, match="unknown collection 'geo'"):
        Rag(two.replace(collection="default,geo"), embedder=fake_embedder).search("bees")
    with pytest.raises(RagError, match="cannot be deleted"):
        coll.delete(two, "default")


def _cli(args, cwd, stdin=""):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, input=stdin, timeout=120)


def test_cli_create_list_delete_with_confirmation(tmp_path):
    out = _cli(["collections", "create", "notes"], tmp_path)
    assert out.returncode == 0 and "rag index --collection notes" in out.stdout
    assert (tmp_path / "collections" / "notes" / "corpus").is_dir()
    out = _cli(["collections", "create", "Bad Name"], tmp_path)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "is not valid" in out.stderr
    out = _cli(["collections", "list", "--json"], tmp_path)
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == ["default", "notes"] and rows[1]["chunks"] is None
    out = _cli(["collections", "delete", "notes"], tmp_path, stdin="n\n")
    assert out.returncode == 1 and "not deleted" in out.stderr and (tmp_path / "collections" / "notes").is_dir()
    out = _cli(["collections", "delete", "notes"], tmp_path, stdin="y\n")
    assert out.returncode == 0 and not (tmp_path / "collections" / "notes").exists()
    out = _cli(["search", "x", "--collection", "gone"], tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("error: unknown collection 'gone'")
    out = _cli(["eval", "--collection", "default", "--collection", "gone"], tmp_path)
    assert out.returncode == 1 and "one collection at a time" in out.stderr


def test_each_collection_has_its_own_eval_gate(two, fake_embedder, capsys):
    from types import SimpleNamespace

    from rag.cli_collections import gold_of
    from rag.evaluate import run_cli

    geo = two.replace(collection="geo", mode="dense")
    gold = gold_of(geo, "eval/gold.jsonl")
    assert gold == str(two.collections_dir / "geo" / "gold.jsonl")
    assert gold_of(two, "eval/gold.jsonl") == "eval/gold.jsonl"
    Path(gold).write_text(json.dumps({
        "id": "g1", "question": "What do volcanoes erupt?", "answer": "molten lava and ash", "doc_id": "volcano.md",
        "quotes": ["Volcanoes erupt molten lava and ash."], "answerable": True, "kind": "factoid"}) + "\n")
    resolved = coll.settings_for(geo, "geo")

    def run(**flags):
        args = SimpleNamespace(**dict(dict(gold=gold, check=False, update_baseline=False), **flags))
        return run_cli(args, resolved, embedder=fake_embedder)

    assert run(update_baseline=True) == 0
    base = json.loads((two.collections_dir / "geo" / "baseline.json").read_text())
    assert base["modes"]["dense"]["questions"]["g1"]["top5"][0][0] == "volcano.md"
    assert run(check=True) == 0 and "gate: PASS" in capsys.readouterr().out
    assert (two.collections_dir / "geo" / "reports").is_dir() and not (Path("eval") / "reports" / "geo").exists()
    with pytest.raises(RagError, match="one collection at a time"):
        gold_of(two.replace(collection="default,geo"), "eval/gold.jsonl")


@pytest.mark.real_model
def test_cli_two_collections_end_to_end(tmp_path):
    """The bundled article (default) and a second collection, indexed, searched and asked together."""
    import shutil

    (tmp_path / "corpus").mkdir()
    shutil.copy(ROOT / "corpus" / "made-in-china-2025-explained.txt", tmp_path / "corpus")
    assert _cli(["collections", "create", "notes"], tmp_path).returncode == 0
    (tmp_path / "collections" / "notes" / "corpus" / "memo.md").write_text(
        "---\nauthor: Internal Desk\ndate: 2024-05-02\n---\n# Memo\n\nThe robotics memo says Made in China 2025 "
        "targets industrial robots and numerical control machine tools.\n", encoding="utf-8")
    out = _cli(["index", "--collection", "default", "--collection", "notes"], tmp_path)
    assert out.returncode == 0 and "collection notes:" in out.stdout and out.stdout.count("1 added") == 2, out.stderr
    both = ["--collection", "default", "--collection", "notes"]
    out = _cli(["search", "Made in China 2025 robots", "--json", "-k", "5", *both], tmp_path)
    hits = json.loads(out.stdout)["hits"]
    assert {h["collection"] for h in hits} == {"default", "notes"}
    assert {h["doc_id"] for h in hits if h["collection"] == "notes"} == {"memo.md"}
    out = _cli(["search", "Made in China 2025 robots", "-k", "3", "--filter", "author=Internal*", *both], tmp_path)
    assert out.returncode == 0 and "[notes:memo.md chars" in out.stdout and "made-in-china" not in out.stdout
    out = _cli(["ask", "What does the robotics memo say Made in China 2025 targets?", "--json", *both], tmp_path)
    answer = json.loads(out.stdout)
    assert any(c["collection"] == "notes" and c["doc_id"] == "memo.md" for c in answer["citations"]), answer
    out = _cli(["collections", "delete", "notes", "--yes"], tmp_path)
    assert out.returncode == 0 and not (tmp_path / "collections" / "notes").exists()
    assert (tmp_path / "index" / "current").exists()
    out = _cli(["search", "robots", *both], tmp_path)
    assert out.returncode == 1 and "unknown collection 'notes'" in out.stderr


def test_python_api_takes_collections_and_filters(two, fake_embedder, monkeypatch):
    import rag

    for key, value in (("CORPUS_DIR", two.corpus_dir), ("INDEX_DIR", two.index_dir),
                       ("COLLECTIONS_DIR", two.collections_dir), ("REFUSAL_THRESHOLD", "0.2")):
        monkeypatch.setenv(f"RAG_{key}", str(value))
    monkeypatch.setattr(rag, "_by_collections", {})
    rag.default(["default", "geo"])._embedder = fake_embedder  # the process-wide pipeline for these two
    hits = rag.search("honey bees volcanoes", k=3, collections=["default", "geo"], filters={"author": "Vera*"})
    assert [(h.collection, h.chunk.doc_id) for h in hits] == [("geo", "volcano.md")]
    answer = rag.ask("Why do honey bees avoid volcanoes?", collections="default,geo", filters=["date>=2020"])
    assert answer.citations and {c.collection for c in answer.citations} <= {"default", "geo"}
    assert rag.default("default,geo") is rag.default(["default", "geo"])


def test_the_app_chooses_collections_per_chat(two, fake_embedder, tmp_path):
    """With two collections the app offers both: a chat may search both (citations name theirs, source
    cards show their context) or one; a citation opens in its own collection's document."""
    from conftest import free_port
    from gradio_client import Client, handle_file

    from rag.ui import build_app, launch, open_document
    from rag.ui_collections import Chooser

    settings = two.replace(port=str(free_port()), data_dir=tmp_path / "data")
    rag = Rag(settings, embedder=fake_embedder)
    chooser = Chooser(rag)
    assert chooser.offered and chooser.names == ["default", "geo"] and chooser.pick(None) is rag
    assert chooser.pick(["geo", "default"]) is chooser.pick(["default", "geo"]) is not rag
    clicked = {"doc": "volcano.md", "start": 0, "end": 9, "collection": "geo"}
    assert "Volcanoes erupt" in open_document(chooser.owner(clicked), "volcano.md", 0, 9)
    assert chooser.owner(dict(clicked, collection="")) is rag  # default: no volcano.md there
    assert not Chooser(Rag(settings.replace(collection="geo"), embedder=fake_embedder)).offered
    demo = build_app(rag, reports_dir=tmp_path / "reports", delay=0)
    try:
        client = Client(launch(demo, settings), verbose=False)
        q = "Why do honey bees avoid volcanoes, and who makes honey from nectar?"
        _, sources, answer, _ = client.predict(q, 5, "hybrid", "extractive", ["default", "geo"], api_name="/ask")
        assert {c["collection"] for c in answer["citations"]} == {"default", "geo"}
        assert 'data-collection="geo"' in sources and "Volcanoes erupt" in sources  # the card shows its context
        _, _, answer, _ = client.predict(q, 5, "hybrid", "extractive", ["default"], api_name="/ask")
        assert {c["collection"] for c in answer["citations"]} == {"default"}
        _, _, answer, _ = client.predict("What do volcanoes erupt?", 5, "hybrid", "extractive", ["geo"],
                                         api_name="/ask")
        assert answer["citations"] and {c["doc_id"] for c in answer["citations"]} == {"volcano.md"}
        _, _, answer, _ = client.predict(q, 5, "hybrid", "extractive", ["default", "geo"], "author=Vera Vulcan",
                                         api_name="/ask")  # the Filter box
        assert answer["citations"] and {c["collection"] for c in answer["citations"]} == {"geo"}
        upload = tmp_path / "in" / "Etna.md"
        upload.parent.mkdir()
        upload.write_text("# Etna\n\nMount Etna is an active stratovolcano on Sicily.", encoding="utf-8")
        status, table = client.predict(handle_file(str(upload)), "geo", api_name="/upload")  # the Collection dropdown
        assert "Added Etna.md" in status and "volcano.md" in table and "tea.txt" not in table
        assert (coll.find(settings, "geo").corpus_dir / "Etna.md").is_file()
        assert not (settings.corpus_dir / "Etna.md").exists()
    finally:
        demo.close()
