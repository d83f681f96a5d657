"""Follow-ups: a question that refers to the previous turn ("When did that happen?", "And the
third?", "What did he say about it?") rewritten as a standalone question, with the reference
replaced by what the previous turn was about: its answer phrase when it asked for one, else the
names and noun phrases of its question (and then of its answer). Nothing of the previous turn is
appended wholesale.
"""

from __future__ import annotations

import re

from .cite import NOT_IN_CORPUS
from .entities import tag
from .lexical import tokenize
from .phrase import answer_phrase
from .question import Question, analyse


_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|he|him|his|she|her|hers|there|this|that|these|those)\b", re.I)
_ELLIPSIS = re.compile(r"^\W*(?:and|what about|how about|what of|and what about)\b"
                       # "What is the first?", "Which was the last one?": an ordinal standing for an item of a list
                       r"|\bthe\s+(?:first|second|third|fourth|fifth|last|next|other|\d+(?:st|nd|rd|th))(?:\s+ones?)?\W*$",
                       re.I)
_PERSONAL = {"he", "him", "his", "she", "her", "hers"}
_POSSESSIVE = {"its", "his", "her", "their", "theirs", "hers"}
# nouns of time: a follow-up holding one asks about the previous answer's date itself
_TIME = re.compile(r"\b(?:year|month|week|day|date|time|decade|century|season|era|period)s?\b", re.I)
_WH = re.compile(r"^(?:which|what|who|whom|whose|when|where|how|why)\b", re.I)


def needs_context(question: str) -> bool:
    """A pronoun or demonstrative standing for something said before, or an elliptic "And ...?"."""
    return bool(_references(question) or _ELLIPSIS.search(question) and not _complete(question)
                or not tokenize(question))


def _complete(question: str) -> bool:
    """An "And ..." question with its own verb and noun or name ("And who founded Norvik Labs?") asks
    something new; a fragment ("And in 2019?", "And who won?", "And the third?") continues the last one."""
    if not re.match(r"^\W*and\b(?!\s+(?:what|how)\s+about\b)", question, re.I):
        return False
    pos = {p for _s, _e, p in tag([question])[0].tokens}
    return "VERB" in pos and bool(pos & {"NOUN", "PROPN"})


def _references(question: str) -> list[re.Match]:
    """The pronouns and demonstratives that may stand for something said before: not a "that" that
    opens a clause ("Who declared that data is the new oil?", spaCy's SCONJ), nor a possessive after a
    noun or name of the question itself ("How does the plan fund *its* labs?": the plan's)."""
    found = list(_PRONOUN.finditer(question))
    if not found:
        return found
    tokens = tag([question])[0].tokens
    clause = {start for start, _end, pos in tokens if pos == "SCONJ"}
    # "Is there a museum?", "How many moons are there?": an existential "there" (PRON) points at no place
    found = [m for m in found if not (m.group(1).lower() == "there" and (m.start(1), m.end(1), "PRON") in tokens)]
    nouns = [end for _start, end, pos in tokens if pos in ("NOUN", "PROPN")]
    return [m for m in found if not (m.group(1).lower() == "that" and m.start(1) in clause)
            and not (m.group(1).lower() in _POSSESSIVE and any(end <= m.start(1) for end in nouns))]


# "then" closing a question ("Who was mayor then?", "back then"), not "and then" or "if ..., then"
_THEN = re.compile(r"(?<!\band )(?<!, )\b(?:back\s+)?then(?=\W*$)", re.I)
_NAMED = re.compile(r"[A-Z][\w\u2019'.-]*(?:\s+(?:(?:in|of|for|and|the)\s+)?[A-Z0-9][\w\u2019'.-]*)*")
MAX_REFERENTS = 8


def referents(prev: Question, answer: str, answer_first: bool | None = None,
              longest: bool = False) -> list[tuple[str, str]]:
    """(text, entity label or "") of what the previous turn was about, most likely first. When it
    asked for a kind of thing ("which city", "what kind of race", "who", "when") its answer phrase
    comes first: the answer is what "it" means next. Otherwise its own subject does: the names in it
    (capitalised runs such as "Made in China 2025", then entities), its noun phrases, then the answer."""
    question = prev.text
    q_tag, a_tag = tag([question, answer])
    said: list[tuple[str, str]] = []
    phrase = answer_phrase(prev, answer, a_tag)
    if phrase is not None:
        label = next((lb for s, e, lb in a_tag.entities if s >= phrase[0] and e <= phrase[1]), "")
        said.append((answer[phrase[0]:phrase[1]], label))
    asked: list[tuple[str, str]] = []
    for m in sorted(_NAMED.finditer(question), key=lambda m: -len(m.group())):
        name = re.sub(_WH.pattern + r"\s*", "", m.group(), flags=re.I).strip()
        if tokenize(name):
            asked.append((name, next((lb for s, e, lb in q_tag.entities if question[s:e] in name), "")))
    asked += [(question[s:e], label) for s, e, label in q_tag.entities]
    asked += [(question[s:e], "") for s, e in q_tag.phrases if not _WH.match(question[s:e]) and tokenize(question[s:e])]
    asked = [f for f in asked if not _PRONOUN.fullmatch(f[0])]  # "Where was she born?": "she" is no subject
    if longest:  # the thing the previous question was about: its longest phrase
        asked.sort(key=lambda f: -len(f[0]))
    answer_first = bool(prev.labels or prev.wh) if answer_first is None else answer_first
    first = said + asked if answer_first else asked + said
    return list(dict.fromkeys(first))


