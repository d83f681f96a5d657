"""Metadata filters: `author=Elsa Kania`, `date>=2019-01-01`, `path=reports/*`, parsed once into a
`Filter`, turned into a mask of the chunks a search may return (applied before ranking is cut to k).

Every document has: path (its id), type (file suffix), title, author, date (front matter `date:`,
else the file's modification day), pages (PDF page count, 1 otherwise), and its other front-matter keys.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from .errors import RagError

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")  # two-character ones first: "<=" is not "<" then "=..."
BUILTIN = ("path", "type", "title", "author", "date", "pages")
INTERNAL = frozenset({"headings", "page_starts", "modified"})  # kept by the loader, not filterable
_SPEC = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*", re.S)
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_GLOB = re.compile(r"[*?\[]")
EXAMPLE = "e.g. author=Elsa Kania, date>=2019-01-01, path=reports/* (operators = != < <= > >=)"


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"

    def test(self, meta: dict) -> bool:
        have = meta.get(self.key)
        if have is None or have == "":
            return self.op == "!="
        if self.key == "date" and self.op in ("=", "!=") and not _GLOB.search(self.value):
            hit = str(have).startswith(self.value)  # date=2019 is any day of 2019
            return hit if self.op == "=" else not hit
        if self.op in ("=", "!="):
            hit = fnmatch.fnmatchcase(str(have).casefold(), self.value.casefold())
            return hit if self.op == "=" else not hit
        a, b = _comparable(have, self.value, self.key)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


def _comparable(have, want: str, key: str):
    if key == "date":
        return str(have), _full_date(want)
    try:
        return float(have), float(want)
    except (TypeError, ValueError):
        return str(have).casefold(), want.casefold()


def _full_date(value: str) -> str:
    """2019 -> 2019-01-01, 2019-02 -> 2019-02-01: a partial date compares as its first day."""
    y, m, d = _DATE.fullmatch(value).groups()
    return f"{y}-{m or '01'}-{d or '01'}"


@dataclass(frozen=True)
class Filter:
    """All conditions must hold (AND)."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def __str__(self) -> str:
        return " AND ".join(map(str, self.conditions))

    def matches(self, meta: dict) -> bool:
        return all(c.test(meta) for c in self.conditions)

    def check_keys(self, known: set[str]) -> None:
        """Unknown keys are an error (a typo would otherwise silently match nothing)."""
        for c in self.conditions:
            if c.key not in known:
                extra = sorted(known - set(BUILTIN))
                raise RagError(f"unknown filter key {c.key!r}; use one of {', '.join(BUILTIN)}"
                               + (f" or a front-matter key of the documents ({', '.join(extra[:12])})" if extra else ""))


def parse(spec) -> Filter:
    """A Filter from None, a Filter, 'key<op>value' strings (one or a list) or a dict
    {key: value} where value is 'text' (=), '>=2019' (an operator first) or a list of those."""
    if spec is None or isinstance(spec, Filter):
        return spec or Filter()
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, dict):
        items = []
        for key, values in spec.items():
            for v in values if isinstance(values, (list, tuple)) else [values]:
                v = str(v)
                items.append(f"{key}{'' if v.startswith(OPERATORS) else '='}{v}")
        spec = items
    if not isinstance(spec, (list, tuple)):
        raise RagError(f"filters must be 'key=value' strings or a dict, not {type(spec).__name__}; {EXAMPLE}")
    return Filter(tuple(parse_one(str(s)) for s in spec))


def parse_one(text: str) -> Condition:
    m = _SPEC.fullmatch(text)
    if not m:
        raise RagError(f"filter {text!r} is not KEY<op>VALUE; {EXAMPLE}")
    key, op, value = m.group(1).lower(), m.group(2), m.group(3)
    if value.startswith(("=", "<", ">")):
        raise RagError(f"filter {text!r} has an unknown operator {op + value[0]!r}; use one of {' '.join(OPERATORS)}")
    if not value:
        raise RagError(f"filter {text!r} has no value; {EXAMPLE}")
    if key == "date" and not (op in ("=", "!=") and _GLOB.search(value)):
        m = _DATE.fullmatch(value)
        if not m or not (m.group(2) is None or "01" <= m.group(2) <= "12") or \
                not (m.group(3) is None or "01" <= m.group(3) <= "31"):
            raise RagError(f"filter {text!r}: {value!r} is not a date; use YYYY-MM-DD, YYYY-MM or YYYY")
    if key == "pages" and not value.isdigit():
        raise RagError(f"filter {text!r}: pages is a whole number, not {value!r}")
    return Condition(key, op, value)


def metadata(doc, path: str | None = None) -> dict:
    """What a document can be filtered on (`path` given when the id is not the path: merged collections)."""
    meta = doc.metadata or {}
    path = doc.id if path is None else path
    out = {k: v if isinstance(v, (int, float)) else str(v) for k, v in meta.items()
           if k not in INTERNAL and not isinstance(v, (list, dict))}
    date = _DATE.match(str(meta.get("date", "")).strip())
    out.update(path=path, type=PurePosixPath(path).suffix.lstrip(".").lower(), title=doc.title,
               author=str(meta.get("author", "")),
               date=(_full_date(date.group(0)) if date else "") or str(meta.get("modified", "")),
               pages=len(meta.get("page_starts") or [None]))
    return out


def keys(index) -> set[str]:
    """The keys a filter on this index may use."""
    if "filter_keys" not in index.derived:
        known = set(BUILTIN)
        for doc in _docs(index):
            known.update(k for k, v in (doc[0].metadata or {}).items() if k not in INTERNAL
                         and not isinstance(v, (list, dict)))
        index.derived["filter_keys"] = known
    return index.derived["filter_keys"]


def _docs(index):
    """(document, its path) for every document; a merged index names its parts' documents."""
    parts = index.derived.get("parts")
    if not parts:
        return [(d, d.id) for d in index.documents.values()]
    return [(d, d.id) for _name, part, _off in parts for d in part.documents.values()]


def allowed_chunks(index, flt: Filter) -> np.ndarray:
    """A bool per chunk of the index: may this chunk be returned under the filter (kept per index for
    the last few filters: a chat asks many questions under one filter)."""
    cache = index.derived.setdefault("filter_masks", {})
    if flt not in cache:
        if len(cache) >= 32:
            cache.pop(next(iter(cache)))
        cache[flt] = _mask(index, flt)
    return cache[flt]


def _mask(index, flt: Filter) -> np.ndarray:
    flt.check_keys(keys(index))
    parts = index.derived.get("parts") or [("", index, 0)]
    masks = []
    for _name, part, _off in parts:
        ok = {doc_id: flt.matches(metadata(doc)) for doc_id, doc in part.documents.items()}
        masks.append(np.fromiter((ok[c.doc_id] for c in part.chunks), dtype=bool, count=len(part.chunks)))
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


class Restricted:
    """An index seen through a filter: everything as the index has it, plus `allowed` (a chunk mask)
    that retrieval applies to every ranking before it is cut."""

    def __init__(self, index, allowed: np.ndarray, flt: Filter):
        self._index, self.allowed, self.filter = index, allowed, flt

    def __getattr__(self, name):
        return getattr(self._index, name)


def restrict(index, spec):
    """The index itself without a filter, else a `Restricted` view of it."""
    flt = parse(spec)
    if not flt:
        return index
    return Restricted(index, allowed_chunks(index, flt), flt)
