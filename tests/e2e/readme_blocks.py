"""The fenced blocks of README.md and what the README says to do with each.

Every fenced block is preceded by a marker comment, invisible when the README is rendered:

    <!-- readme-test: MODE | STEP | STEP ... -->

MODE is one of
- `run`: the block runs in the reader's shell (one shell for the whole README, so what one block
  exports, the next sees), and must succeed. Steps, in order: `expect REGEX` waits until the
  block's output (since it started) matches; `send TEXT` types TEXT (`\\r`, `\\n`, `\\e`, `\\t`,
  `\\xHH` escapes); `may-fail REGEX` lets a command matching REGEX exit non-zero (an ssh
  session ended with `~.` exits 255); `timeout SECONDS` bounds the block (default 90). Any
  other failing command fails the block.
- `server`: the block's first line starts the service and keeps running (a reader's first
  terminal); the test starts it so, on free ports. The other lines are named in the reason.
- `config`: a TOML configuration that `serialgate config --config FILE` must accept.
- `illustrative`: not run; the rest of the marker is the reason, which must be given.

A block without a marker is an error: either it runs, or the README says why not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
MODES = ("run", "server", "config", "illustrative")


@dataclass
class Step:
    kind: str  # "expect" | "send"
    arg: str


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    mode: str | None = None
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    may_fail: list[str] = field(default_factory=list)
    timeout: float = 90.0

    def where(self) -> str:
        return f"README.md:{self.line} ({self.lang or 'text'} block)"


def unescape(text: str) -> str:
    """`\\r \\n \\t \\e \\xHH \\\\` as typed keys."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            simple = {"r": "\r", "n": "\n", "t": "\t", "e": "\x1b", "\\": "\\"}
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_marker(block: Block, marker: str) -> list[str]:
    """Fills the block's mode, reason and steps from its marker; returns problems."""
    parts = [p.strip() for p in marker.split("|")]
    mode = parts[0]
    if mode not in MODES:
        return [f"{block.where()}: unknown mode {mode!r} (one of {', '.join(MODES)})"]
    block.mode = mode
    rest = parts[1:]
    if mode in ("illustrative", "server"):
        block.reason = " | ".join(rest)
        if not block.reason:
            return [f"{block.where()}: a {mode} block needs its reason in the marker"]
        return []
    problems = []
    for p in rest:
        kind, _, arg = p.partition(" ")
        if kind in ("expect", "send"):
            block.steps.append(Step(kind, arg))
        elif kind == "may-fail" and arg:
            block.may_fail.append(arg)
        elif kind == "timeout" and arg.isdigit():
            block.timeout = float(arg)
        else:
            problems.append(f"{block.where()}: unknown step {p!r}")
    return problems


def blocks(readme: Path) -> tuple[list[Block], list[str]]:
    """Every fenced block, with its marker, and the problems found (missing or bad markers)."""
    lines = readme.read_text().splitlines()
    found: list[Block] = []
    problems: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        block = Block(line=start + 1, lang=m.group(1), text="\n".join(lines[start + 1:j]) + "\n")
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = MARKER.match(lines[k]) if k >= 0 else None
        if marker:
            problems += parse_marker(block, marker.group(1))
        else:
            problems.append(f"{block.where()}: no `<!-- readme-test: ... -->` marker before it")
        found.append(block)
        i = j + 1
    return found, problems
