"""The index directory is the only place a build writes or deletes, and only what it made itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import RagError


def _build(settings, embedder):
    from rag.pipeline import Rag

    return Rag(settings, embedder=embedder).build(log=lambda *_: None)


def test_folders_the_index_did_not_make_survive_builds(tiny_settings, fake_embedder):
    index_dir = Path(tiny_settings.index_dir)
    keep = {"v-important/notes.txt": "my notes", ".tmp-keep/draft.md": "a draft", "v-/x.txt": "x",
            ".tmp-/y.txt": "y", "other/z.txt": "z"}
    for rel, text in keep.items():
        (index_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (index_dir / rel).write_text(text)
    corpus = Path(tiny_settings.corpus_dir)
    for i in range(3):  # each build makes a new version and sweeps the previous one
        (corpus / f"extra{i}.txt").write_text(f"Extra document number {i} about owls and otters.")
        _build(tiny_settings, fake_embedder)
    for rel, text in keep.items():
        assert (index_dir / rel).read_text() == text, rel
    ours = [p.name for p in index_dir.iterdir() if p.name.startswith("v-") and (p / "manifest.json").exists()]
    assert len(ours) == 1, ours  # the versions it made are still swept


def test_a_legacy_unmarked_current_version_is_adopted_and_swept_later(tmp_path, fake_embedder):
    import shutil

    from rag.config import load_settings

    fixture = Path(__file__).parent / "fixtures" / "legacy-index"
    shutil.copytree(fixture, tmp_path, dirs_exist_ok=True, symlinks=True)
    s = load_settings(env={}, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    legacy = {p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("v-")}
    (tmp_path / "corpus" / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    _build(s, fake_embedder)
    (tmp_path / "corpus" / "otters.txt").write_text("Sea otters hold hands while sleeping.")
    _build(s, fake_embedder)
    left = {p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("v-")}
    assert not legacy & left and len(left) == 1


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_an_index_dir_overlapping_the_corpus_is_refused(tmp_path, tiny_corpus, fake_embedder, where):
    from rag.config import load_settings

    index_dir = {"same": tiny_corpus, "inside": tiny_corpus / "idx", "contains": tmp_path}[where]
    s = load_settings(env={}, corpus_dir=tiny_corpus, index_dir=index_dir)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    with pytest.raises(RagError) as e:
        _build(s, fake_embedder)
    assert "\n" not in str(e.value) and "RAG_INDEX_DIR" in str(e.value)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before


def test_rag_index_with_index_dir_equal_to_corpus_dir_is_one_line(tmp_path, tiny_corpus):
    import subprocess
    import sys

    root = Path(__file__).parents[1]
    env = {"RAG_CORPUS_DIR": str(tiny_corpus), "RAG_INDEX_DIR": str(tiny_corpus), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "rag.cli", "index"], capture_output=True, text=True, cwd=root,
                         env=env, timeout=120)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "corpus dir" in out.stderr, out.stderr
    assert sorted(p.name for p in tiny_corpus.iterdir()) == sorted(["bees.txt", "rome.html", "solar.md", "tea.txt"])
