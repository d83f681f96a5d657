"""Split Documents into token-bounded Chunks (and sentences) with exact char offsets.

langchain-text-splitters does the splitting; its output becomes our `Chunk` here and no
LangChain type leaves this module.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import deque
from functools import lru_cache
from pathlib import Path

from .errors import RagError
from .types import Chunk, Document

# A chunk is also bounded in characters: one long unknown "word" ("wombat" * 524288) is a single
# [UNK] token, so a token bound alone lets a 3 MB line through as one chunk.
CHARS_PER_TOKEN = 12
TITLE_BUDGET = 32  # tokens kept for the "title / section" prefix of the embedded text
SPECIAL_TOKENS = 2  # [CLS] and [SEP]


class Tokenizer:
    """The embedding model's own tokenizer (via `tokenizers`, no torch), for lengths."""

    def __init__(self, model_dir: Path):
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            raise RagError(f"{model_dir} has no tokenizer.json; point RAG_MODEL at a sentence-transformers model directory")
        self._tok = HFTokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.max_seq_length = _max_seq_length(Path(model_dir))

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def tail_chars(self, text: str, n_tokens: int) -> int:
        """Length in chars of the suffix of text holding its last n_tokens tokens."""
        if n_tokens <= 0 or not text:
            return 0
        offsets = self._tok.encode(text, add_special_tokens=False).offsets
        return len(text) - offsets[-n_tokens][0] if len(offsets) >= n_tokens else len(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of text that fits in max_tokens."""
        enc = self._tok.encode(text, add_special_tokens=False)
        if len(enc.ids) <= max_tokens:
            return text
        return text[: enc.offsets[max_tokens - 1][1]] if max_tokens > 0 else ""


def _max_seq_length(model_dir: Path) -> int:
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("config.json", "max_position_embeddings")):
        p = model_dir / name
        if p.is_file():
            value = json.loads(p.read_text()).get(key)
            if value:
                return int(value)
    return 512


@lru_cache(maxsize=4)
def load_tokenizer(model_dir: str) -> Tokenizer:
    return Tokenizer(Path(model_dir))


def check_budget(tokenizer: Tokenizer, chunk_size: int, embed_titles: bool) -> None:
    need = chunk_size + SPECIAL_TOKENS + (TITLE_BUDGET if embed_titles else 0)
    if need > tokenizer.max_seq_length:
        raise RagError(
            f"chunk_size={chunk_size} plus {need - chunk_size} prefix/special tokens exceeds the model's "
            f"max_seq_length={tokenizer.max_seq_length}; set RAG_CHUNK_SIZE to at most "
            f"{tokenizer.max_seq_length - need + chunk_size}"
        )


SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def chunk_document(doc: Document, tokenizer: Tokenizer, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Token-bounded chunks whose text is exactly `doc.text[start:end]`."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    # The splitter measures every piece up to three times, and tokenizing is the whole cost
    # of chunking (a 5 MB file is ~10^5 pieces): measure each distinct piece once per document.
    sizes: dict[str, int] = {}

    def count(text: str) -> int:
        n = sizes.get(text)
        if n is None:
            n = sizes[text] = tokenizer.count(text)
        return n

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=count,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    pieces = splitter.split_text(doc.text)
    spans = _replay(doc.text, count, chunk_size, chunk_overlap)
    sizes.clear()
    if [doc.text[s:e] for s, e in spans] != pieces:  # a splitter version that splits otherwise
        spans = _find(doc, pieces, tokenizer, chunk_overlap)
    chunks, max_chars = [], CHARS_PER_TOKEN * chunk_size
    for start, end in spans:
        for a, b in _cut(doc.text, start, end, max_chars):
            chunks.extend(_make_chunk(doc, s, e) for s, e in _fit(doc.text, a, b, tokenizer, chunk_size))
    return chunks


def _cut(text: str, start: int, end: int, max_chars: int):
    """Split a span into pieces of at most max_chars, at a space in the second half when there is one."""
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = cut if cut > start else start + max_chars
        b = cut
        while b > start and text[b - 1].isspace():
            b -= 1
        if b > start:
            yield start, b
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


def _replay(text: str, count, size: int, overlap: int) -> list[tuple[int, int]]:
    """Spans of the chunks the splitter above makes, by replaying its algorithm on offsets.
    Searching for each chunk's text cannot place it where text repeats ("aaaa…", ruler
    lines): offsets drift back and the end of the document lands in no chunk. Pieces are
    streamed, so a long run split into single characters costs no more memory than a chunk."""
    out: list[tuple[int, int]] = []
    current: deque = deque()  # the pieces being merged (the splitter joins them with "": 0 tokens)
    total = 0

    def emit(a: int, b: int) -> None:  # strip_whitespace; empty chunks are dropped
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))

    def feed(a: int, b: int, n: int) -> None:
        nonlocal total
        if total + n > size and current:
            emit(current[0][0], current[-1][1])
            while total > overlap or (total + n > size and total > 0):
                ca, cb = current.popleft()
                total -= count(text[ca:cb])
        current.append((a, b))
        total += n

    def flush() -> None:
        nonlocal total
        if current:
            emit(current[0][0], current[-1][1])
        current.clear()
        total = 0

    def split(lo: int, hi: int, separators: list[str]) -> None:
        sep, rest = "", []
        for i, s in enumerate(separators):
            if not s or text.find(s, lo, hi) != -1:
                sep, rest = s, separators[i + 1:] if s else []
                break
        for a, b in _pieces(text, lo, hi, sep):
            n = count(text[a:b])
            if n < size:
                feed(a, b, n)
                continue
            flush()
            if rest:
                split(a, b, rest)
            else:
                out.append((a, b))
        flush()

    split(0, len(text), SEPARATORS)
    return out


def _pieces(text: str, lo: int, hi: int, sep: str):
    """text[lo:hi] cut after each separator (keep_separator="end"); "" cuts every char."""
    if not sep:
        yield from ((i, i + 1) for i in range(lo, hi))
        return
    a = lo
    while (j := text.find(sep, a, hi)) != -1:
        yield a, j + len(sep)
        a = j + len(sep)
    if a < hi:
        yield a, hi


def _find(doc: Document, pieces: list[str], tokenizer: Tokenizer, chunk_overlap: int) -> list[tuple[int, int]]:
    """Fallback: place each piece by searching for it near the end of the previous one."""
    spans, prev_start, prev_end = [], -1, 0
    for piece in pieces:
        # The next chunk overlaps the previous one by at most `chunk_overlap` tokens, so it
        # starts no earlier than that many tokens (plus one of slack) before the previous end.
        lo = prev_end - tokenizer.tail_chars(doc.text[max(0, prev_start):prev_end], chunk_overlap + 1 if chunk_overlap else 0)
        start = -1
        for cursor in (max(prev_start + 1, lo), prev_start + 1, 0):
            start = doc.text.find(piece, cursor)
            if start != -1:
                break
        if start == -1:
            raise RagError(f"chunker lost the offsets of a chunk in {doc.id}; please report this file")
        spans.append((start, start + len(piece)))
        prev_start, prev_end = start, start + len(piece)
    return spans


def _fit(text: str, start: int, end: int, tokenizer: Tokenizer, limit: int):
    """Hard-split a span at token boundaries in the rare case the splitter overshoots."""
    while start < end:
        piece = text[start:end]
        if tokenizer.count(piece) <= limit:
            yield start, end
            return
        cut = start + len(tokenizer.truncate(piece, limit))
        space = text.rfind(" ", start + 1, cut)
        cut = space if space > start + (cut - start) // 2 else max(cut, start + 1)
        yield start, cut
        start = cut
        while start < end and text[start].isspace():
            start += 1


def _make_chunk(doc: Document, start: int, end: int) -> Chunk:
    return Chunk(
        doc_id=doc.id,
        start=start,
        end=end,
        text=doc.text[start:end],
        title=doc.title,
        section=section_at(doc, start),
        page=page_at(doc, start),
    )


def section_at(doc: Document, offset: int) -> str:
    headings = doc.metadata.get("headings") or []
    current = ""
    for pos, text in headings:
        if pos > offset:
            break
        current = text
    return current if current != doc.title else ""


def page_at(doc: Document, offset: int) -> int | None:
    starts = doc.metadata.get("page_starts")
    if not starts:
        return None
    return bisect.bisect_right(starts, offset)  # 1-based page number


def embed_text(chunk_text: str, title: str, section: str, tokenizer: Tokenizer | None, with_title: bool) -> str:
    """What is embedded and BM25-indexed: the title/section prefix (bounded) and the chunk."""
    if not with_title:
        return chunk_text
    prefix = " / ".join(p for p in (title, section) if p)
    if not prefix:
        return chunk_text
    if tokenizer is not None:
        prefix = _bounded(tokenizer, prefix)
    return f"{prefix}\n{chunk_text}"


@lru_cache(maxsize=8192)
def _bounded(tokenizer: Tokenizer, prefix: str) -> str:
    """A document's chunks share one prefix: tokenize it once, not once per chunk."""
    return tokenizer.truncate(prefix, TITLE_BUDGET - 1)


# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace, or at a line break.
_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)|\n")
_INITIALS = re.compile(r"(?:\b[A-Z]\.)*\b[A-Z]$|\b(?:Mr|Mrs|Ms|Dr|Prof|St|vs|etc|e\.g|i\.e|No|Jr|Sr|Inc|Co|Corp|Ltd)$")
MAX_SENTENCE_CHARS = 600
_LETTER = re.compile(r"[^\W_]")  # what str.isalnum() accepts, without a per-char Python loop


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans (start, end) inside text[start:end], trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    spans, s = [], start
    for m in _END.finditer(text, start, end):
        if m.group() != "\n":
            word = text[max(s, m.start() - 12): m.start()]
            if _INITIALS.search(word):
                continue
        _add_span(text, s, m.end(), spans)
        s = m.end()
    _add_span(text, s, end, spans)
    return spans


def _add_span(text: str, s: int, e: int, spans: list) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    while e - s > MAX_SENTENCE_CHARS:  # keep run-on "sentences" short enough to score
        cut = text.rfind(" ", s + MAX_SENTENCE_CHARS // 2, s + MAX_SENTENCE_CHARS)
        cut = cut if cut > s else s + MAX_SENTENCE_CHARS
        _add_span(text, s, cut, spans)  # trims a piece that ends in other whitespace ("\t ")
        s = cut
        while s < e and text[s].isspace():
            s += 1
    if e > s and _LETTER.search(text, s, e):
        spans.append((s, e))
