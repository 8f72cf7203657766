"""The documentation generated from code is current."""

from cci_harden.controls.docs import controls_markdown

from .conftest import REPO


def test_controls_table_is_generated_from_the_catalogue():
    assert (REPO / "docs" / "controls.md").read_text() == controls_markdown(), (
        "docs/controls.md is stale: run python -m cci_harden.controls.docs > docs/controls.md"
    )
