"""The README and docs/ guides: every config option is documented, every relative link resolves."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG_GROUPS = [
    "source",
    "task",
    "model",
    "clean",
    "mlflow",
    "evaluation",
    "experiment",
    "labeling",
    "hydra/launcher",
    "hydra/sweeper",
]
# [text](target): the target up to whitespace or the closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def doc_files(root: Path) -> list[Path]:
    """README.md and every guide under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def undocumented_options(root: Path) -> list[str]:
    """`group/stem` of every option file whose stem never appears in backticks in the docs."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_files(root))
    missing = []
    for group in CONFIG_GROUPS:
        for option in sorted((root / "configs" / group).glob("*.yaml")):
            if f"`{option.stem}`" not in text:
                missing.append(f"{group}/{option.stem}")
    return missing


def broken_links(root: Path) -> list[str]:
    """`file: target` of every relative link whose file does not exist."""
    broken = []
    for doc in doc_files(root):
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http(s), mailto, ... and links within the page
            path = target.split("#", 1)[0]
            if not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(root)}: {target}")
    return broken


@pytest.mark.parametrize("group", CONFIG_GROUPS)
def test_config_group_exists(group: str) -> None:
    assert sorted((ROOT / "configs" / group).glob("*.yaml")), f"configs/{group} has no options"


def test_every_config_option_is_documented() -> None:
    assert undocumented_options(ROOT) == []


def test_every_relative_link_resolves() -> None:
    assert broken_links(ROOT) == []


def test_guides_exist_and_are_linked_from_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guides = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert guides, "no guides under docs/"
    for name in guides:
        assert f"(docs/{name})" in readme, f"README does not link docs/{name}"


def make_tree(root: Path, readme: str, guide: str) -> Path:
    """A minimal repository: one option per config group, a README and one guide."""
    for group in CONFIG_GROUPS:
        folder = root / "configs" / group
        folder.mkdir(parents=True)
        (folder / f"opt_{group.replace('/', '_')}.yaml").write_text("{}\n")
    (root / "docs").mkdir()
    (root / "README.md").write_text(readme)
    (root / "docs" / "guide.md").write_text(guide)
    return root


def test_checks_catch_a_missing_option_and_a_broken_link(tmp_path: Path) -> None:
    names = " ".join(f"`opt_{g.replace('/', '_')}`" for g in CONFIG_GROUPS)
    root = make_tree(tmp_path, f"{names}\n[guide](docs/guide.md)\n", "[back](../README.md#top)\n")
    assert undocumented_options(root) == []
    assert broken_links(root) == []

    # A fake option nobody documented, and a link to a guide that does not exist.
    (root / "configs" / "model" / "fake_option.yaml").write_text("{}\n")
    (root / "docs" / "guide.md").write_text("[gone](missing.md) `fake_option ` fake_option\n")
    assert undocumented_options(root) == ["model/fake_option"]
    assert broken_links(root) == ["docs/guide.md: missing.md"]


def unlisted_modules(root: Path) -> list[str]:
    """Modules under src/newsclf that the repository layout of docs/own-articles.md does not
    name (cli modules by their command name, package __init__ files of labelling aside)."""
    guide = (root / "docs" / "own-articles.md").read_text(encoding="utf-8")
    layout = guide.split("## Repository layout", 1)[-1]
    package = root / "src" / "newsclf"
    missing = []
    for module in sorted(package.rglob("*.py")):
        in_cli = module.parent.name == "cli"
        if module.name == "__init__.py" and not in_cli:
            continue
        name = module.stem if in_cli and module.name != "__init__.py" else module.name
        if name not in layout:
            missing.append(str(module.relative_to(package)))
    return missing


def test_layout_lists_every_module() -> None:
    assert unlisted_modules(ROOT) == []


def test_layout_check_fails_for_a_module_it_does_not_name(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "own-articles.md").write_text("## Repository layout\n  known.py\n")
    (tmp_path / "src" / "newsclf").mkdir(parents=True)
    for name in ("known.py", "unknown.py"):
        (tmp_path / "src" / "newsclf" / name).write_text("")
    assert unlisted_modules(tmp_path) == ["unknown.py"]
