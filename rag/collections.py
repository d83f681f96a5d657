"""Collections: named corpora, each with its own index.

    default          corpus/ + index/ (RAG_CORPUS_DIR, RAG_INDEX_DIR): a single-corpus install unchanged
    NAME             collections/NAME/corpus + collections/NAME/index (RAG_COLLECTIONS_DIR), made by `create`
    NAME in toml     collections/collections.toml: [NAME] corpus = "...", index = "..." (the folders are yours)

Each has its eval set: eval/gold.jsonl for default, collections/NAME/gold.jsonl otherwise.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import NotFound, RagError, why

DEFAULT = "default"
TOML = "collections.toml"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
OWN_FILES = ("corpus", "index", "gold.jsonl", "baseline.json", "candidates.jsonl", "reports")  # what delete removes


class UnknownCollection(NotFound):
    """No collection has this name (the REST API answers 404)."""


@dataclass(frozen=True)
class Collection:
    name: str
    corpus_dir: Path
    index_dir: Path
    gold: Path
    configured: bool = False  # named in collections.toml: its folders belong to the user, never deleted

    def describe(self) -> dict:
        """Name, folders and what its index holds (from the manifest; nothing is loaded)."""
        import json

        info = {"name": self.name, "corpus_dir": str(self.corpus_dir), "index_dir": str(self.index_dir),
                "documents": None, "chunks": None, "built_at": None}
        try:
            m = json.loads((self.index_dir / "current" / "manifest.json").read_text(encoding="utf-8"))
            info.update(documents=len(m.get("documents") or ()), chunks=m.get("count"), built_at=m.get("built_at"))
        except (OSError, ValueError):
            pass
        return info


def names(settings: Settings) -> list[str]:
    """The collections the settings ask for (RAG_COLLECTION / --collection, comma-separated); [] = default."""
    out = []
    for name in str(settings.collection or "").split(","):
        name = name.strip()
        if name and name not in out:
            out.append(name)
    return out


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RagError(f"collection name {name!r} is not valid; use 1-48 lowercase letters, digits, - or _, "
                       f"starting with a letter or digit")
    return name


def _configured(settings: Settings) -> dict[str, Collection]:
    path = Path(settings.collections_dir) / TOML
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RagError(f"{path} is unreadable ({why(e)}); fix or remove it") from None
    out = {}
    for name, entry in data.items():
        check_name(name)
        if name == DEFAULT or not isinstance(entry, dict) or not isinstance(entry.get("corpus"), str):
            raise RagError(f"{path}: [{name}] needs corpus = \"folder\" (and may set index, gold); "
                           f"'{DEFAULT}' is corpus/ + index/ and cannot be redefined")
        here = path.parent

        def folder(key, fallback):
            return here / Path(str(entry.get(key) or fallback)).expanduser()

        out[name] = Collection(name, folder("corpus", ""), folder("index", Path(name) / "index"),
                               folder("gold", Path(name) / "gold.jsonl"), configured=True)
    return out


def find(settings: Settings, name: str) -> Collection:
    """The collection called `name`; an unknown one is a one-line error."""
    if name == DEFAULT:
        return Collection(DEFAULT, Path(settings.corpus_dir), Path(settings.index_dir), Path("eval/gold.jsonl"))
    check_name(name)
    configured = _configured(settings)
    if name in configured:
        return configured[name]
    home = Path(settings.collections_dir) / name
    if (home / "corpus").is_dir():
        return Collection(name, home / "corpus", home / "index", home / "gold.jsonl")
    known = ", ".join(c.name for c in every(settings))
    raise UnknownCollection(f"unknown collection {name!r}; known: {known}; "
                            f"create it with `rag collections create {name}`")


def every(settings: Settings) -> list[Collection]:
    """default first, then every other collection by name."""
    found = dict(_configured(settings))
    root = Path(settings.collections_dir)
    if root.is_dir():
        for home in root.iterdir():
            if home.name not in found and _NAME.fullmatch(home.name) and (home / "corpus").is_dir():
                found[home.name] = Collection(home.name, home / "corpus", home / "index", home / "gold.jsonl")
    found.pop(DEFAULT, None)
    return [find(settings, DEFAULT)] + [found[n] for n in sorted(found)]


def settings_for(settings: Settings, name: str) -> Settings:
    """The Settings of one collection: its corpus and index folders (and its own Milvus collection)."""
    c = find(settings, name)
    changes = {"corpus_dir": c.corpus_dir, "index_dir": c.index_dir, "collection": name}
    if name != DEFAULT and settings.vector_store != "faiss":
        from .types import content_hash

        changes["milvus_collection"] = f"{settings.milvus_collection}_{name.replace('-', '_')}_{content_hash(name)[:6]}"
    return settings.replace(**changes)


def create(settings: Settings, name: str) -> Collection:
    check_name(name)
    if name == DEFAULT or name in _configured(settings):
        raise RagError(f"collection {name!r} already exists; pick another name")
    home = Path(settings.collections_dir) / name
    if home.exists():
        raise RagError(f"{home} already exists; pick another name or remove that folder")
    try:
        (home / "corpus").mkdir(parents=True)
    except OSError as e:
        raise RagError(f"cannot create {home}/corpus ({why(e)}); check RAG_COLLECTIONS_DIR") from None
    return find(settings, name)


def delete(settings: Settings, name: str) -> list[Path]:
    """Remove a collection made by `create`: only its own files (OWN_FILES) in collections/NAME, then
    the folder if nothing else is left in it. Returns what was removed."""
    c = find(settings, name)
    if name == DEFAULT:
        raise RagError("the default collection is corpus/ + index/ and cannot be deleted")
    if c.configured:
        raise RagError(f"collection {name!r} is defined in {Path(settings.collections_dir) / TOML} with folders "
                       f"of your own; remove its entry there (its files are not deleted)")
    home = Path(settings.collections_dir) / name
    if home.is_symlink():
        raise RagError(f"{home} is a link; remove the link yourself (its target is not deleted)")
    from .versions import locked

    removed = []
    with locked(home / "index"):  # not while a `rag index` is writing it
        for own in OWN_FILES:
            path = home / own
            if path.is_symlink() or path.is_file():
                path.unlink()  # a link goes, never what it points to
            elif path.is_dir():
                shutil.rmtree(path)  # does not follow links inside
            else:
                continue
            removed.append(path)
    try:
        home.rmdir()  # only when empty: files the product did not make stay
        removed.append(home)
    except OSError:
        pass
    return removed


def check_compatible(manifests: dict[str, dict]) -> None:
    """Collections searched together must share the model and the settings that shape their vectors."""
    from .manifest import manifest_params

    if len(manifests) < 2:
        return
    keys = [k for k in manifest_params(Settings(), 0, "faiss") if k != "vector_store"]
    first = next(iter(manifests))
    for name, m in manifests.items():
        diff = [k for k in keys if m.get(k) != manifests[first].get(k)]
        if diff:
            shown = ", ".join(f"{k} {manifests[first].get(k)!r} vs {m.get(k)!r}" for k in diff)
            raise RagError(f"collections {first!r} and {name!r} were built with different settings ({shown}); "
                           f"search them separately or run `rag index --rebuild --collection {name}`")
