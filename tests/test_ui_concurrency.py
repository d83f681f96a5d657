"""Ten gradio_client sessions at once: each gets its own, correct answer and its own conversation."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.real_model

# (question, a phrase its answer must contain): close to the wording of the bundled article, so any
# sound retriever answers them; the point here is concurrency, not retrieval quality
CASES = [
    ("What has Made in China 2025 aimed to transform China into at its core?", "manufacturing superpower"),
    ("Which 1960s-era program does the state-driven approach to innovation continue the legacy of?",
     "Two Bombs, One Satellite"),
    ("What is the intended endpoint and ultimate destination for these plans?", "2049"),
    ("In which area do Chinese policymakers candidly recognize continued shortcomings?", "integrated circuits"),
    ("Which city plans to create a Quantum Valley?", "Jinan"),
    ("Which leading companies are the new national champions?", "Baidu"),
    ("What type of passports are Huawei's senior executives issued?", "public affairs"),
    ("How many megaprojects has China launched through the National Science and Technology Innovation Plan?",
     "megaprojects"),
    ("What is asymmetric technology also called?", "trump card"),
    ("Which venture capitalist declared that data is the new oil?", "Kai-Fu Lee"),
]


def test_ten_sessions_at_once_get_their_own_answers(ui_url, ui_rag):
    from gradio_client import Client

    # each question asked alone first: the reference answers, each with its own phrase
    reference = {q: ui_rag.ask(q) for q, _ in CASES}
    for q, phrase in CASES:
        assert phrase in reference[q].text, q
    clients = [Client(ui_url, verbose=False) for _ in CASES]

    def run(i):
        started = time.perf_counter()
        chat, _sources, answer, _ = clients[i].predict(CASES[i][0], 5, "hybrid", "extractive", api_name="/ask")
        return chat, answer, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(len(CASES)) as pool:
        results = list(pool.map(run, range(len(CASES))))
    wall = time.perf_counter() - started
    latencies = sorted(r[2] for r in results)
    print(f"\n10 concurrent sessions: wall {wall:.2f}s, latency median {latencies[4]:.2f}s, max {latencies[-1]:.2f}s")

    for (question, phrase), (chat, answer, _) in zip(CASES, results):
        assert answer["question"] == " ".join(question.split())
        assert phrase in answer["answer"], (question, answer["answer"][:200])
        assert answer["answer"] == reference[question].text  # same as when asked alone
        assert [(c["start"], c["end"]) for c in answer["citations"]] == \
            [(c.start, c.end) for c in reference[question].citations]
        assert chat.count('class="msg user"') == 1  # only this session's own question
        others = [q for q, _ in CASES if q != question]
        assert not any(q[:40].replace("'", "&#x27;") in chat for q in others)
    # all ten ran side by side, not one after another (each streams for ~0.5 s)
    assert wall < sum(latencies) * 0.6


def test_load_fifty_concurrent_chat_requests(ui_url, ui_rag):
    """Bounded loopback load: 50 chat requests at once (5 per question), all answered correctly."""
    from gradio_client import Client

    reference = {q: ui_rag.ask(q).text for q, _ in CASES}
    jobs = [CASES[i % len(CASES)] for i in range(50)]
    clients = [Client(ui_url, verbose=False) for _ in range(10)]

    def run(i):
        started = time.perf_counter()
        _chat, _sources, answer, _ = clients[i % 10].predict(jobs[i][0], 5, "hybrid", "extractive", api_name="/ask")
        return answer, time.perf_counter() - started

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(run, range(50), timeout=300))
    lat = sorted(r[1] for r in results)
    p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95) - 1]
    print(f"\n50 concurrent chat requests: p50 {p50:.2f}s, p95 {p95:.2f}s, max {lat[-1]:.2f}s")
    for (question, phrase), (answer, _) in zip(jobs, results):
        assert phrase in answer["answer"] and answer["answer"] == reference[question], question
