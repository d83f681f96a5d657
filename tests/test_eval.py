"""`rag eval` plumbing with fakes (span relevance, ranx metrics, stale quotes, the gate, reports),
the SciFact adapter on a tiny BEIR-shaped set, and one real-model run of the committed gate."""

from __future__ import annotations

import dataclasses

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import FakeEmbedder
from rag.errors import RagError
from rag.eval_gate import TOLERANCE
from rag.evaluate import (Gold, answer_metrics, compare, contains, evidence, load_gold, run_cli,
                          run_eval, score_question, split_of)
from dataclasses import dataclass

from rag.types import Answer, Chunk, Citation, Document, Hit

ROOT = Path(__file__).resolve().parents[1]

# --- span relevance and metric values, with a stub pipeline whose hits are chosen by hand ------

TEXT = ("Alpha beta gamma. The queen bee lays eggs. Workers make honey. Rome was founded in 753 BC. "
        "Caesar crossed the Rubicon.")
DOC = Document("d.txt", "D", TEXT)


def span(quote: str) -> tuple[int, int]:
    s = TEXT.index(quote)
    return s, s + len(quote)


class StubRag:
    """search() returns the given (start, end) chunks in order; ask() the given answer."""

    def __init__(self, results: dict, answers: dict):
        self.index = SimpleNamespace(documents={DOC.id: DOC})
        self.results, self.answers = results, answers

    def search(self, question, k=None, mode=None):
        return [Hit(Chunk(DOC.id, s, e, TEXT[s:e]), 1.0 / r, r) for r, (s, e) in
                enumerate(self.results.get(question, []), start=1)][:k]

    def ask(self, question, history=(), k=None, mode=None):
        text, cites = self.answers.get(question, (None, ()))
        if text is None:
            return Answer(question, "not in corpus", (), refused=True)
        return Answer(question, text, tuple(Citation(n, DOC.id, "D", s, e, TEXT[s:e], 1.0)
                                            for n, (s, e) in enumerate(cites, start=1)))


QUEEN, HONEY, ROME, CAESAR = (span(q) for q in ("The queen bee lays eggs.", "Workers make honey.",
                                                 "Rome was founded in 753 BC.", "Caesar crossed the Rubicon."))
G1 = Gold("g1", "Who lays eggs?", "queen", DOC.id, ("The queen bee lays eggs.",), True, "factoid")
G2 = Gold("g2", "Honey and Rubicon?", "honey", DOC.id, ("Workers make honey.", "Caesar crossed the Rubicon."),
          True, "multi")
G3 = Gold("g3", "What is on Mars?", None, None, (), False, "unanswerable")


def test_evidence_merges_touching_quotes_and_names_missing_ones():
    touching = Gold("x", "q", "honey", DOC.id, ("Workers make honey.", "Rome was founded in 753 BC."), True, "multi")
    assert evidence(touching, {DOC.id: DOC}) == ([(HONEY[0], ROME[1])], "")
    assert evidence(G2, {DOC.id: DOC}) == ([HONEY, CAESAR], "")
    gone = Gold("x", "q", "a", DOC.id, ("The queen bee lays two eggs.",), True, "factoid")
    spans, why = evidence(gone, {DOC.id: DOC})
    assert spans == [] and "quote 1 is no longer in d.txt" in why
    assert "not in the index" in evidence(G1, {})[1]


def test_passage_relevance_is_span_overlap():
    # a chunk that ends exactly where the quote starts does not overlap it; one character more does
    rag = StubRag({G1.question: [(0, QUEEN[0]), (QUEEN[0] + 3, QUEEN[0] + 10)]}, {})
    rec, prun, _, _ = score_question(rag, G1, [QUEEN])
    assert rec["hit_rank"] == 2 and rec["covered"] == [1, 1]
    assert list(prun)[1] == "E0" and not list(prun)[0].startswith("E")
    # one chunk holding both (non-touching) quotes credits both units
    both = StubRag({G2.question: [(HONEY[0], CAESAR[1])]}, {})
    rec, prun, _, _ = score_question(both, G2, [HONEY, CAESAR])
    assert rec["covered"] == [2, 2] and list(prun) == ["E0", "E1"]


