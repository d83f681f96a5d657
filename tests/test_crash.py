"""Crash safety: `rag index` killed with SIGKILL at any moment leaves the previous index
loadable and answering; the next run completes and leaves no temporary files behind."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TESTS = Path(__file__).parent
INDEX_CMD = [sys.executable, "-m", "rag.cli", "index"]

WORDS = ("harbour lantern copper meadow glacier orchard falcon timber quarry canal ferry spindle granary "
         "beacon marsh willow furnace anchor saddle thistle cobble pewter lichen basalt heron tannery kiln "
         "bellows loom barley cider flint estuary dune ridge hamlet mill wagon forge chapel market tide reef "
         "shoal kelp gull otter badger lynx ember").split()
TOPICS = ("aurora bramble cinder dahlia eider fennel garnet hazel indigo juniper kestrel lupin marigold "
          "nutmeg oriole primrose quince russet saffron tamarind umber verbena walnut yarrow zinnia amber "
          "bronze coral dove ebony fawn ginger heather ivory jade khaki lilac mauve olive pearl").split()
N_DOCS = 40
CHURN = 8  # documents 0..7 are rewritten, four per round, so every build has a bounded amount to embed


def write_doc(corpus: Path, i: int, revision: int) -> None:
    """Paragraphs of made-up prose about one topic word that no other document uses. The churned
    documents are long: four of them make more chunks than one embedding call (64 texts), so a
    build spends a while embedding after its progress bar first moves."""
    rnd = random.Random(i * 1000 + revision)
    topic = TOPICS[i]
    paragraphs = []
    for _ in range(40 if i < CHURN else 3):
        sentences = []
        for _ in range(4):
            words = [rnd.choice(WORDS) for _ in range(rnd.randint(10, 16))]
            words.insert(rnd.randint(0, 3), topic)
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    (corpus / f"doc-{i:02d}.txt").write_text(f"Notes on {topic}, revision {revision}\n\n" + "\n\n".join(paragraphs) + "\n")


def entries(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir())


def leftovers(index_dir: Path) -> list[str]:
    """Anything besides the live version, the `current` link, the lock and the id file."""
    live = os.readlink(index_dir / "current")
    return [n for n in entries(index_dir) if n not in (live, "current", ".lock", ".rag-index")]


def check_serves(settings, embedder, expect: dict[str, str]) -> str:
    """The index loads, holds exactly the expected document versions, and answers."""
    from rag.pipeline import Rag
    from rag.store import open_index

    index = open_index(settings)
    assert {d["id"]: d["hash"] for d in index.manifest["documents"]} == expect
    rag = Rag(settings, embedder=embedder)
    for i in (5, 20):  # a document that is rewritten between builds and one that never changes
        hits = rag.search(f"Notes on {TOPICS[i]}", k=3)
        top = hits[0].chunk
        assert top.doc_id == f"doc-{i:02d}.txt", (TOPICS[i], [h.chunk.doc_id for h in hits])
        assert rag.index.documents[top.doc_id].text[top.start:top.end] == top.text
    return index.path.name


PROGRESS = re.compile(r"\| *[1-9]\d*/\d+ ")  # a tqdm bar that has finished a batch: the model is loaded


def run_index(env, log: Path, index_dir: Path, kill=None, timeout: float = 600) -> dict:
    """Run `rag index`, watching its progress bar and index_dir for the stages: "embedding" (a
    batch is done, so the model is loaded), "writing" (the temporary directory appeared) and
    "swapped" (`current` moved). `kill(stage, now)` may return the moment (seconds since the
    start) to SIGKILL it; a kill still pending at the swap happens there."""
    link = index_dir / "current"
    before = os.readlink(link)
    with open(log, "wb") as out:
        proc = subprocess.Popen(INDEX_CMD, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    started = time.perf_counter()
    seen: dict[str, float] = {}
    kill_at = None
    try:
        while proc.poll() is None:
            now = time.perf_counter() - started
            assert now < timeout, f"`rag index` still running after {timeout}s"
            if "embedding" not in seen and PROGRESS.search(log.read_bytes().decode("utf-8", "replace")):
                seen["embedding"] = now
                kill_at = kill("embedding", now) if kill else None
            if "writing" not in seen and any(n.startswith(".tmp-") for n in entries(index_dir)):
                seen["writing"] = now
                kill_at = (kill("writing", now) if kill else None) or kill_at
            if "swapped" not in seen and os.readlink(link) != before:
                seen["swapped"] = now
                kill_at = now if kill_at is not None else None
            if kill_at is not None and now >= kill_at:
                state = entries(index_dir)  # where the build is at the moment of the kill
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                seen.update(killed=now, state=state)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seen.update(returncode=proc.returncode, seconds=time.perf_counter() - started)
    return seen


def moment(run: dict, before: str, after_link: str) -> str:
    """Which stage of the build a kill interrupted, from the index directory at that moment."""
    names = run["state"]
    if after_link != before:  # (an old version being swept is renamed .tmp-<id>-old-v-*: not a write)
        return "after swap"
    if any(n.startswith(".tmp-") for n in names):
        return "writing"
    if any(n.startswith("v-") and n != before for n in names):
        return "renamed, before swap"
    return "embedding"


@pytest.mark.real_model
def test_sigkill_at_random_moments_never_costs_the_index(tmp_path):
    from rag.config import load_settings
    from rag.load import load_corpus
    from realmodel import real_embedder

    rnd = random.Random(int(os.environ.get("RAG_CRASH_SEED", "2025")))
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    for i in range(N_DOCS):
        write_doc(corpus, i, 0)
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=index_dir)
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index_dir)}
    embedder = real_embedder()

    def corpus_hashes():
        return {d.id: d.hash for d in load_corpus(corpus)[0]}

    def change(revision):
        for j in range(4):
            write_doc(corpus, (revision * 4 + j) % CHURN, revision)

    # a first build (in this process: the model is loaded here anyway), then one watched
    # `rag index` to time the stages on this machine
    from rag.pipeline import Rag

    Rag(settings, embedder=embedder).build(log=lambda *_: None)
    change(1)
    calib = run_index(env, tmp_path / "build-1.log", index_dir)
    assert calib["returncode"] == 0 and {"embedding", "writing", "swapped"} <= set(calib)
    expect = corpus_hashes()
    live = check_serves(settings, embedder, expect)
    embed_window = max(0.2, calib["writing"] - calib["embedding"])
    write_window = max(0.02, calib["swapped"] - calib["writing"])

    kills, completed, revision = [], 0, 1
    while len(kills) < 20:
        assert revision < 45, f"only {len(kills)} kills in {revision - 1} rounds"
        revision += 1
        change(revision)
        target = "writing" if revision % 2 else "embedding"  # alternate: both stages get hit
        window = write_window if target == "writing" else embed_window

        def kill(event, now, target=target, window=window):
            return now + rnd.uniform(0, window) if event == target else None

        run = run_index(env, tmp_path / f"build-{revision}.log", index_dir, kill)
        if "killed" not in run:  # it finished before its moment came
            assert run["returncode"] == 0, (tmp_path / f"build-{revision}.log").read_text()[-2000:]
            completed += 1
            expect = corpus_hashes()
            live = check_serves(settings, embedder, expect)
            continue
        assert run["returncode"] == -signal.SIGKILL
        link = os.readlink(index_dir / "current")
        hit = moment(run, live, link)
        if hit == "after swap":  # the new version was complete before the kill: it is the live one now
            expect = corpus_hashes()
        assert check_serves(settings, embedder, expect) == link  # the previous (or complete new) index answers
        live = link
        kills.append((revision, target, round(run["killed"], 2), hit, leftovers(index_dir)))

    final = run_index(env, tmp_path / "final.log", index_dir)
    assert final["returncode"] == 0, (tmp_path / "final.log").read_text()[-2000:]
    check_serves(settings, embedder, corpus_hashes())
    assert leftovers(index_dir) == [] and len([n for n in entries(index_dir) if n.startswith("v-")]) == 1

    stages = [k[3] for k in kills]
    print(f"\n{len(kills)} kills, {completed} builds finished first; stage timings (s): "
          f"model loaded {calib['embedding']:.1f}, writing {calib['writing']:.1f}, swapped {calib['swapped']:.1f}, "
          f"done {calib['seconds']:.1f}")
    for k in kills:
        print("  revision {:>2}  aimed at {:<9}  killed at {:>5}s  hit: {:<20} left behind: {}".format(*k))
    assert len(kills) >= 20
    assert stages.count("embedding") >= 3 and stages.count("writing") >= 3, stages
    assert any(k[4] for k in kills), "no kill left anything behind to clean up"


# ---- the moments too short to hit by chance: a child kills itself exactly there (fake embedder)

CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder
import rag.index as ix
import rag.versions as mf
import rag.vectorstore as vs
from rag.config import load_settings

point = sys.argv[1]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if point == "writing":
    vs.write_faiss = die
elif point == "renamed":
    mf.swap_current = die
elif point == "linked":
    real_replace = os.replace
    os.replace = lambda src, dst: die() if str(dst).endswith("current") else real_replace(src, dst)
elif point == "swapped":
    calls = []
    real_sweep = mf.sweep
    mf.sweep = lambda *a: die() if calls.append(1) or len(calls) == 2 else real_sweep(*a)
elif point == "sweeping":
    import shutil
    real_rmtree = shutil.rmtree
    shutil.rmtree = lambda p, **k: (real_rmtree(p, **k), die()) if "-old-v-" in os.path.basename(p) else real_rmtree(p, **k)
elif point == "half-swept":  # killed while deleting an old version, after its marker file went first
    import shutil
    real_rmtree = shutil.rmtree
    shutil.rmtree = lambda p, **k: (os.unlink(os.path.join(p, ".rag-version")), die()) \
        if "-old-v-" in os.path.basename(p) else real_rmtree(p, **k)
ix.build(load_settings(), FakeEmbedder(), log=lambda *_: None)
"""


