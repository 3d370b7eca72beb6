"""Execute a Jupyter notebook headless and write it back with its outputs.

    python3 execute_notebook.py IN.ipynb OUT.ipynb [--kernel deno] [--timeout 900] [--grace 0.5]

Why not `jupyter nbconvert --execute`: nbclient treats a cell as finished at the kernel's `idle`
status, but the Deno kernel can send a cell's `console.log` output *after* `idle`; nbclient then
drops those lines (or the kernel attaches them to the next cell). Here, after each cell's `idle`,
the iopub channel is drained until it has been quiet for `--grace` seconds, so every line lands in
the cell that printed it. Outputs are also echoed to stdout as they arrive, for CI logs.

Needs only `jupyter_client` and `nbformat` (Debian: python3-jupyter-client python3-nbformat).
Exit status: 0 when every cell ran, 1 on a cell error or timeout, 2 on bad usage.
"""
import argparse
import os
import queue
import re
import sys
import time

import nbformat
from jupyter_client.manager import start_new_kernel

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def echo(text):
    sys.stdout.write(ANSI.sub("", text))
    sys.stdout.flush()


def add_output(outputs, msg):
    """Append an iopub message to a cell's outputs (merging consecutive stream chunks)."""
    kind = msg["header"]["msg_type"]
    content = msg["content"]
    if kind == "stream":
        echo(content["text"])
        if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1]["name"] == content["name"]:
            outputs[-1]["text"] += content["text"]
            return
    elif kind in ("display_data", "execute_result"):
        echo(content["data"].get("text/plain", "") + "\n")
    elif kind == "error":
        echo("\n".join(content.get("traceback") or [content.get("ename", "") + ": " + content.get("evalue", "")]) + "\n")
    elif kind == "clear_output":
        outputs.clear()
        return
    else:
        return
    outputs.append(nbformat.v4.output_from_msg(msg))


def run_cell(kc, cell, deadline, grace):
    """Execute one code cell; returns (ok, reason)."""
    msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=True)
    outputs = []
    idle = False
    reply = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            cell.outputs = outputs
            return False, "timed out"
        # Before idle: wait up to the deadline. After idle: only as long as output keeps coming.
        try:
            msg = kc.get_iopub_msg(timeout=min(remaining, grace) if idle else min(remaining, 5))
        except queue.Empty:
            if idle:
                break
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "status":
            if msg["content"]["execution_state"] == "idle":
                idle = True
            continue
        if kind == "execute_input":
            continue
        add_output(outputs, msg)
    while reply is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            cell.outputs = outputs
            return False, "timed out waiting for the execute reply"
        try:
            m = kc.get_shell_msg(timeout=remaining)
        except queue.Empty:
            continue
        if m["parent_header"].get("msg_id") == msg_id:
            reply = m["content"]
    cell.outputs = outputs
    cell.execution_count = reply.get("execution_count")
    if reply.get("status") != "ok":
        return False, "{}: {}".format(reply.get("ename", "error"), reply.get("evalue", ""))
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--kernel", default="deno")
    ap.add_argument("--timeout", type=float, default=900, help="seconds for the whole notebook")
    ap.add_argument("--grace", type=float, default=0.5, help="quiet seconds after a cell's idle status")
    args = ap.parse_args()
    nb = nbformat.read(args.src, as_version=4)
    cwd = os.path.dirname(os.path.abspath(args.src))
    km, kc = start_new_kernel(kernel_name=args.kernel, cwd=cwd, startup_timeout=120)
    deadline = time.monotonic() + args.timeout
    ok, reason, where = True, "", None
    try:
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            ok, reason = run_cell(kc, cell, deadline, args.grace)
            if not ok:
                where = i
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    nbformat.write(nb, args.dst)
    if not ok:
        echo("\nexecute_notebook: cell {} of {} failed: {}\n".format(where, args.src, reason))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
