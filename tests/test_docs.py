"""Generated reference docs stay equal to what their owners generate (regenerate with the command named)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _config_doc() -> str:
    from trainer.config_doc import config_markdown
    return config_markdown()


def _rules_doc() -> str:
    from analysis.catalog_doc import catalog_page
    return catalog_page()


@pytest.mark.parametrize("path, generate, command", [
    ("docs/config.md", _config_doc, "python -m trainer.config_doc > docs/config.md"),
    ("docs/rules.md", _rules_doc, "python -m analysis.catalog_doc > docs/rules.md"),
])
def test_generated_doc_is_current(path, generate, command):
    assert (ROOT / path).read_text() == generate(), f"{path} is stale: run `{command}`"


def test_config_doc_names_every_schema_key_with_its_default():
    import dataclasses

    from trainer import config

    text = _config_doc()
    for group, options in config.SCHEMAS.items():
        for schema in set(options.values()):
            for f in dataclasses.fields(schema):
                if f.name != "name":
                    assert f"| `{group}.{f.name}` |" in text
    # a documented meaning is read from the schema's comment, inherited options included
    assert "| `optimizer.lr` | float | `0.05` | peak learning rate" in text
