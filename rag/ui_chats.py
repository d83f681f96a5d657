"""The chat app's memory: each answered turn stored in the session's conversation, and 👍/👎
feedback on the latest answer. Plain functions (tested directly); ui.py wires them to gradio.

Session state `conversation`: {"id": stored conversation or None, "n": the latest answered turn
or None, "off": "" or why the store is unavailable}. Once the store fails, the session stops
using it (the chat goes on) and the reason is shown once.
"""

from __future__ import annotations

import logging

from .chats import ChatStore, index_version
from .config import llm_configured, tuning
from .errors import RagError
from .ui_render import esc

log = logging.getLogger(__name__)
THUMBS = {1: "\U0001f44d", -1: "\U0001f44e"}


def new_conversation() -> dict:
    return {"id": None, "n": None, "off": ""}


def user_of(request) -> str:
    """The logged-in user ("" without a login)."""
    return str(getattr(request, "username", None) or "")


def record_turn(store: ChatStore | None, state, answer, user: str = "") -> tuple[dict, str]:
    """(new state, notice): store `answer` as the next turn, creating the conversation on the first
    question. The notice is the store's one-line failure, given once; "" otherwise."""
    state = dict(state or new_conversation())
    if answer is None:  # an error turn: nothing to rate
        return dict(state, n=None), ""
    if store is None or state["off"]:
        return dict(state, n=None), ""
    try:
        if state["id"] is None:
            state["id"] = store.create(answer.question, user)
        state["n"] = store.append(state["id"], answer.to_dict(), user)
        return state, ""
    except RagError as e:
        log.warning("%s", e)
        return dict(state, n=None, off=str(e)), str(e)


def give_feedback(rag, store: ChatStore | None, state, turns, rating, comment="", user: str = "") -> tuple[str, dict]:
    """(status HTML, state): rate the latest stored answer +1 or -1, with an optional comment."""
    state = dict(state or new_conversation())
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        rating = 0
    if state["off"]:
        return _status(f"feedback not saved: {state['off']}", ok=False), state
    if store is None or state["id"] is None or state["n"] is None or rating not in (1, -1):
        why = "rate with 1 or -1" if rating not in (1, -1) else "ask a question first; feedback rates the latest answer"
        return _status(why, ok=False), state
    answered = [t for t in turns or [] if t.get("answer") is not None]
    history = [(t["question"], t["answer"].text) for t in answered[:-1]]  # as the answer was asked with
    s = rag.settings
    try:
        try:
            version = index_version(rag.index)
        except RagError:
            version = "unknown (index unavailable)"
        model = s.model + (f"; llm {s.llm_model} at {s.llm_base_url}" if llm_configured(s) else "")
        store.add_feedback(state["id"], state["n"], rating, str(comment or "")[:2000], settings=tuning(s),
                           model=model, index_version=version, history=history, user=user)
    except RagError as e:
        log.warning("%s", e)
        return _status(f"feedback not saved: {e}", ok=False), dict(state, off=str(e))
    return _status(f"{THUMBS[rating]} recorded for the latest answer; thank you"), state


def _status(text: str, ok: bool = True) -> str:
    return f'<div class="{"ok-text" if ok else "error-text"}">{"" if ok else chr(0x26a0) + " "}{esc(text)}</div>'


def feedback_row(gr):
    """The 👍/👎 buttons, comment box and status line under the chat (inside the current Blocks)."""
    with gr.Row(equal_height=True, elem_id="feedback"):
        up = gr.Button("\U0001f44d", size="sm", min_width=48, scale=0, elem_id="thumbs-up")
        down = gr.Button("\U0001f44e", size="sm", min_width=48, scale=0, elem_id="thumbs-down")
        comment = gr.Textbox(placeholder="Optional comment on the latest answer\u2026", show_label=False,
                             scale=5, max_lines=2, elem_id="feedback-comment")
    status = gr.HTML(js_on_load=None, elem_id="feedback-status")
    rating = gr.Number(visible=False)  # the API's rating input (+1 or -1)
    send = gr.Button(visible=False)  # carries the documented /feedback endpoint
    return up, down, comment, status, rating, send
