"""Boundary sweep: flip every comparison's boundary and every min/max, and run only the tests that cover it.

The hand-written mutants (scripts/mutations.py) are the bugs someone thought of; the blind sets kept finding
bounds nobody had thought to test (a range that exactly fills a limit refused, a checkpoint count off by one,
a cutoff equal to the number of layers refused). This sweep generates those mechanically:

- ``<`` <-> ``<=`` and ``>`` <-> ``>=`` at every comparison in the product code (each operator of a chain
  ``0 <= x <= n`` separately);
- ``min(...)`` <-> ``max(...)`` for every call with two or more arguments;
- with ``--family arith``: each arithmetic operator of a numeric expression or ``+=``-style assignment
  swapped for its usual slip (``+``/``-``, ``*`` -> ``/``, ``/`` -> ``*``, ``//`` -> ``*``, ``**`` -> ``*``):
  a formula slip or a unit converted the wrong way (about 870);
- with ``--family kwarg``: each keyword argument that passes a value on (``f(x, size=size)``, not a
  literal) dropped, so the callee silently uses its default: a value computed but not passed on (about
  1,270);
- with ``--family default``: each numeric or boolean default changed to a neighbouring value (a function
  parameter's default, an argparse ``default=``, a class field's value): an int ``n`` -> ``n + 1``, a float
  ``x`` -> ``x / 2`` (``0.0`` -> ``0.5``), a bool flipped: a default nobody checks at its own value;
- with ``--family stmt``: each statement that only acts (a call whose value is dropped, an augmented
  assignment, an assignment to an attribute or item, or a name reassigned from itself such as
  ``x = x.to(device)``) replaced by ``pass``: a call or an update forgotten.
  ``--sample N --seed S`` runs a seeded random sample of a family.

Each mutant runs only the fast tests that executed its line, taken from a coverage run with per-test
contexts (lines reached only from fixtures or subprocesses count as uncovered):

    coverage run --rcfile=RC -m pytest -m "not slow" tests      # RC: [run] dynamic_context = test_function
    python scripts/boundary_sweep.py --coverage .coverage --out sweep.json [--only app/,data_prep/] [--list]

A line reached by 200 tests costs minutes per survivor; ``--durations`` (a ``pytest --durations=0
--durations-min=0`` log) and ``--budget S`` run each mutant against its fastest covering tests first, up to S
seconds; ``--verify`` then reruns only the survivors of such a partial run against every covering test.

To use both cores, run a second sweep in a second checkout over other files (``--only``, and
``--coverage-root`` naming the checkout the coverage run measured).

The file being mutated is written in place and restored after each run: use a scratch checkout. A
survivor is not necessarily a gap: ``x < 0.5`` against ``x <= 0.5`` on a random float is equivalent in
practice. Each survivor is judged by hand; the ones that change behaviour get a direct test and a mutant
in scripts/mutations*.py. Results and the judgements are in docs/testing.md.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import time

SWAP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">")}
# the arithmetic family: a formula's operator slipped (+/-, a scale multiplied instead of divided, a power
# taken as a product); % (formatting), @ and the bit operators are left alone
ARITH = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
         ast.FloorDiv: ("//", "*"), ast.Pow: ("**", "*")}
FAMILIES = ("boundary", "arith", "kwarg", "default", "stmt")
ROOTS = ("progan", "stylegan_lite", "app", "data_prep", "scripts", "train.py", "evaluate.py", "families.py")
SKIP = ("scripts/mutat", "scripts/mutant_base.py", "scripts/boundary_sweep.py", "scripts/blind_set.py")


def product_files(root: str):
    for r in ROOTS:
        p = os.path.join(root, r)
        if os.path.isfile(p):
            yield r
        elif os.path.isdir(p):
            for d, _, fs in sorted(os.walk(p)):
                for f in sorted(fs):
                    rel = os.path.relpath(os.path.join(d, f), root)
                    if f.endswith(".py") and not rel.startswith(SKIP):
                        yield rel


def _not_a_number(node) -> bool:
    """An operand that makes ``+``/``*`` a string or sequence operation (concatenation, repetition)."""
    return (isinstance(node, (ast.JoinedStr, ast.List, ast.Tuple, ast.ListComp, ast.Set, ast.Dict))
            or (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))))


def mutants(src: str, rel: str = "<src>", family: str = "boundary") -> list[dict]:
    """Every mutant of ``family`` in ``src``: dicts with the byte position of the operator, old and new text.

    boundary: each ordering comparison's boundary and each min/max; arith: each arithmetic operator of a
    numeric expression or augmented assignment, swapped for its usual slip (see ARITH); kwarg: each keyword
    argument that passes a value on (not a literal) dropped, so the callee falls back to its default; default:
    each numeric or boolean default moved to a neighbouring value; stmt: each statement that only acts
    (see the module docstring) replaced by ``pass``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: choose from {', '.join(FAMILIES)}")
    data = src.encode()
    starts, acc = [], 0
    for line in data.splitlines(keepends=True):
        starts.append(acc)
        acc += len(line)
    lines = src.splitlines()
    out = []
    def between(a, b, old):  # the operator's position: between two operands only brackets and spaces
        lo = starts[a.end_lineno - 1] + a.end_col_offset
        hi = starts[b.lineno - 1] + b.col_offset
        return lo + data[lo:hi].find(old.encode())

    def pos(lineno, col):
        return starts[lineno - 1] + col

    def changed(c):  # a default's neighbouring value, or None for a value this family leaves alone
        if isinstance(c, ast.Constant) and isinstance(c.value, bool):
            return repr(not c.value)
        if isinstance(c, ast.Constant) and isinstance(c.value, int):
            return repr(c.value + 1)
        if isinstance(c, ast.Constant) and isinstance(c.value, float):
            return repr(c.value / 2 if c.value else 0.5)
        return None

    def segment(n):
        lo, hi = pos(n.lineno, n.col_offset), pos(n.end_lineno, n.end_col_offset)
        return lo, data[lo:hi].decode()

    def first_line(f):  # a function's first statement that runs (coverage counts no docstring)
        doc = isinstance(f.body[0], ast.Expr) and isinstance(f.body[0].value, ast.Constant) and len(f.body) > 1
        return f.body[1 if doc else 0].lineno

    for node in ast.walk(ast.parse(src)):
        if family == "default":
            # a ``def`` line and a class body run at import, outside any test's context: such a default is
            # charged to the tests that run the function's first statement (a class's first method's)
            found, cover = [], None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found = [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]
                cover = first_line(node)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                found = [kw.value for kw in node.keywords if kw.arg in ("default", "const")]
            elif isinstance(node, ast.ClassDef):
                found = [st.value for st in node.body if isinstance(st, ast.AnnAssign) and st.value is not None]
                methods = [f for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
                cover = first_line(methods[0]) if methods else None
            for c in found:
                new = changed(c)
                if new is not None:
                    lo, old = segment(c)
                    out.append(dict(line=c.lineno, pos=lo, old=old, new=new, cover=cover or c.lineno))
            continue
        if family == "stmt":
            blocks = [getattr(node, f, None) for f in ("body", "orelse", "finalbody")]
            for st in [st for b in blocks if isinstance(b, list) for st in b]:
                acts = (isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and not (  # declaring a CLI option is not an act
                    isinstance(st.value.func, ast.Attribute) and st.value.func.attr == "add_argument")) or isinstance(st, ast.AugAssign)
                if isinstance(st, ast.Assign):
                    names = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
                    acts = any(isinstance(t, (ast.Attribute, ast.Subscript)) or (isinstance(t, ast.Name) and t.id in names)
                               for t in st.targets)
                if acts:
                    lo, old = segment(st)
                    out.append(dict(line=st.lineno, pos=lo, old=old, new="pass", what="drop statement"))
            continue
        if family == "kwarg":
            if isinstance(node, ast.Call):
                items = sorted([*node.args, *node.keywords], key=lambda x: (x.lineno, x.col_offset))
                for i, kw in enumerate(items):
                    if not isinstance(kw, ast.keyword) or kw.arg is None or isinstance(kw.value, ast.Constant):
                        continue
                    if i > 0:  # ", name=value" after the item before it
                        lo, hi = pos(items[i - 1].end_lineno, items[i - 1].end_col_offset), pos(kw.end_lineno, kw.end_col_offset)
                    elif i + 1 < len(items):  # "name=value, " before the next item
                        lo, hi = pos(kw.lineno, kw.col_offset), pos(items[i + 1].lineno, items[i + 1].col_offset)
                    else:
                        lo, hi = pos(kw.lineno, kw.col_offset), pos(kw.end_lineno, kw.end_col_offset)
                    out.append(dict(line=kw.lineno, pos=lo, old=data[lo:hi].decode(), new="", kw=kw.arg))
            continue
        if family == "arith":
            if isinstance(node, ast.BinOp) and type(node.op) in ARITH and not (
                    _not_a_number(node.left) or _not_a_number(node.right)):
                old, new = ARITH[type(node.op)]
                out.append(dict(line=node.left.end_lineno, pos=between(node.left, node.right, old), old=old, new=new))
            elif isinstance(node, ast.AugAssign) and type(node.op) in ARITH and not _not_a_number(node.value):
                old, new = (o + "=" for o in ARITH[type(node.op)])
                out.append(dict(line=node.target.end_lineno, pos=between(node.target, node.value, old),
                                old=old, new=new))
            continue
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if type(op) not in SWAP:
                    continue
                old, new = SWAP[type(op)]
                out.append(dict(line=operands[i].end_lineno, pos=between(operands[i], operands[i + 1], old),
                                old=old, new=new))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max")
              and len(node.args) + len(node.keywords) >= 2 and not any(isinstance(x, ast.Starred) for x in node.args)):
            old = node.func.id
            out.append(dict(line=node.func.lineno, pos=starts[node.func.lineno - 1] + node.func.col_offset,
                            old=old, new="max" if old == "min" else "min"))
    for m in out:
        what = f"drop {m.pop('kw')}" if "kw" in m else m.pop("what", f"{m['old']}->{m['new']}")
        m.update(file=rel, id=f"{rel}:{m['line']}:{what}@{m['pos']}", text=lines[m["line"] - 1].strip())
    return sorted(out, key=lambda m: m["pos"])


