"""The command line described from its own parser: a bash completion script and a man page.

Both are walked from ``build_parser()``, so a new subcommand or flag reaches them without an
edit here. Every word they carry is a subcommand or option name (letters, digits, '-'), checked
before it is written into the script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re

from . import __version__

WORD = re.compile(r"-{0,2}[a-z0-9][a-z0-9-]*")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001  (argparse keeps its subparsers only here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({o for a in parser._actions for o in a.option_strings})  # noqa: SLF001


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) for the program and every subcommand, depth first."""
    yield path, parser
    for name, sub in _subcommands(parser).items():
        yield from command_paths(sub, (*path, name))


def _checked(words: list[str]) -> str:
    for word in words:
        if not WORD.fullmatch(word):
            raise ValueError(f"not a plain command-line word: {word!r}")
    return " ".join(words)


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for ``cci-harden``: subcommands, then each one's flags, then
    file names."""
    cases, nested = [], []
    for path, sub in command_paths(parser):
        key = " ".join(path)
        words = _checked([*_subcommands(sub), *_options(sub)])
        cases.append(f'    "{key}") words="{words}" ;;')
        if _subcommands(sub):
            nested += [" ".join((*path, name)) for name in _subcommands(sub)]
    known = "|".join(f'"{p}"' for p in nested)
    return "\n".join(
        [
            f'# bash completion for cci-harden {__version__}: eval "$(cci-harden completion)"',
            "_cci_harden() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" path="" word i words',
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        word="${COMP_WORDS[i]}"',
            '        [[ "$word" == -* ]] && continue',
            '        case "${path:+$path }$word" in',
            f'        {known}) path="${{path:+$path }}$word" ;;',
            "        esac",
            "    done",
            '    case "$path" in',
            *cases,
            '    *) words="" ;;',
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            '    [[ "$cur" != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))',
            "    return 0",
            "}",
            "complete -o filenames -F _cci_harden cci-harden",
            "",
        ]
    )


def _roff(text: str) -> str:
    """Text as roff shows it: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def man_page(parser: argparse.ArgumentParser, today: dt.date | None = None) -> str:
    today = today or dt.date.today()
    lines = [
        f'.TH CCI\\-HARDEN 1 "{today.isoformat()}" "cci-harden {__version__}" "User Commands"',
        ".SH NAME",
        "cci\\-harden \\- " + _roff(parser.description or ""),
        ".SH SYNOPSIS",
        ".B cci\\-harden",
        "[\\fB\\-q\\fR] [\\fB\\-v\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
        ".SH OPTIONS",
        ".TP",
        "\\fB\\-q\\fR, \\fB\\-\\-quiet\\fR",
        "only errors on stderr (before or after the command)",
        ".TP",
        "\\fB\\-v\\fR, \\fB\\-\\-verbose\\fR",
        "more on stderr",
        ".SH COMMANDS",
    ]
    for path, sub in command_paths(parser):
        if not path or _subcommands(sub):
            continue
        lines += [".TP", f".B cci\\-harden {_roff(' '.join(path))}"]
        lines.append(_roff(sub.description or _help_of(parser, path) or ""))
        for action in sub._actions:  # noqa: SLF001
            if not action.option_strings or set(action.option_strings) & COMMON:
                continue
            flags = ", ".join(f"\\fB{_roff(o)}\\fR" for o in action.option_strings)
            lines += [".RS", ".TP", flags, _roff(_describe(action)), ".RE"]
    lines += [
        ".SH EXIT STATUS",
        _roff(parser.epilog or ""),
        ".SH FILES",
        "\\fIinventories/NAME\\fR, \\fIinventories/NAME.toml\\fR, "
        "\\fIinventories/NAME.known_hosts\\fR, \\fIinventories/NAME.waivers.toml\\fR",
        ".SH SEE ALSO",
        "The operator guide (docs/operator-guide.md), docs/settings.md, docs/controls.md.",
        "",
    ]
    return "\n".join(lines)


COMMON = {"-h", "--help", "-q", "--quiet", "-v", "--verbose"}  # said once, under OPTIONS


def _describe(action: argparse.Action) -> str:
    text = action.help % vars(action) if action.help and action.help != argparse.SUPPRESS else ""
    if action.choices:
        text = f"{text} (one of: {', '.join(map(str, action.choices))})".strip()
    return text


def _help_of(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> str:
    """The one-line help the parent gave a subcommand."""
    current = parser
    for name in path[:-1]:
        current = _subcommands(current)[name]
    for action in current._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for choice in action._choices_actions:  # noqa: SLF001
                if choice.dest == path[-1]:
                    return choice.help or ""
    return ""
