from pathlib import Path

import pytest

from rag.config import Settings, load_settings
from rag.errors import RagError


def test_env_overrides_defaults_and_flags_override_env():
    s = load_settings(env={"RAG_TOP_K": "7", "RAG_MODE": "bm25", "RAG_EMBED_TITLES": "false"})
    assert (s.top_k, s.mode, s.embed_titles) == (7, "bm25", False)
    s = load_settings(env={"RAG_TOP_K": "7"}, top_k="3")
    assert s.top_k == 3
    assert load_settings(env={}) == Settings()
    assert load_settings(env={"RAG_INDEX_DIR": "/x/y"}).index_dir == Path("/x/y")


@pytest.mark.parametrize("env,needle", [
    ({"RAG_TOP_K": "many"}, "RAG_TOP_K='many'"),
    ({"RAG_MODE": "fuzzy"}, "fuzzy"),
    ({"RAG_BACKEND": "llm"}, "RAG_LLM_BASE_URL"),
    ({"RAG_CHUNK_OVERLAP": "500"}, "chunk_overlap=500"),
    ({"RAG_EMBED_TITLES": "maybe"}, "RAG_EMBED_TITLES"),
])
def test_bad_config_is_one_line_naming_value_and_fix(env, needle):
    with pytest.raises(RagError) as e:
        load_settings(env=env)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_readme_documents_every_setting():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    from dataclasses import fields

    missing = [f.name for f in fields(Settings) if f"RAG_{f.name.upper()}" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
