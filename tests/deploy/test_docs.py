"""docs/deploy.md and the LEADROUTER_* names of every deployment file match the code and the repo."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest

from router.cli import _parser
from router.settings import TopicSettings
from tests.deploy.manifests import (
    COMPOSE,
    DEPLOY_MD,
    DOCKERFILE,
    REPO,
    k8s_files,
    parse_cli,
    settings_field_exists,
)

_ENV_NAME = re.compile(r"\bLEADROUTER_[A-Z0-9_]*[A-Z0-9]")


def _env_sources() -> list[Path]:
    return [DOCKERFILE, COMPOSE, DEPLOY_MD, *k8s_files()]


@pytest.mark.parametrize("path", _env_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_leadrouter_variable_named_is_a_setting(path: Path) -> None:
    """Every LEADROUTER_* name in the deployment files and docs/deploy.md is a Settings field."""
    names = set(_ENV_NAME.findall(path.read_text(encoding="utf-8")))
    unknown = sorted(n for n in names if not settings_field_exists(n))
    assert not unknown, f"{path.name} names variables Settings does not read: {unknown}"


def test_settings_field_mapping() -> None:
    """The checker itself: nested names map to nested fields, sections and typos do not."""
    assert settings_field_exists("LEADROUTER_KAFKA__SASL_PASSWORD")
    assert settings_field_exists("LEADROUTER_RULEBOOK")
    assert not settings_field_exists("LEADROUTER_KAFKA")
    assert not settings_field_exists("LEADROUTER_KAFKA__SASL_PASWORD")
    assert not settings_field_exists("LEADROUTER_RULEBOOK__PATH")


# --- docs/deploy.md ------------------------------------------------------------------

_REPO_PATH = re.compile(r"(?<![\w./-])((?:deploy|docs)/[\w./-]*[\w/])")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_path_the_deploy_guide_names_exists() -> None:
    """Paths under deploy/ and docs/, and relative links, point at files in the repository."""
    text = DEPLOY_MD.read_text(encoding="utf-8")
    paths = set(_REPO_PATH.findall(text))
    assert len(paths) >= 10
    missing = sorted(p for p in paths if not (REPO / p).exists())
    links = {link for link in _LINK.findall(text) if "://" not in link}
    missing += sorted(link for link in links if not (DEPLOY_MD.parent / link).exists())
    assert not missing, f"docs/deploy.md names missing paths: {missing}"


_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _doc_snippets() -> list[str]:
    """Shell lines of the guide's code blocks (continuations joined) and its inline code spans."""
    text = DEPLOY_MD.read_text(encoding="utf-8")
    snippets = []
    for block in _FENCE.findall(text):
        snippets += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    snippets += _CODE_SPAN.findall(_FENCE.sub("", text))
    return snippets


def _doc_commands() -> list[list[str]]:
    """argv of every `leadrouter <subcommand> ...` in the guide (after `exec router` and the like)."""
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out = []
    for snippet in _doc_snippets():
        if "leadrouter" not in snippet:
            continue
        words = shlex.split(snippet, comments=True)
        for i, word in enumerate(words[:-1]):
            if PurePosixPath(word).name == "leadrouter" and words[i + 1] in sub.choices:
                argv = words[i + 1 :]
                for stop in ("|", "&&", ";", ">"):
                    if stop in argv:
                        argv = argv[: argv.index(stop)]
                out.append(argv)
    return out


def test_leadrouter_commands_in_the_deploy_guide_are_valid() -> None:
    """Every `leadrouter <command> ...` line of the guide parses with the real CLI."""
    commands = _doc_commands()
    assert commands
    for argv in commands:
        parse_cli(argv)


def test_deploy_guide_lists_every_topic_with_its_partitions() -> None:
    """The topic table has a row per topic of TopicSettings.all_topics() with its partition count."""
    text = DEPLOY_MD.read_text(encoding="utf-8")
    for topic, partitions in TopicSettings().all_topics().items():
        row = re.search(rf"^\| `{re.escape(topic)}` \|[^\n]*\| {partitions} \|", text, re.MULTILINE)
        assert row, f"no row for {topic} with {partitions} partitions"