@pytest.mark.parametrize("point", ["writing", "renamed", "linked", "swapped", "sweeping", "half-swept"])
def test_sigkill_at_each_step_of_the_swap(tmp_path, tiny_settings, tiny_rag, fake_embedder, point):
    from rag.pipeline import Rag
    from rag.store import open_index

    index_dir = Path(tiny_settings.index_dir)
    before = os.readlink(index_dir / "current")
    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    env = {**os.environ, "RAG_CORPUS_DIR": str(tiny_settings.corpus_dir), "RAG_INDEX_DIR": str(index_dir),
           "RAG_REFUSAL_THRESHOLD": "0.2"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(tests=str(TESTS)), point], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    swapped = os.readlink(index_dir / "current") != before
    assert swapped == (point in ("swapped", "sweeping", "half-swept"))
    index = open_index(tiny_settings)
    assert ("owls.txt" in index.documents) == swapped
    assert Rag(tiny_settings, embedder=fake_embedder).search("queen bee eggs", k=1)[0].chunk.doc_id == "bees.txt"
    if point != "sweeping":
        assert leftovers(index_dir), "the kill should have left something to clean up"
    report = Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)
    assert report.added == ([] if swapped else ["owls.txt"])
    assert leftovers(index_dir) == [] and sum(n.startswith("v-") for n in entries(index_dir)) == 1
    assert Rag(tiny_settings, embedder=fake_embedder).search("barn owls faces", k=1)[0].chunk.doc_id == "owls.txt"
