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


# ---- every index file is checksummed: a same-size edit of any of them is caught


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0x04  # same size, one bit
    path.write_bytes(bytes(data))


def _verify(settings, capsys) -> tuple[int, str, str]:
    from rag.cli import main

    code = main(["verify", "--corpus-dir", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rag_verify_passes_a_fresh_index(tiny_rag, tiny_settings, capsys):
    code, out, err = _verify(tiny_settings, capsys)
    assert code == 0 and out.startswith("index OK:") and "files" in out and err == ""


def test_a_same_size_edit_of_any_index_file_is_caught(tiny_rag, tiny_settings, capsys):
    import shutil

    from rag.store import open_index

    version = Path(tiny_settings.index_dir) / "current"
    files = sorted(p.relative_to(version.resolve()).as_posix() for p in version.resolve().rglob("*")
                   if p.is_file() and p.name not in ("manifest.json", ".rag-version"))
    assert {"vectors.faiss", "sentences.npy", "sentence_scales.npy", "bm25/indices.csc.index.npy",
            "bm25/indptr.csc.index.npy", "bm25/data.csc.index.npy", "bm25/vocab.index.json"} <= set(files)
    for name in files:
        path = version / name
        original = path.read_bytes()
        _flip(path)
        try:
            code, out, err = _verify(tiny_settings, capsys)
            assert code == 1 and name in err and err.count("\n") >= 1, (name, err)
            assert all(line.startswith("problem: ") for line in err.splitlines())
            with pytest.raises(RagError) as e:  # serving checks small files whole on every open
                open_index(tiny_settings)
            assert name in str(e.value) and "\n" not in str(e.value)
        finally:
            path.write_bytes(original)
    assert _verify(tiny_settings, capsys)[0] == 0
    del shutil


def test_an_incremental_build_never_carries_damaged_vectors_forward(tiny_settings, fake_embedder):
    import numpy as np

    from rag.manifest import probe_rows

    for i in range(12):  # more chunks than the 8 rows the open-time fingerprint samples
        (Path(tiny_settings.corpus_dir) / f"animal{i}.txt").write_text(f"Animal {i} lives in burrow {i} by the river.")
    _build(tiny_settings, fake_embedder)
    version = (Path(tiny_settings.index_dir) / "current").resolve()
    import faiss

    from rag.vectorstore import stored_vectors

    vectors = stored_vectors(version)
    outside = [i for i in range(len(vectors)) if i not in probe_rows(len(vectors))]
    assert outside, "the tiny index should have rows the fingerprint does not sample"
    vectors[outside] *= -1  # negated rows, same size, untouched probe rows
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    faiss.write_index(index, str(version / "vectors.faiss"))
    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    with pytest.raises(RagError, match=r"vectors.faiss was changed after the build.*rag index --rebuild"):
        _build(tiny_settings, fake_embedder)
    assert (Path(tiny_settings.index_dir) / "current").resolve() == version  # nothing new was published


# ---- a full disk or an unwritable index dir: one line, nothing lost, no temp dir left


def _tmpfs(path: Path, size: str) -> None:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.decode().strip()}); the injected-error tests cover this")


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_mid_build_is_one_line_and_frees_the_temp_dir(tmp_path, tiny_corpus, fake_embedder):
    import os

    from rag.config import load_settings
    from rag.pipeline import Rag

    mount = tmp_path / "small"
    _tmpfs(mount, "2m")
    try:
        s = load_settings(env={}, corpus_dir=tiny_corpus, index_dir=mount / "index", refusal_threshold="0.2")
        _build(s, fake_embedder)
        before = (mount / "index" / "current").resolve()
        filler = mount / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk, then leave ~40 KB: less than a version needs
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        os.truncate(filler, filler.stat().st_size - 40_000)
        (tiny_corpus / "big.txt").write_text("Owls and otters. " * 20_000)
        with pytest.raises(RagError) as e:
            _build(s, fake_embedder)
        msg = str(e.value)
        assert "no space left on" in msg and str(mount) in msg and "previous index is still in use" in msg
        assert "\n" not in msg
        assert not [p for p in (mount / "index").iterdir() if p.name.startswith(".tmp-")]  # freed at once
        assert (mount / "index" / "current").resolve() == before
        assert Rag(s, embedder=fake_embedder).search("queen bee eggs", k=1)[0].chunk.doc_id == "bees.txt"
    finally:
        _umount(mount)


def test_a_read_only_index_dir_is_one_line_and_keeps_serving(tmp_path, tiny_corpus, fake_embedder):
    import subprocess

    from rag.config import load_settings
    from rag.pipeline import Rag

    mount = tmp_path / "ro"
    _tmpfs(mount, "8m")
    try:
        s = load_settings(env={}, corpus_dir=tiny_corpus, index_dir=mount / "index", refusal_threshold="0.2")
        _build(s, fake_embedder)
        assert subprocess.run(["mount", "-o", "remount,ro", str(mount)]).returncode == 0
        (tiny_corpus / "owls.txt").write_text("Barn owls have heart-shaped faces.")
        with pytest.raises(RagError) as e:
            _build(s, fake_embedder)
        assert "cannot write the index in" in str(e.value) and "\n" not in str(e.value)
        assert Rag(s, embedder=fake_embedder).search("queen bee eggs", k=1)[0].chunk.doc_id == "bees.txt"
    finally:
        _umount(mount)


@pytest.mark.parametrize("err", [28, 13])  # ENOSPC, EACCES
def test_write_errors_anywhere_in_the_build_are_one_line(tiny_rag, tiny_settings, fake_embedder, monkeypatch, err):
    import os

    import numpy as np

    def fail(*a, **k):
        raise OSError(err, os.strerror(err), "vectors.npy")

    monkeypatch.setattr(np, "save", fail)
    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    with pytest.raises(RagError) as e:
        _build(tiny_settings, fake_embedder)
    assert ("no space left on" if err == 28 else "cannot write the index in") in str(e.value)
    assert not [p for p in Path(tiny_settings.index_dir).iterdir() if p.name.startswith(".tmp-")]


# ---- a damaged manifest and the messages about it


def _manifest(settings) -> Path:
    return (Path(settings.index_dir) / "current").resolve() / "manifest.json"


def test_a_manifest_of_deeply_nested_brackets_is_one_line(tiny_rag, tiny_settings):
    from rag.store import open_index

    _manifest(tiny_settings).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RagError) as e:
        open_index(tiny_settings)
    assert "manifest is missing or unreadable (RecursionError" in str(e.value) and "\n" not in str(e.value)


def test_a_value_of_the_wrong_type_says_so(tiny_rag, tiny_settings):
    import json

    from rag.store import open_index

    m = json.loads(_manifest(tiny_settings).read_text())
    _manifest(tiny_settings).write_text(json.dumps(dict(m, format_version="1")))
    with pytest.raises(RagError, match=r"index format '1' \(str, not int\), this version reads 1"):
        open_index(tiny_settings)


def test_no_index_names_the_absolute_path(tmp_path, monkeypatch):
    from rag.config import load_settings
    from rag.store import open_index

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RagError) as e:
        open_index(load_settings(env={}))
    assert f"no index in {tmp_path}/index/" in str(e.value)
