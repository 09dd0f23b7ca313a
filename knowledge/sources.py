"""Documentation sources: the sources file (YAML) and ad hoc --path arguments."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from .publish import PublishError, check_base_url

SOURCE_KEYS = {"name", "product", "module", "sitemap", "start_url", "prefix", "folder", "urls",
               "module_from_subdir", "max_pages", "allow_private_network", "articles", "public_base_url"}
# `articles: database`: the articles managers approved in the console (helpdesk.services.articles),
# read from the help desk's database (DATABASE_URL), each cited with its console URL
ARTICLE_STORES = ("database",)
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class SourcesError(ValueError):
    """The sources file is missing or malformed."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    product: str | None = None
    module: str | None = None
    sitemap: str | None = None
    start_url: str | None = None
    prefix: str | None = None
    folder: Path | None = None
    urls: tuple[str, ...] = field(default_factory=tuple)
    module_from_subdir: bool = False
    max_pages: int | None = None
    allow_private_network: bool = False  # this source's hosts may resolve to private addresses
    articles: str | None = None  # "database": the console's approved articles
    # folder sources: where the vendor publishes these pages (citations: base + relative path,
    # .md -> .html); without it Atende publishes the pages itself (knowledge/publish.py)
    public_base_url: str | None = None

    @cached_property
    def hosts(self) -> frozenset[str]:
        """The hosts of the source's own URLs: the only hosts its ingestion may request."""
        from .netguard import Refused, url_host

        found = set()
        for url in (self.sitemap, self.start_url, self.prefix, *self.urls):
            if url:
                try:
                    found.add(url_host(url))
                except Refused:
                    pass  # an unparsable URL is refused when it is fetched
        return frozenset(found)


def _url(value: object, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://", value):
        raise SourcesError(f"{where}: expected an http(s) URL, got {value!r}")
    return value


def _flag(value: object, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise SourcesError(f"{where}: '{key}' must be true or false, got {value!r}")
    return value


def load_sources(path: Path) -> list[SourceSpec]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourcesError(f"sources file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: invalid YAML: {exc}") from exc
    items = raw.get("sources") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise SourcesError(f"{path}: expected a top-level 'sources:' list")
    specs: list[SourceSpec] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"{path}: sources[{i}]"
        if not isinstance(item, dict):
            raise SourcesError(f"{where}: expected a mapping")
        unknown = set(item) - SOURCE_KEYS
        if unknown:
            raise SourcesError(f"{where}: unknown keys {sorted(unknown)}")
        name = str(item.get("name") or f"source-{i + 1}")
        if name in names:
            raise SourcesError(f"{where}: duplicate name {name!r}")
        names.add(name)
        product = item.get("product")
        if product is not None and not _CODE.match(str(product)):
            raise SourcesError(f"{where}: product must be a lowercase code like 'erp', got {product!r}")
        urls = item.get("urls") or []
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list):
            raise SourcesError(f"{where}: 'urls' must be a list")
        folder = item.get("folder")
        folder_path = None
        if folder:
            folder_path = Path(str(folder)).expanduser()
            if not folder_path.is_absolute():
                folder_path = (path.parent / folder_path).resolve()
        articles = item.get("articles")
        if articles is not None and articles not in ARTICLE_STORES:
            raise SourcesError(f"{where}: 'articles' must be one of {list(ARTICLE_STORES)}, got {articles!r}")
        base_url = item.get("public_base_url")
        if base_url is not None:
            if not folder_path:
                raise SourcesError(f"{where}: 'public_base_url' applies to folder sources only")
            try:
                base_url = check_base_url(base_url, "'public_base_url'")
            except PublishError as exc:
                raise SourcesError(f"{where}: {exc}") from exc
        spec = SourceSpec(
            name=name,
            product=str(product) if product else None,
            module=str(item["module"]) if item.get("module") else None,
            sitemap=_url(item["sitemap"], where) if item.get("sitemap") else None,
            start_url=_url(item["start_url"], where) if item.get("start_url") else None,
            prefix=_url(item["prefix"], where) if item.get("prefix") else None,
            folder=folder_path,
            urls=tuple(_url(u, where) for u in urls),
            module_from_subdir=bool(item.get("module_from_subdir", False)),
            max_pages=int(item["max_pages"]) if item.get("max_pages") else None,
            allow_private_network=_flag(item.get("allow_private_network", False), "allow_private_network", where),
            articles=articles,
            public_base_url=base_url,
        )
        if not (spec.sitemap or spec.start_url or spec.folder or spec.urls or spec.articles):
            raise SourcesError(f"{where}: needs at least one of sitemap, start_url, folder, urls, articles")
        specs.append(spec)
    return specs


def source_for_path(value: str, product: str | None = None) -> SourceSpec:
    """--path DIR_OR_URL: a folder, a sitemap URL (*.xml) or a start URL crawled within its folder."""
    if re.match(r"^https?://", value):
        if value.split("?")[0].endswith(".xml"):
            return SourceSpec(name=value, product=product, sitemap=value)
        return SourceSpec(name=value, product=product, start_url=value)
    folder = Path(value).expanduser().resolve()
    if not folder.exists():
        raise SourcesError(f"path not found: {value}")
    return SourceSpec(name=str(folder), product=product, folder=folder)