def apply(src: str, m: dict) -> str:
    data, old = src.encode(), m["old"].encode()  # positions are bytes: a statement may hold a non-ASCII character
    assert data[m["pos"]:m["pos"] + len(old)] == old, m["id"]
    return (data[:m["pos"]] + m["new"].encode() + data[m["pos"] + len(old):]).decode()


def nodeid(context: str) -> str:
    """coverage's test_function context ("tests.test_x.test_y", "test_x.Class.test_y") as a pytest node id."""
    parts = context.split(".")
    i = next(k for k, p in enumerate(parts) if p.startswith("test_") and k + 1 < len(parts))
    return f"tests/{parts[i]}.py::" + "::".join(parts[i + 1:])


def durations(path: str) -> dict[str, float]:
    """Seconds per test function (all its parameters, setup and teardown) from ``pytest --durations=0`` output."""
    out: dict[str, float] = {}
    for line in open(path):
        hit = re.match(r"\s*([\d.]+)s (setup|call|teardown)\s+(\S+)", line)
        if hit:
            fn = hit.group(3).split("[")[0]
            out[fn] = out.get(fn, 0.0) + float(hit.group(1))
    return out


def pick(tests: list[str], seconds: dict[str, float], budget: float) -> list[str]:
    """The fastest covering tests, cheapest first, until ``budget`` seconds (always at least one)."""
    ranked = sorted(tests, key=lambda t: (seconds.get(t, 60.0), t))
    chosen, spent = [], 0.0
    for t in ranked:
        if chosen and spent + seconds.get(t, 60.0) > budget:
            break
        chosen.append(t)
        spent += seconds.get(t, 60.0)
    return chosen


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--coverage", required=True, help="coverage data file with test_function contexts")
    ap.add_argument("--out", required=True, help="results JSON (resumed if it exists)")
    ap.add_argument("--only", default="", help="comma-separated path prefixes to sweep")
    ap.add_argument("--list", action="store_true", help="list the mutants and their test counts, run nothing")
    ap.add_argument("--coverage-root", default=None,
                    help="the checkout the coverage run measured, if not this one (a second sweep in parallel)")
    ap.add_argument("--durations", default=None,
                    help="a `pytest --durations=0 --durations-min=0` log: run the fastest covering tests first")
    ap.add_argument("--budget", type=float, default=float("inf"),
                    help="seconds of (fastest) covering tests per mutant; survivors of a partial run say so")
    ap.add_argument("--verify", action="store_true", help="rerun the partial survivors against every covering test")
    ap.add_argument("--family", choices=FAMILIES, default="boundary", help="which mutants (default: boundary)")
    ap.add_argument("--sample", type=int, default=0,
                    help="run a seeded random sample of this many mutants (0: all); the same seed, the same sample")
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample")
    args = ap.parse_args(argv)
    import coverage

    def restore_and_exit(signum, frame):  # the mutated file is restored by the finally below
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, restore_and_exit)
    seconds = durations(args.durations) if args.durations else {}

    root = os.getcwd()
    cov = coverage.CoverageData(basename=args.coverage)
    cov.read()
    measured = {os.path.relpath(p, args.coverage_root or root): p for p in cov.measured_files()}
    prefixes = [p for p in args.only.split(",") if p]
    todo = []
    for rel in product_files(root):
        if prefixes and not rel.startswith(tuple(prefixes)):
            continue
        src = open(rel).read()
        ctx = cov.contexts_by_lineno(measured[rel]) if rel in measured else {}
        for m in mutants(src, rel, args.family):
            todo.append((src, m, sorted({nodeid(c) for c in ctx.get(m.pop("cover", m["line"]), ()) if c})))
    if args.sample and args.sample < len(todo):
        import random
        todo = sorted(random.Random(args.seed).sample(todo, args.sample), key=lambda t: (t[1]["file"], t[1]["pos"]))
    if args.list:
        for _, m, tests in todo:
            print(f"{len(tests):4d}  {m['id']}  {m['text'][:100]}")
        print(f"{len(todo)} mutants, {sum(1 for t in todo if not t[2])} on lines no fast test reaches")
        return
    res = json.load(open(args.out)) if os.path.exists(args.out) else {}
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=root, PYTHONDONTWRITEBYTECODE="1")
    for n, (src, m, tests) in enumerate(todo):
        done = res.get(m["id"])
        if done and not (args.verify and done["status"] == "SURVIVED" and done.get("partial")):
            continue
        covering = tests
        tests = tests if args.verify else pick(tests, seconds, args.budget)
        status, tail, t = "uncovered", "", time.time()
        if tests:
            open(m["file"], "w").write(apply(src, m))
            try:
                p = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow",
                                    "-p", "no:cacheprovider", *tests], env=env, capture_output=True, text=True,
                                   timeout=900)
                status = {0: "SURVIVED", 1: "killed"}.get(p.returncode, f"error rc {p.returncode}")
                tail = p.stdout[-400:]
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                open(m["file"], "w").write(src)
        res[m["id"]] = dict(m, status=status, tests=tests, partial=len(tests) < len(covering),
                            s=round(time.time() - t), tail=tail)
        json.dump(res, open(args.out + ".tmp", "w"), indent=1)
        os.replace(args.out + ".tmp", args.out)
        print(f"[{n + 1}/{len(todo)}] {status:9s} {res[m['id']]['s']:4d}s {m['id']}  {m['text'][:90]}", flush=True)
    counts = {}
    for v in res.values():
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    print(counts)


if __name__ == "__main__":
    main()
