"""The fleet report as one self-contained HTML file: no network, no external asset.

Hosts by controls at a glance, failures first with each finding's resource and expected/found
values, unreachable hosts, waivers with owner and expiry, drift since the previous report, and
a trend over the recent runs kept in the report folder (``verify-history.jsonl``). A filter
box and a "failing only" switch narrow the grid and the failures; ``#filter=TEXT&failing`` in
the address sets them on load. Every value from a host or a setting is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

from ..model.control import Status
from ..model.text import printable
from .results import VerifyRun

HISTORY_FILE = "verify-history.jsonl"
TREND_RUNS = 30

_CLASS = {
    Status.PASS: ("ok", "ok"),
    Status.FAIL: ("fail", "FAIL"),
    Status.WAIVED: ("waived", "waived"),
    Status.NOT_VERIFIABLE: ("nv", "n/v"),
    Status.NOT_APPLICABLE: ("na", "-"),
}

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.6em 0 .4em}
.meta{color:#57606a} .badge{display:inline-block;padding:.1em .6em;border-radius:1em;
margin-right:.4em;font-weight:600} .b-fail{background:#ffd7d5;color:#82071e}
.b-ok{background:#dafbe1;color:#116329} .b-waived{background:#fff8c5;color:#7d4e00}
.b-nv,.b-na{background:#eaeef2;color:#424a53} .b-unreachable{background:#82071e;color:#fff}
table{border-collapse:collapse;margin:.3em 0} th,td{border:1px solid #d0d7de;padding:.2em .5em;
text-align:left;vertical-align:top} th{background:#f6f8fa}
td.ok{background:#dafbe1} td.fail{background:#ffd7d5;font-weight:700} td.waived{background:#fff8c5}
td.nv,td.na{background:#f6f8fa;color:#57606a} td.unreachable{background:#82071e;color:#fff}
.grid td{text-align:center;font-size:12px} .grid th.host{text-align:left}
.grid th.control{writing-mode:vertical-rl;transform:rotate(180deg);font-size:11px}
.hidden{display:none} .controls{margin:.8em 0} input[type=search]{width:20em;padding:.2em}
code{font-size:12px} svg{border:1px solid #d0d7de;background:#fbfcfd}
"""

_SCRIPT = """
(function(){
  var box=document.getElementById('filter'), only=document.getElementById('failing');
  function apply(){
    var text=box.value.toLowerCase(), failing=only.checked;
    document.querySelectorAll('tr[data-row]').forEach(function(row){
      var show=(!text||row.getAttribute('data-row').indexOf(text)>=0)&&
               (!failing||row.getAttribute('data-failing')==='1');
      row.classList.toggle('hidden',!show);
    });
    var shown=document.querySelectorAll('table.grid tr[data-row]:not(.hidden)').length;
    document.getElementById('shown').textContent=shown;
  }
  var hash=decodeURIComponent(location.hash.slice(1));
  hash.split('&').forEach(function(part){
    if(part.indexOf('filter=')===0){box.value=part.slice(7);}
    if(part==='failing'){only.checked=true;}
  });
  box.addEventListener('input',apply); only.addEventListener('change',apply); apply();
})();
"""


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def history_line(run: VerifyRun) -> str:
    """What one run adds to the trend: one JSON line."""
    counts: dict[str, int] = {}
    for cell in run.cells:
        counts[cell.outcome.status.value] = counts.get(cell.outcome.status.value, 0) + 1
    entry = {
        "generated_at": run.generated_at,
        "hosts": len(run.reports),
        "unreachable": len(run.unreachable),
        "failing": counts.get("fail", 0),
        "waived": counts.get("waived", 0),
    }
    return json.dumps(entry, sort_keys=True)


def read_history(folder: Path) -> list[dict]:
    """The recent runs recorded in ``folder`` (unreadable lines skipped)."""
    path = folder / HISTORY_FILE
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text(errors="replace").splitlines()[-TREND_RUNS:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("failing"), int):
            runs.append(entry)
    return runs


def _trend(history: list[dict]) -> str:
    if len(history) < 2:
        return "<p class=meta>The trend appears once two runs are recorded in this folder.</p>"
    width, height, pad = 600, 140, 20
    top = max(max(h["failing"] for h in history), 1)
    step = (width - 2 * pad) / (len(history) - 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (h['failing'] / top) * (height - 2 * pad):.1f}"
        for i, h in enumerate(history)
    )
    first, last = _e(history[0]["generated_at"]), _e(history[-1]["generated_at"])
    return (
        f'<svg id=trend width="{width}" height="{height}" role=img '
        f'aria-label="failing checks per run">'
        f'<polyline fill=none stroke="#cf222e" stroke-width=2 points="{points}"/>'
        f'<text x="{pad}" y="14" font-size="11">max {top} failing</text></svg>'
        f"<p class=meta>{len(history)} runs, {first} to {last}; failing checks per run: "
        + ", ".join(str(h["failing"]) for h in history)
        + "</p>"
    )


