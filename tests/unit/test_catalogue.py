"""fal's catalogue: pages parsed as fal's model search answers them, stored whole on each
backend, and the router's resolution of shorthand paths against it."""

from __future__ import annotations

import pytest

from nxs.catalogue.index import EndpointIndex
from nxs.catalogue.sync import catalogue_ids, parse_page, replace_catalogue
from nxs.errors import UpstreamFailed
from nxs.store.database import Database

OWNERS = frozenset({"fal-ai", "xai", "workflows", "comfy"})
CATALOGUE = ("fal-ai/flux/dev", "fal-ai/flux/dev/image-to-image", "moonvalley/marey/t2v")


def resolved(path: str, catalogue: tuple[str, ...] = CATALOGUE) -> str:
    index = EndpointIndex(OWNERS)
    index.load(catalogue)
    return "/".join(index.resolve(path.split("/")))


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("flux/dev", "fal-ai/flux/dev"),  # the NXS API guide's example
        ("flux/dev/image-to-image", "fal-ai/flux/dev/image-to-image"),
        ("moonvalley/marey/t2v", "moonvalley/marey/t2v"),  # an owner from the catalogue
        ("moonvalley/other-app", "moonvalley/other-app"),  # known owner, unknown app: kept
        ("xai/grok-imagine-image", "xai/grok-imagine-image"),  # a configured owner
        ("some-model/v2", "fal-ai/some-model/v2"),  # neither: fal-ai/ in front
        ("flux/dev/requests/abc/status", "fal-ai/flux/dev/requests/abc/status"),
        ("workflows/me/flow", "workflows/me/flow"),
    ],
)
def test_a_path_resolves_to_the_longest_known_endpoint(path: str, endpoint: str) -> None:
    assert resolved(path) == endpoint


def test_without_a_catalogue_the_configured_owners_decide() -> None:
    assert resolved("moonvalley/marey/t2v", ()) == "fal-ai/moonvalley/marey/t2v"
    assert resolved("xai/grok-imagine-image", ()) == "xai/grok-imagine-image"


def test_a_page_yields_its_ids_and_the_next_cursor() -> None:
    body = {
        "models": [
            {"endpoint_id": "fal-ai/flux/dev", "metadata": {"category": "text-to-image"}},
            {"endpoint_id": "no-slash"},
            {"metadata": {}},
        ],
        "next_cursor": "Mg==",
        "has_more": True,
    }
    entries, cursor = parse_page(body)
    assert [(e.endpoint, e.category, e.status) for e in entries] == [
        ("fal-ai/flux/dev", "text-to-image", "active")
    ]
    assert cursor == "Mg=="
    assert parse_page({"models": [], "next_cursor": None, "has_more": False}) == ([], None)
    with pytest.raises(UpstreamFailed):
        parse_page({"error": {"type": "server_error"}})


def test_a_sync_replaces_the_stored_catalogue(db: Database) -> None:
    first, _ = parse_page({"models": [{"endpoint_id": eid} for eid in CATALOGUE]})
    replace_catalogue(db, first)
    assert sorted(catalogue_ids(db)) == sorted(CATALOGUE)
    version = db.fetch_one("SELECT value FROM store_version")
    second, _ = parse_page({"models": [{"endpoint_id": "fal-ai/any-llm"}]})
    replace_catalogue(db, second)
    assert catalogue_ids(db) == ["fal-ai/any-llm"]
    after = db.fetch_one("SELECT value FROM store_version")
    assert version is not None and after is not None and after["value"] > version["value"]