def test_metrics_match_hand_computed_values():
    rag = StubRag(
        {G1.question: [(0, 17), QUEEN], G2.question: [HONEY, (0, 17), CAESAR], G3.question: [(0, 17)]},
        {G1.question: ("The queen bee lays eggs. [1]", [QUEEN]),
         G2.question: ("Workers make honey. [1] Alpha. [2]", [HONEY, (0, 17)])})
    m = run_eval(rag, [G1, G2, G3])["metrics"]
    assert m["passage/hit@1"] == 0.5 and m["passage/hit@3"] == 1.0
    assert m["passage/mrr@10"] == 0.75
    assert m["passage/recall@1"] == 0.25 and m["passage/recall@3"] == 1.0
    ndcg_g1 = 1 / math.log2(3)
    ndcg_g2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["passage/ndcg@10"] == pytest.approx((ndcg_g1 + ndcg_g2) / 2, abs=1e-4)
    assert m["document/hit@1"] == 1.0
    assert m["answer/contains"] == 1.0
    assert m["answer/citation_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["refusal/precision"] == 1.0 and m["refusal/recall"] == 1.0


class HistoryStubRag(StubRag):
    """ask() with history returns the hits it used; the short answer comes from a table."""

    def __init__(self, results, answers, used=None, shorts=None):
        super().__init__(results, answers)
        self.used, self.shorts, self.asked = used or {}, shorts or {}, []

    def ask(self, question, history=(), k=None, mode=None):
        self.asked.append((question, tuple(history)))
        a = super().ask(question, history, k, mode)
        hits = tuple(Hit(Chunk(DOC.id, s, e, TEXT[s:e]), 1.0 / r, r)
                     for r, (s, e) in enumerate(self.used.get(question, []), start=1))
        return dataclasses.replace(a, hits=hits, short_answer=self.shorts.get(question, ""))


G4 = Gold("g4", "And what do they make?", "honey", DOC.id, ("Workers make honey.",), True, "followup",
          "honey", (("Who lays eggs?", "The queen bee lays eggs."),))
G5 = Gold("g5", "Where do they live on Mars?", None, None, (), False, "followup", None,
          (("Who lays eggs?", "The queen bee lays eggs."),))
G6 = Gold("g6", "When was Rome founded?", "753 BC", DOC.id, ("Rome was founded in 753 BC.",), True, "factoid",
          "753 BC")


def test_followups_are_asked_with_history_and_scored_on_the_hits_used():
    rag = HistoryStubRag({G4.question: [(0, 17)]}, {G4.question: ("Workers make honey. [1]", [HONEY])},
                         used={G4.question: [(0, 17), HONEY]})
    rec, prun, _, _ = score_question(rag, G4, [HONEY])
    assert rag.asked == [(G4.question, G4.history)]
    assert rec["hit_rank"] == 2 and rec["answer_ok"] and rec["short_ok"] is False  # no short answer given
    rec, _, _, _ = score_question(rag, G1, [QUEEN])
    assert rag.asked[-1] == (G1.question, ()) and rec["hit_rank"] is None  # plain questions use search()


def test_new_answer_metrics_and_splits():
    rag = HistoryStubRag(
        {G1.question: [QUEEN], G2.question: [HONEY], G6.question: [ROME]},
        {G1.question: ("The queen bee lays eggs. [1]", [QUEEN]), G4.question: ("Workers make honey. [1]", [HONEY]),
         G6.question: ("Rome was founded in 753 BC. [1]", [ROME]), G5.question: ("Bees live in hives.", [])},
        used={G4.question: [HONEY]},
        shorts={G1.question: "the queen", G4.question: "Honey", G6.question: "Rome"})
    g1 = Gold(**{**G1.__dict__, "short_answer": "queen"})
    report = run_eval(rag, [g1, G2, G3, G4, G5, G6])
    m, q = report["metrics"], report["questions"]
    assert report["k"] == 10
    # g2 refused (no answer scripted): 1 of 4 answerable; g3 refused right, g5 answered wrongly
    assert m["refusal/false_refusals"] == 0.25 and m["refusal/recall"] == 0.5 and m["refusal/precision"] == 0.5
    # short answers: g1 "the queen" contains "queen", g4 "Honey" equals "honey", g6 "Rome" lacks "753 BC"
    assert [q[i]["short_ok"] for i in ("g1", "g2", "g4", "g6")] == [True, None, True, False]
    assert m["answer/short_answer_match"] == round(2 / 3, 4)
    assert m["followup/contains"] == 1.0 and m["answer/contains"] == 0.75
    assert m["dev/answer/contains"] == 1.0 and m["heldout/answer/contains"] == round(2 / 3, 4)  # dev: g1 g3 g5
    assert m["dev/refusal/recall"] == 0.5 and m["heldout/refusal/recall"] is None
    assert m["heldout/refusal/false_refusals"] == round(1 / 3, 4) and m["dev/refusal/false_refusals"] == 0.0
    assert m["heldout/answer/short_answer_match"] == 0.5


def test_an_answer_without_a_short_answer_misses_the_short_answer_metric():
    rag = StubRag({G6.question: [ROME]}, {G6.question: ("Rome was founded in 753 BC. [1]", [ROME])})
    m = run_eval(rag, [G6])["metrics"]
    assert m["answer/short_answer_match"] == 0.0 and m["answer/contains"] == 1.0
    assert answer_metrics([]) == dict.fromkeys(answer_metrics([]), None)


def test_split_of_ids():
    assert [split_of(i) for i in ("q001", "q072", "q073", "g2", "x")] == ["dev", "heldout", "dev", "heldout", None]


def test_answer_normalisation():
    assert contains("It was inspired by Germany\u2019s \u201cIndustry 4.0\u201d. [1]", "Germany")
    assert contains("the National Medium- and Long-Term Program", "national medium and long term program")
    assert not contains("Made in China 2025 [1]", "1")  # a citation marker is not an answer
    assert not contains("10 priority sectors", "0")


# --- the gate, on numbers ------------------------------------------------------------------------

def _report(hit1: float, p50: float, rank: int | None) -> dict:
    q = {"kind": "factoid", "answerable": True, "hit_rank": rank, "covered": [1 if rank else 0, 1],
         "top5": [["d.txt", 0, 10]], "answer_ok": True, "refused": False, "citation_precision": 1.0}
    return {"metrics": {"passage/hit@1": hit1, "latency/p50_ms": p50}, "questions": {"g1": q}, "stale": []}


def test_compare_applies_the_stated_tolerance():
    base = _report(0.80, 20.0, 1)
    assert compare(_report(0.80, 20.0, 1), base)["passed"]
    assert compare(_report(0.80 - TOLERANCE + 0.005, 20.0, 1), base)["passed"]
    failed = compare(_report(0.80 - TOLERANCE - 0.005, 20.0, 1), base)
    assert not failed["passed"] and failed["failures"][0]["metric"] == "passage/hit@1"
    assert compare(_report(0.80, 3 * 20.0 + 49, 1), base)["passed"]  # latency is gated loosely
    assert not compare(_report(0.80, 3 * 20.0 + 51, 1), base)["passed"]
    worse = compare(_report(0.80, 20.0, None), base)["regressed"]
    assert worse[0]["id"] == "g1" and "hit rank 1 -> miss" in worse[0]["why"]


def test_false_refusals_fail_the_gate_when_they_rise_not_when_they_fall():
    base = _report(0.80, 20.0, 1)
    base["metrics"]["refusal/false_refusals"] = 0.10
    fewer, more = _report(0.80, 20.0, 1), _report(0.80, 20.0, 1)
    fewer["metrics"]["refusal/false_refusals"] = 0.0
    more["metrics"]["refusal/false_refusals"] = 0.10 + TOLERANCE + 0.01
    assert compare(fewer, base)["passed"]
    failed = compare(more, base)
    assert not failed["passed"] and failed["failures"][0]["metric"] == "refusal/false_refusals"


# --- the whole command on the tiny corpus with the fake embedder ---------------------------------

TINY_GOLD = [
    {"id": "t1", "question": "Who lays eggs in a bee colony?", "answer": "queen", "doc_id": "bees.txt",
     "quotes": ["A colony has one queen bee that lays eggs."], "answerable": True, "kind": "factoid"},
    {"id": "t2", "question": "Where did tea originate?", "answer": "southwest China", "doc_id": "tea.txt",
     "quotes": ["Tea originated in southwest China."], "answerable": True, "kind": "factoid"},
    {"id": "t3", "question": "What are photovoltaic cells made of?", "answer": "silicon", "doc_id": "solar.md",
     "quotes": ["Photovoltaic cells are made of silicon."], "answerable": True, "kind": "paraphrase"},
    {"id": "t4", "question": "What is the boiling point of mercury on Mars?", "answer": None, "doc_id": None,
     "quotes": [], "answerable": False, "kind": "unanswerable"},
]


@pytest.fixture
def tiny_eval(tmp_path, tiny_settings, tiny_rag):
    """(args, settings) for `rag eval` over the tiny corpus, with the gold set in tmp_path/eval/."""
    gold = tmp_path / "eval" / "gold.jsonl"
    gold.parent.mkdir()
    gold.write_text("".join(json.dumps(g) + "\n" for g in TINY_GOLD), encoding="utf-8")
    args = SimpleNamespace(gold=str(gold), check=False, update_baseline=False)
    return args, tiny_settings.replace(mode="dense")


def _run(args, settings, embedder=None, **flags):
    return run_cli(SimpleNamespace(**dict(vars(args), **flags)), settings, embedder=embedder or FakeEmbedder())


def test_reports_written(tiny_eval):
    args, settings = tiny_eval
    assert _run(args, settings) == 0
    out = Path(args.gold).parent / "reports"
    report = json.loads((out / "eval-dense.json").read_text())
    assert set(report["questions"]) == {"t1", "t2", "t3", "t4"}
    assert report["metrics"]["passage/hit@10"] == 1.0 and report["settings"]["mode"] == "dense"
    md = (out / "eval-dense.md").read_text()
    assert f"more than {TOLERANCE}" in md and "| passage/ndcg@10 |" in md and "| t4 | unanswerable |" in md
    assert (out / "eval-dense.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gate_passes_on_equal_metrics(tiny_eval, capsys):
    args, settings = tiny_eval
    assert _run(args, settings, update_baseline=True) == 0
    base = json.loads(Path(args.gold).with_name("baseline.json").read_text())
    assert base["modes"]["dense"]["questions"]["t1"]["top5"][0][0] == "bees.txt"
    assert _run(args, settings, check=True) == 0
    assert "gate: PASS" in capsys.readouterr().out


class BlindEmbedder(FakeEmbedder):
    """Every question embeds to the same vector: an injected retrieval regression."""

    def embed_query(self, text):
        return self._vec("unrelated")


def test_gate_fails_on_injected_regression_and_names_questions(tiny_eval, capsys):
    args, settings = tiny_eval
    assert _run(args, settings, update_baseline=True) == 0
    capsys.readouterr()
    assert _run(args, settings, embedder=BlindEmbedder(), check=True) == 1
    out = capsys.readouterr()
    assert "gate: FAIL" in out.out and "FAIL passage/hit@1" in out.err
    assert "questions that regressed" in out.out
    named = {line.split("**")[1] for line in out.out.splitlines() if line.startswith("- **")}
    assert named and named <= {"t1", "t2", "t3", "t4"}
    assert "before: bees.txt" in out.out or "before: tea.txt" in out.out or "before: solar.md" in out.out


def test_corpus_edit_makes_question_stale_not_a_miss(tiny_eval, tiny_corpus, fake_embedder, capsys):
    from rag.pipeline import Rag

    args, settings = tiny_eval
    assert _run(args, settings, update_baseline=True) == 0
    bees = tiny_corpus / "bees.txt"
    bees.write_text(bees.read_text().replace("one queen bee", "a single queen"), encoding="utf-8")
    with pytest.raises(RagError, match="run `rag index` first"):  # scoring an old index would hide it
        _run(args, settings, check=True)
    Rag(settings, embedder=fake_embedder).build(log=lambda *_: None)
    capsys.readouterr()
    assert _run(args, settings, check=True) == 1
    err = capsys.readouterr().err
    assert "stale: t1: quote 1 is no longer in bees.txt" in err and "stale: t2" not in err
    report = json.loads((Path(args.gold).parent / "reports" / "eval-dense.json").read_text())
    assert "t1" not in report["questions"] and report["stale"][0]["id"] == "t1"
    with pytest.raises(RagError, match="stale gold questions"):
        _run(args, settings, update_baseline=True)


def test_check_without_baseline_for_mode_says_how_to_fix(tiny_eval):
    args, settings = tiny_eval
    with pytest.raises(RagError, match="--update-baseline --mode dense"):
        _run(args, settings, check=True)


def test_bad_gold_line_is_named(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(TINY_GOLD[0]) + "\n" + json.dumps(TINY_GOLD[0]) + "\n")
    with pytest.raises(RagError, match=r"gold.jsonl:2 \(t1\): duplicate id"):
        load_gold(path)


def test_gold_short_answer_and_history_are_validated(tmp_path):
    path = tmp_path / "gold.jsonl"
    ok = dict(TINY_GOLD[0], short_answer="queen bee", history=[["Tell me about bees", "Honey bees live in colonies."]],
              kind="followup")
    path.write_text(json.dumps(ok) + "\n" + json.dumps(TINY_GOLD[3]) + "\n")
    g, none = load_gold(path)
    assert g.short_answer == "queen bee" and g.history == (("Tell me about bees", "Honey bees live in colonies."),)
    assert none.short_answer is None and none.history == ()
    for bad, why in ((dict(ok, short_answer="king bee"), "short_answer must be"),
                     (dict(ok, short_answer=""), "short_answer must be"),
                     (dict(ok, history=[["only a question"]]), "history must be a list"),
                     (dict(ok, history="Tell me about bees"), "history must be a list"),
                     (dict(ok, history=[["q", 3]]), "history must be a list")):
        path.write_text(json.dumps(TINY_GOLD[3]) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(RagError, match=rf"gold.jsonl:2 .*{why}"):
            load_gold(path)


# --- SciFact adapter: the product's own index, documents scored by their best chunk ---------------

def test_scifact_adapter_on_tiny_beir_set(tmp_path, fake_embedder):
    from rag.config import load_settings
    from rag.pipeline import Rag
    from rag.beir import doc_run, read_beir, score, write_corpus

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    docs = {"d1": ("Bees", "Honey bees live in colonies. The queen lays eggs."),
            "d2": ("Tea", "Tea originated in southwest China."),
            "d3": ("Rome", "Rome was founded in 753 BC. Caesar crossed the Rubicon.")}
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n"
                                               for k, (t, x) in docs.items()))
    (data / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "queen lays eggs"}) + "\n"
                                        + json.dumps({"_id": "2", "text": "where did tea originate"}) + "\n"
                                        + json.dumps({"_id": "9", "text": "not judged"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    corpus, queries, qrels = read_beir(data)
    assert set(queries) == {"1", "2"} and qrels["2"] == {"d2": 1}
    write_corpus(corpus, tmp_path / "work" / "corpus")
    assert (tmp_path / "work" / "corpus" / "d1.txt").read_text().startswith("---\ntitle: Bees\n---\n")
    settings = load_settings(env={}, corpus_dir=tmp_path / "work" / "corpus", index_dir=tmp_path / "work" / "ix",
                             index_sentences=False)
    rag = Rag(settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    run = doc_run(rag, queries, "hybrid")
    assert max(run["1"], key=run["1"].get) == "d1" and set(run["2"]) <= set(docs)
    assert score(qrels, run)["ndcg@10"] == 1.0
    assert score(qrels, {"1": run["1"]})["recall@100"] == 0.5  # a query with no hits scores 0


def test_scifact_rationale_scoring_on_tiny_set(tmp_path, fake_embedder, monkeypatch, capsys):
    from rag.config import load_settings
    from rag.pipeline import Rag
    from rag.scifact import (bench_scifact, locate, rationale_spans, read_rationales, run_rationales,
                             score_rationale_answer, write_corpus)

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    docs = {"d1": ("Bees", "Honey bees live in colonies. The queen  lays eggs in the hive."),
            "d2": ("Tea", "Tea originated in southwest China. Green tea is unfermented."),
            "d3": ("Rome", "Rome was founded in 753 BC. Caesar crossed the Rubicon.")}
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n"
                                               for k, (t, x) in docs.items()))
    (data / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "queen lays eggs"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    rows = [("test", "1", "The queen lays eggs in the hive.", "d1", ["The queen lays eggs in the hive."]),
            ("test", "1", "The queen lays eggs in the hive.", "d1", ["Honey bees live in colonies."]),
            ("test", "2", "Tea comes from southwest China.", "d2", ["Tea originated in southwest China."]),
            ("test", "3", "Caesar crossed the Rubicon.", "d3", ["Rome was founded in 753 BC."]),
            ("dev", "4", "Green tea is unfermented.", "d2", ["Green tea is unfermented."])]
    (data / "rationales.jsonl").write_text("".join(json.dumps(dict(zip(
        ("split", "claim_id", "claim", "doc_id", "rationale"), r), label="SUPPORT")) + "\n" for r in rows))
    claims = read_rationales(data, "test")
    assert list(claims) == ["1", "2", "3"]  # distinct claims; a claim's rows are merged
    assert claims["1"]["evidence"] == {"d1": ["The queen lays eggs in the hive.", "Honey bees live in colonies."]}
    assert list(read_rationales(data, "test", limit=2)) == ["1", "2"] and list(read_rationales(data, "dev")) == ["4"]
    with pytest.raises(RagError, match="no claims in split"):
        read_rationales(data, "train")
    text = docs["d1"][1]
    assert locate(text, "The queen lays eggs in the hive.") == (text.index("The queen"), len(text))  # spaces loose
    assert locate(text, "Not there.") is None

    # scoring on hand-made answers: a citation overlapping a rationale span, one on the evidence doc only
    ev = {"d1": [(29, 62)]}
    cite = (lambda d, s, e: Citation(1, f"{d}.txt", d, s, e, "", 1.0))
    assert score_rationale_answer(Answer("q", "x", (cite("d1", 30, 40),)), ev) == \
        {"refused": False, "cites_evidence": True, "cites_rationale": True}
    assert score_rationale_answer(Answer("q", "x", (cite("d1", 0, 29),)), ev)["cites_rationale"] is False
    assert score_rationale_answer(Answer("q", "x", (cite("d2", 0, 10),)), ev)["cites_evidence"] is False
    assert score_rationale_answer(Answer("q", "no", (), refused=True), ev)["refused"] is True

    # end to end on the tiny index with the fake embedder
    corpus_dir = tmp_path / "work" / "corpus"
    write_corpus({k: v for k, v in docs.items()}, corpus_dir)
    settings = load_settings(env={}, corpus_dir=corpus_dir, index_dir=tmp_path / "work" / "ix",
                             refusal_threshold="0.2")
    rag = Rag(settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    spans, missing = rationale_spans(claims, rag.index.documents)
    assert missing == 0 and len(spans["1"]["d1"]) == 2
    summary, records = run_rationales(rag, claims)
    assert summary["claims"] == 3 and set(records) == {"1", "2", "3"}
    assert records["2"]["cites_rationale"] and records["2"]["cites_evidence"]
    assert summary["cites_rationale"] == round(sum(r["cites_rationale"] for r in records.values()) / 3, 4)
    assert summary["ms_per_claim_p50"] is not None

    # the command: a separate cache directory for the sentence-vector index, a printed table
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("rag.pipeline.Rag.embedder", property(lambda self: fake_embedder))
    args = SimpleNamespace(data=str(data), limit=None, rationales=True, split="test")
    assert bench_scifact(args, settings) == 0
    out = capsys.readouterr().out
    assert "SciFact rationales, test split, 3 claims" in out and "| answers citing a rationale sentence |" in out
    assert [p.name for p in (tmp_path / "cache" / "rag-bench").iterdir()][0].startswith("beir-sent-")  # named after the data folder


def test_scifact_missing_data_is_one_line(tmp_path):
    from rag.beir import read_beir

    with pytest.raises(RagError, match="missing .*corpus.jsonl.*pass --data"):
        read_beir(tmp_path)


# --- the real gate ------------------------------------------------------------------------------

@pytest.mark.real_model
def test_committed_baseline_gate_passes_on_bundled_corpus(tmp_path, capsys):
    from rag.cli import main

    gold = tmp_path / "eval" / "gold.jsonl"
    gold.parent.mkdir()
    shutil.copy(ROOT / "eval" / "gold.jsonl", gold)
    shutil.copy(ROOT / "eval" / "baseline.json", gold.with_name("baseline.json"))
    flags = ["--corpus-dir", str(ROOT / "corpus"), "--index-dir", str(tmp_path / "index")]
    assert main(["index", *flags]) == 0
    code = main(["eval", "--check", "--gold", str(gold), *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "gate: PASS" in out
    report = json.loads(next((tmp_path / "eval" / "reports").glob("eval-*.json")).read_text())
    assert not report["stale"] and len(report["questions"]) >= 60
