"""The documentation generated from code is current."""

import typing

from cci_harden.controls.docs import controls_markdown

from .conftest import REPO


def test_controls_table_is_generated_from_the_catalogue():
    assert (REPO / "docs" / "controls.md").read_text() == controls_markdown(), (
        "docs/controls.md is stale: run python -m cci_harden.controls.docs > docs/controls.md"
    )


def test_settings_doc_is_generated_from_the_models():
    from cci_harden.fleet.settings_docs import settings_markdown

    assert (REPO / "docs" / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: run python -m cci_harden.fleet.settings_docs > docs/settings.md"
    )


def test_settings_doc_lists_every_field_with_its_environment_variable():
    from pydantic import BaseModel

    from cci_harden.config.settings import FleetSettings

    text = (REPO / "docs" / "settings.md").read_text()

    def check(model: type[BaseModel], path: tuple[str, ...]) -> int:
        count = 0
        for name, field in model.model_fields.items():
            here = (*path, name)
            inner = [
                a
                for a in typing.get_args(field.annotation) or (field.annotation,)
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            if inner and typing.get_origin(field.annotation) not in (list, dict):
                count += check(inner[0], here)  # a section, optional or not: its fields
                continue
            assert f"| `{'.'.join(here)}` |" in text, here
            assert f"`CCI_{'__'.join(here).upper()}`" in text, here
            count += 1
        return count

    assert check(FleetSettings, ()) > 80
