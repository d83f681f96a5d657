def test_tiny_pipeline(tiny_rag):
    hits = tiny_rag.search("Who lays eggs in a bee colony?", k=2)
    assert hits[0].chunk.doc_id == "bees.txt"
    ans = tiny_rag.ask("Who lays eggs in a bee colony?")
    assert not ans.refused and "queen" in ans.text
