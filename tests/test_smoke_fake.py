def test_tiny_pipeline(tiny_rag):
    hits = tiny_rag.search("Who lays eggs in a bee colony?", k=2)
    assert hits[0].chunk.doc_id == "bees.txt"
    ans = tiny_rag.ask("Who lays eggs in a bee colony?")
    assert not ans.refused and "queen" in ans.text


def test_adjacent_chunks_merge_and_duplicates_collapse(tmp_path, fake_embedder):
    from rag.config import load_settings
    from rag.pipeline import Rag

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    para = "Glaciers carve valleys slowly over many centuries of ice movement. "
    (corpus / "ice.txt").write_text(para * 12)
    (corpus / "copy.txt").write_text("Volcanic islands rise from the sea floor.\n\n" + "Glaciers carve valleys slowly. " * 3)
    (corpus / "copy2.txt").write_text("Volcanic islands rise from the sea floor.\n\n" + "Glaciers carve valleys slowly. " * 3)
    s = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", chunk_size="24", chunk_overlap="4")
    rag = Rag(s, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    hits = rag.search("glaciers carve valleys", k=5)
    ice = [h for h in hits if h.chunk.doc_id == "ice.txt"]
    doc = rag.index.documents["ice.txt"].text
    assert len(ice) == 1 and ice[0].chunk.end - ice[0].chunk.start > 100  # neighbours merged into one passage
    assert doc[ice[0].chunk.start:ice[0].chunk.end] == ice[0].chunk.text
    assert len({h.chunk.text for h in hits}) == len(hits)  # the identical copy is collapsed
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