def render_html(run: VerifyRun, history: list[dict] | None = None) -> str:
    history = history or []
    controls: list[str] = []
    status: dict[tuple[str, str], Status] = {}
    for cell in run.cells:
        if cell.outcome.control_id not in controls:
            controls.append(cell.outcome.control_id)
        status[(cell.host, cell.outcome.control_id)] = cell.outcome.status
    counts: dict[Status, int] = {}
    for value in status.values():
        counts[value] = counts.get(value, 0) + 1
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        # nothing but this file's own style and script may run or load: no network at all
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
        f"style-src '{_digest(_STYLE)}'; script-src '{_digest(_SCRIPT)}'\">",
        f"<title>cci-harden verify: {_e(run.inventory)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Fleet report: {_e(run.inventory)}</h1>",
        f"<p class=meta>generated {_e(run.generated_at)} &middot; shard {_e(run.shard)} &middot; "
        f"exit {run.exit_code()} &middot; {len(run.reports)} hosts, {len(controls)} checks</p><p>",
    ]
    order = (Status.FAIL, Status.WAIVED, Status.PASS, Status.NOT_VERIFIABLE, Status.NOT_APPLICABLE)
    for state in order:
        css, label = _CLASS[state]
        parts.append(f"<span class='badge b-{css}'>{counts.get(state, 0)} {_e(label)}</span>")
    if run.unreachable:
        parts.append(f"<span class='badge b-unreachable'>{len(run.unreachable)} unreachable</span>")
    parts.append("</p>")
    parts.append(
        "<div class=controls><label>Filter <input id=filter type=search "
        "placeholder='host or control'></label> <label><input id=failing type=checkbox> "
        "failing only</label> &middot; <span id=shown></span> hosts shown</div>"
    )
    # failures first
    failing = sorted(run.failing(), key=lambda c: (c.outcome.control_id, c.host))
    parts.append(f"<h2>Failures ({len(failing)})</h2>")
    if failing:
        parts.append(
            "<table id=failures><tr><th>host</th><th>control</th><th>failing since</th>"
            "<th>resource</th><th>what</th><th>expected</th><th>found</th></tr>"
        )
        for cell in failing:
            for finding in cell.outcome.findings or ():
                key = f"{cell.host} {cell.outcome.control_id}".lower()
                parts.append(
                    f"<tr data-row='{_e(key)}' data-failing=1><td>{_e(cell.host)}</td>"
                    f"<td>{_e(cell.outcome.control_id)}</td><td>{_e(cell.since or '')}</td>"
                    f"<td><code>{_e(finding.resource)}</code></td><td>{_e(finding.what)}</td>"
                    f"<td>{_e(printable(finding.expected))}</td>"
                    f"<td>{_e(printable(finding.found))}</td></tr>"
                )
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    if run.unreachable:
        parts.append("<h2>Unreachable hosts</h2><ul>")
        parts += [f"<li>{_e(r.host)}: {_e(printable(r.error))}</li>" for r in run.unreachable]
        parts.append("</ul>")
    # the grid
    parts.append("<h2>Hosts by controls</h2><table class=grid id=grid><tr><th>host</th>")
    parts += [f"<th class=control>{_e(c)}</th>" for c in controls]
    parts.append("</tr>")
    unreachable = {r.host for r in run.unreachable}
    for report in run.reports:
        row_failing = report.host in unreachable or any(
            status.get((report.host, c)) is Status.FAIL for c in controls
        )
        key = " ".join([report.host, *controls]).lower()
        parts.append(
            f"<tr data-row='{_e(key)}' data-failing={int(row_failing)}>"
            f"<th class=host>{_e(report.host)}</th>"
        )
        if report.host in unreachable:
            parts.append(f"<td class=unreachable colspan={len(controls) or 1}>unreachable</td>")
        else:
            for control in controls:
                found = status.get((report.host, control))
                css, label = _CLASS.get(found, ("na", "")) if found else ("na", "")
                parts.append(f"<td class={css} title='{_e(control)}'>{_e(label)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    # waivers
    waived = [c for c in run.cells if c.waiver is not None]
    if waived or run.expired_waivers:
        parts.append(
            "<h2>Waivers</h2><table id=waivers><tr><th>host</th><th>control</th>"
            "<th>owner</th><th>expires</th><th>why</th><th>state</th></tr>"
        )
        for cell in waived:
            waiver = cell.waiver
            if waiver is None:
                continue
            standing = "expired" if waiver in run.expired_waivers else "current"
            parts.append(
                f"<tr><td>{_e(cell.host)}</td><td>{_e(waiver.control)}</td>"
                f"<td>{_e(waiver.owner)}</td><td>{_e(waiver.expires)}</td>"
                f"<td>{_e(waiver.justification)}</td><td>{standing}</td></tr>"
            )
        parts.append("</table>")
    # drift
    if run.drift is not None:
        drift = run.drift
        parts.append("<h2>Since the previous report</h2><ul id=drift>")
        new = ", ".join(f"{h} {c}" for h, c in drift.newly_failing) or "none"
        fixed = ", ".join(f"{h} {c}" for h, c in drift.newly_fixed) or "none"
        parts.append(f"<li>newly failing: {_e(new)}</li><li>fixed: {_e(fixed)}</li>")
        parts.append(
            "<li>still failing: "
            + _e(", ".join(f"{h} {c} since {s}" for h, c, s in drift.still_failing) or "none")
            + "</li>"
        )
        if drift.joined or drift.vanished:
            parts.append(
                f"<li>hosts that joined: {_e(', '.join(drift.joined) or 'none')}</li>"
                f"<li>hosts that vanished: {_e(', '.join(drift.vanished) or 'none')}</li>"
            )
        parts.append("</ul>")
    parts.append("<h2>Trend</h2>")
    parts.append(_trend(history))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
