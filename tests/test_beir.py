"""`rag bench beir`: any BEIR dataset, whatever its document ids hold, scored as by hand."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from rag.beir import file_stem
from rag.errors import RagError

ODD_IDS = ["OSTM/Jason-2:2", "doc with spaces", "Übersicht-文档", "..", ".hidden", "a" * 300, "%41", "A", "x/../y"]


def test_any_id_gets_its_own_plain_file_name():
    stems = [file_stem(d) for d in ODD_IDS]
    assert len(set(stems)) == len(ODD_IDS)  # distinct, so they map back
    for d, s in zip(ODD_IDS, stems):
        assert "/" not in s and "\\" not in s and not s.startswith(".") and len(s.encode()) <= 120, (d, s)
    assert file_stem("4983") == "4983" and file_stem("A") == "A"  # plain ids (SciFact's) stay as they are
    assert file_stem("OSTM/Jason-2:2").startswith("OSTM%2FJason-2%3A2~")


def _write_beir(root, docs, queries, qrels):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}, ensure_ascii=False)
                                               + "\n" for k, (t, x) in docs.items()), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()),
                                        encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t1\n" for q, ds in qrels.items() for d in ds), encoding="utf-8")


def test_bench_beir_with_odd_ids_scores_what_a_hand_count_gives(tmp_path, fake_embedder, monkeypatch, capsys):
    from rag.beir import bench_beir, doc_run, read_beir
    from rag.config import load_settings
    from rag.pipeline import Rag

    docs = {"OSTM/Jason-2:2": ("Altimetry", "The Jason satellite measures ocean surface height from orbit."),
            "doc with spaces": ("Bees", "Honey bees live in colonies and the queen lays eggs."),
            "Übersicht-文档": ("Tea", "Green tea originated in southwest China long ago."),
            "plain1": ("Rome", "Caesar crossed the Rubicon river in 49 BC.")}
    queries = {"q1": "satellite ocean surface height", "q2": "queen bee lays eggs", "q3": "green tea China",
               "unjudged": "nothing"}
    # q2 also names a relevant document the corpus does not hold: it can never be found
    qrels = {"q1": ["OSTM/Jason-2:2"], "q2": ["doc with spaces", "gone/doc"], "q3": ["Übersicht-文档"]}
    data = tmp_path / "my set"
    _write_beir(data, docs, queries, qrels)
    corpus, judged, rel = read_beir(data)
    assert set(corpus) == set(docs) and set(judged) == {"q1", "q2", "q3"} and rel["q2"] == {"doc with spaces": 1,
                                                                                               "gone/doc": 1}

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rag.pipeline.Rag.embedder", property(lambda self: fake_embedder))
    settings = load_settings(env={}, mode="dense")
    args = SimpleNamespace(data=str(data), limit=None, rationales=False, split="test")
    assert bench_beir(args, settings) == 0
    out = capsys.readouterr().out

    # each query's relevant document ranks first; q2's second one is missing from the corpus:
    # nDCG@10 q2 = 1 / (1 + 1/log2(3)); recall q2 = 1/2; MRR = 1 everywhere
    ndcg = (1 + 1 / (1 + 1 / math.log2(3)) + 1) / 3
    assert f"| ndcg@10 | {ndcg:.4f} |" in out and "| recall@10 | 0.8333 |" in out and "| mrr@10 | 1.0000 |" in out
    assert "my_set test, 3 queries, mode dense" in out and "published nDCG@10" not in out  # SciFact's only

    cached = list((tmp_path / "cache" / "rag-bench").iterdir())
    assert len(cached) == 1 and cached[0].name.startswith("my_set-")
    files = sorted(p.name for p in (cached[0] / "corpus").iterdir())
    assert "plain1.txt" in files and len(files) == 4 and all("/" not in f for f in files)

    # the run maps file names back to the dataset's ids, whatever the ids hold
    rag = Rag(settings.replace(corpus_dir=cached[0] / "corpus", index_dir=cached[0] / "index",
                               index_sentences=False), embedder=fake_embedder)
    run = doc_run(rag, judged, "dense", ids={file_stem(d): d for d in corpus})
    assert set().union(*run.values()) == set(docs)

    # a second run reuses the cached index: nothing embedded
    fake_embedder.calls.clear()
    assert bench_beir(args, settings) == 0
    assert "reused (nothing embedded)" in capsys.readouterr().out and fake_embedder.calls == []


def test_rationales_are_scifact_only_and_missing_split_is_one_line(tmp_path, capsys):
    from rag.beir import read_beir
    from rag.cli import main

    assert main(["bench", "beir", "--data", str(tmp_path), "--rationales"]) == 1
    err = capsys.readouterr().err
    assert "rag bench scifact --rationales" in err and err.count("\n") == 1
    _write_beir(tmp_path / "d", {"a": ("t", "x")}, {"q": "x"}, {"q": ["a"]})
    with pytest.raises(RagError, match=r"missing .*qrels/dev.tsv; pass --data"):
        read_beir(tmp_path / "d", split="dev")