def _named_thing(question: str, m) -> str:
    """The noun a demonstrative points with ("that *goal*", "these *companies*"); "" for a bare one."""
    if m.group(1).lower() not in ("this", "that", "these", "those"):
        return ""
    nxt = next(((s, e, pos) for s, e, pos in tag([question])[0].tokens if s > m.start()), None)
    return question[nxt[0]:nxt[1]] if nxt and nxt[2] == "NOUN" else ""


_PLACE_PREP = re.compile(r"\b(?:from|to|in|at|near|of|around|through|into|towards?|beyond|past)\s+$", re.I)


def _rewrite(question: str, m, pick: str) -> str:
    word = m.group(1).lower()
    if word in ("this", "that", "these", "those") and re.match(r"\s+[a-z]", question[m.end():m.end() + 20]):
        return f"{question} ({pick})"  # "that plan": keep the noun, name what it is
    owner = (f"{pick}'" if pick.endswith("s") else f"{pick}'s") if word in _POSSESSIVE else pick
    if word == "there" and not _PLACE_PREP.search(question[:m.start()]):
        owner = f"in {pick}"  # "Who lives there?": "Who lives in Tromso?"; "from there": "from Tromso"
    return question[:m.start()] + owner + question[m.end():]


def standalone(question: str, history, depth: int = 3) -> str:
    """The question with its reference to the previous turn resolved, or unchanged when it needs none."""
    previous = [(q, a) for q, a in (history or ()) if q and str(q).strip()]
    then = _THEN.search(question)
    if not previous or not (then or needs_context(question)):
        return question
    prev_q, prev_a = previous[-1]
    # "Who founded it?" after "And in 2019?": the previous question as it was read, itself resolved
    # against the turns before it (a few at most: a long history costs no more than a short one)
    prev_q = str(getattr(prev_a, "standalone_question", "") or "") or (
        standalone(str(prev_q), previous[-depth:-1], depth - 1) if depth > 1 else str(prev_q))
    short = str(getattr(prev_a, "short_answer", "") or "")
    # a refusal says nothing about the subject: "it" is then what the previous question asked about
    refused = getattr(prev_a, "refused", False) or " ".join(str(prev_a).split()) == NOT_IN_CORPUS
    prev_a = "" if refused else str(getattr(prev_a, "text", prev_a) or "")
    prev = analyse(str(prev_q))
    if then and not needs_context(question):  # "Who was mayor then?" after "When did the flood hit?": its date
        date = (short or next((t for t, label in referents(prev, prev_a, True) if label == "DATE"), "")) \
            if prev.kind == "date" and prev_a else ""
        return question[:then.start()] + f"in {date}" + question[then.end():] if date else question
    pronouns = _references(question)
    # "Who is tightening its grip on them?": a possessive may point inside the question; a later pronoun is the reference
    m = next((x for x in pronouns if x.group(1).lower() not in _POSSESSIVE), pronouns[0] if pronouns else None)
    found = _referents_of(question, m, prev, prev_a, short)
    if not found:
        return f"{question} ({prev_q})"
    if m is None and (swapped := _swap(question, str(prev_q))):
        return swapped
    if m is None:  # "And in 2016?": the question adds to the previous subject; "What is the first?": the list it asked about
        ordinal = re.search(r"\bthe\s+\w+(?:\s+ones?)?\W*$", question) and not question.lower().lstrip().startswith("and")
        if ordinal and prev.kind == "number":
            found = sorted(referents(prev, prev_a, False), key=lambda f: -len(f[0])) or found
        return f"{question} ({found[0][0]})"
    word = m.group(1).lower()
    wanted = [t for t, label in found if (word in _PERSONAL and label == "PERSON")
              or (word == "there" and label in ("GPE", "LOC"))]
    if word in _PERSONAL and not wanted and not (prev.kind == "person" and prev_a):
        # "he" with no person said before (the answer's phrase may be "AI expert X", untagged): name the subject
        return f"{question} ({next((t for t, label in found if label not in _AMOUNTS), found[0][0])})"
    out = _rewrite(question, m, (wanted or [t for t, _ in found])[0])
    # "Why does it keep that edge?": a second reference that names its thing is resolved too, in brackets
    other = next((x for x in pronouns if x is not m and _named_thing(question, x)), None)
    more = _referents_of(question, other, prev, prev_a, short) if other else []
    return f"{out} ({more[0][0]})" if more and more[0][0] not in out else out


