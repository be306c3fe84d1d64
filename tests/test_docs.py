"""The published GraphQL schema is the one the server runs, and the README's commands exist."""

from __future__ import annotations

from pathlib import Path

from api.schema import schema
from indexer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_published_schema_is_current() -> None:
    published = (ROOT / "docs" / "schema.graphql").read_text().strip()
    assert published == schema.as_str().strip(), (
        "docs/schema.graphql is stale: regenerate it with "
        "`python -c 'from api.schema import schema; print(schema.as_str())' > docs/schema.graphql`"
    )


def test_readme_lists_every_subcommand() -> None:
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"`{name}" in readme, f"README does not mention `{name}`"


async def test_readme_queries_run(db_dsn: str) -> None:
    """Every query block in the README runs without errors against a migrated database."""
    import re

    from tests.test_api_support import api_client, gql

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```graphql\n(.*?)```", readme, re.S)
    queries = [b for b in blocks if b.lstrip().startswith("{")]
    assert len(queries) >= 3
    async with api_client(db_dsn) as client:
        for query in queries:
            body = await gql(client, query)
            assert "errors" not in body, (query, body)
