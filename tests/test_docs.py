"""The documentation generated from code is current."""

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
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                count += check(field.annotation, here)
                continue
            assert f"| `{'.'.join(here)}` |" in text, here
            assert f"`CCI_{'__'.join(here).upper()}`" in text, here
            count += 1
        return count

    assert check(FleetSettings, ()) > 80