_AMOUNTS = {"DATE", "TIME", "CARDINAL", "MONEY", "PERCENT", "QUANTITY", "ORDINAL"}
_LEAD = re.compile(r"^\W*(?:and\s+)?(?:what|how)\s+about\b|^\W*and\b", re.I)
_GROUPS = ({"GPE", "LOC", "ORG", "FAC", "NORP"}, {"DATE", "TIME"}, {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
# spaCy's label of a name alone in a fragment is a guess ("How about Norvik Labs?": PERSON): any name may
# stand in for the previous question's one name
_NAMES = {"GPE", "LOC", "ORG", "FAC", "NORP", "PERSON", "PRODUCT", "WORK_OF_ART", "EVENT", "LAW"}


def _swap(question: str, prev_q: str) -> str | None:
    """"And in 2019?" after "How many members joined in 2018?": the previous question with its name,
    date or ordinal of the same kind replaced ("How many members joined in 2019?"); None when the
    elliptic question names nothing the previous one has a counterpart of."""
    lead = _LEAD.match(question)
    if not lead:
        return None
    q_tag, p_tag = tag([question, prev_q])
    new = [(s, e, label) for s, e, label in q_tag.entities if s >= lead.end()]
    if len(new) != 1:
        return None
    s, e, label = new[0]
    # "How about the Vellmar ferry terminal?": the noun phrase the name is part of stands in, not "Vellmar"
    s, e = next(((ps, pe) for ps, pe in q_tag.phrases if ps <= s and e <= pe), (s, e))
    group = next((g for g in _GROUPS if label in g), {label})
    old = [x for x in p_tag.entities if x[2] == label] or [x for x in p_tag.entities if x[2] in group] or (
        [x for x in p_tag.entities if x[2] in _NAMES] if label in _NAMES else [])
    if len(old) != 1 or prev_q[old[0][0]:old[0][1]].lower() == question[s:e].lower():
        return None
    return prev_q[:old[0][0]] + question[s:e] + prev_q[old[0][1]:]


def _referents_of(question: str, m, prev: Question, prev_a: str, short: str) -> list[tuple[str, str]]:
    """What the reference `m` (None: an elliptic question) may stand for, most likely first."""
    word = m.group(1).lower() if m else ""
    alone = word in ("this", "that") and not re.match(r"\s+[a-z]", question[m.end():m.end() + 20])
    named = _named_thing(question, m) if m else ""
    # the previous answer is what "it" means after "which city ...?", but not after "when ...?" or "how many ...?"
    # (a date is not "it"); a bare "that" is the amount or thing asked for, but not a person or place: then
    # it is the event the previous question asked about (its longest phrase)
    answer_first = bool(prev.labels or prev.wh)
    if word in ("it", "its", "they", "them", "their", "theirs"):
        # nor after "who ...?" for "it" (a person is not "it"), nor after "where ...?" (X's place is not X)
        answer_first = answer_first and prev.kind not in ("date", "number") \
            and not (prev.kind == "person" and word in ("it", "its")) and not (prev.kind == "place" and not prev.wh)
    elif alone:  # a date is "that" only when the follow-up asks about the time itself ("What day was that?");
        # an amount is, unless the follow-up asks who, where or when ("Who built that?": the thing counted)
        answer_first = answer_first and prev.kind not in ("person", "place", "org") and not (
            prev.kind == "date" and not _TIME.search(question)
            or prev.kind == "number" and analyse(question).kind in ("person", "place", "org", "date"))
    elif named:  # "that goal" after "By what year ...?" or "that edge" after "Which team has a lead?": what the
        # question named, not its answer; "that year" after "What year ...?", "that plan" after "Which plan ...?": the answer
        # ... and "that year" / "that time" after "When ...?": its date
        answer_first = answer_first and bool(set(tokenize(named)) & prev.terms
                                             or prev.kind == "date" and _TIME.fullmatch(named))
    found = referents(prev, prev_a, answer_first, longest=(alone or bool(named)) and not answer_first)
    if word in ("it", "its", "they", "them", "their", "theirs"):  # "Who runs it?": not the "2016" of "the 2016 fund"
        found = [f for f in found if f[1] not in _AMOUNTS] or found
    if found and not answer_first and word in ("it", "its", "this", "that"):
        # "the Lindmark flood": a name modifying a common noun is not the thing; its noun phrase is
        text = prev.text
        wider = [text[s:e] for s, e in tag([text])[0].phrases
                 if found[0][0] in text[s:e] and re.search(r"\s[a-z][\w-]*$", text[s:e])]
        if wider:
            found.insert(0, (min(wider, key=len), ""))
    if short and answer_first:
        found.insert(0, (short, ""))
    counted = re.match(r"how\s+many\s+(.+)", next((prev.text[s:e] for s, e in tag([prev.text])[0].phrases), ""), re.I)
    if word in ("they", "them", "their", "theirs") and counted:  # "How many turbines ...?": "they" are "the turbines"
        found.insert(0, (f"the {counted.group(1)}", ""))
    if word in ("it", "its"):  # one thing: not a list ("France, Spain and Italy"), which is "they"
        found = [f for f in found if not re.search(r",\s|\s(?:and|or)\s", f[0])] or found
    return found
