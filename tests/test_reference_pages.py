"""The docs' reference pages are generated from the code (``segmentation.cli.reference``) and must be current:
a key added to the configuration or a flag added to the command line fails here until ``make docs`` is run."""

from __future__ import annotations

from pathlib import Path

from segmentation.cli import reference
from segmentation.cli.parser import build_parser
from segmentation.config import JobConfig

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "docs" / "reference"


def _stale(name: str, _text: str) -> str:
    return f"docs/reference/{name} is stale: run `make docs` (or python -m segmentation.cli.reference docs/reference)"


def test_the_configuration_reference_is_current_and_lists_every_key() -> None:
    page = reference.configuration_page()
    assert (PAGES / "configuration.md").read_text(encoding="utf-8") == page, _stale("configuration.md", page)

    def leaves(values: dict, prefix: str = "") -> list[str]:
        out = []
        for key, value in values.items():
            dotted = f"{prefix}.{key}" if prefix else key
            nested = isinstance(value, dict) and key != "conf"  # spark.conf is a mapping, one key
            out += leaves(value, dotted) if nested else [dotted]
        return out

    keys = leaves(JobConfig().to_dict())
    assert len(keys) > 70
    assert [k for k in keys if f"| `{k}` |" not in page] == []
    assert "| `history.min_shared_customers` | number |" in page
    assert "| `model.k_max` | integer | `10` |" in page


def test_the_cli_reference_is_current_and_shows_every_command() -> None:
    page = reference.cli_page()
    assert (PAGES / "cli.md").read_text(encoding="utf-8") == page, _stale("cli.md", page)
    for command in ("run", "score", "config show", "config check", "runs", "report", "history", "generate"):
        assert f"## `segmentation {command}`" in page
    assert "--as-of YYYY-MM-DD" in page and "exit codes:" in page


def test_every_command_has_a_description_examples_and_its_flags_say_what_they_do() -> None:
    parser = build_parser()
    for title, each in reference._parsers(parser, "segmentation"):
        text = each.format_help()
        assert each.description, title
        if title not in ("segmentation config",):
            assert "examples:" in text, title
        undocumented = [
            a.dest for a in each._actions if a.option_strings and not a.help and a.dest not in ("help", "version")
        ]
        assert undocumented == [], title
    run_help = dict(reference._parsers(parser, "segmentation"))["segmentation run"].format_help()
    assert "(default: main)" not in run_help  # run ids come from the config, not a flag default
    generate_help = " ".join(
        dict(reference._parsers(parser, "segmentation"))["segmentation generate"].format_help().split()
    )
    assert "(default: 3000)" in generate_help and "(default: 7)" in generate_help
