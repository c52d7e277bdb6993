"""scripts/boundary_sweep.py: which boundary flips it generates, where, and which tests it runs for them."""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "boundary_sweep", Path(__file__).resolve().parents[1] / "scripts" / "boundary_sweep.py")
sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sweep)

SRC = '''\
label = "é < ü"  # a comparison in a string is not code
def f(a, b, c):
    if 0 <= a < (b
                 ):
        return min(a, b)
    ok = c >= 1 and c > a and a == b and a != c
    return max(*a), max(a), min(a, b, key=abs)
'''


def test_every_ordering_operator_and_two_argument_min_max_is_flipped_once_at_its_own_position():
    ms = sweep.mutants(SRC, "f.py")
    got = [(m["line"], m["old"], m["new"]) for m in ms]
    assert got == [(3, "<=", "<"), (3, "<", "<="), (5, "min", "max"), (6, ">=", ">"), (6, ">", ">="),
                   (7, "min", "max")]
    # each flip replaces exactly the operator token: the byte offsets count the two-byte letters of line 1
    expected_lines = {
        0: "    if 0 < a < (b", 1: "    if 0 <= a <= (b", 2: "        return max(a, b)",
        3: "    ok = c > 1 and c > a and a == b and a != c", 4: "    ok = c >= 1 and c >= a and a == b and a != c",
        5: "    return max(*a), max(a), max(a, b, key=abs)",
    }
    for k, m in enumerate(ms):
        mutated = sweep.apply(SRC, m).splitlines()
        original = SRC.splitlines()
        changed = [i for i in range(len(original)) if mutated[i] != original[i]]
        assert changed == [m["line"] - 1]
        assert mutated[m["line"] - 1] == expected_lines[k]
        compile("\n".join(mutated), "f.py", "exec")


def test_apply_refuses_a_position_that_does_not_hold_the_operator():
    m = dict(sweep.mutants(SRC, "f.py")[0])
    m["pos"] += 1
    with pytest.raises(AssertionError):
        sweep.apply(SRC, m)


@pytest.mark.parametrize("context, nodeid", [
    ("tests.test_app.test_sample_handler", "tests/test_app.py::test_sample_handler"),
    ("test_app.test_sample_handler", "tests/test_app.py::test_sample_handler"),
    ("tests.test_ema.TestDecay.test_half_life", "tests/test_ema.py::TestDecay::test_half_life"),
])
def test_coverage_contexts_become_pytest_node_ids(context, nodeid):
    assert sweep.nodeid(context) == nodeid


def test_the_swept_files_are_the_product_and_not_the_mutation_tooling():
    root = Path(__file__).resolve().parents[1]
    files = set(sweep.product_files(str(root)))
    assert {"progan/losses.py", "app/sampling.py", "data_prep/resize.py", "train.py", "evaluate.py"} <= files
    assert not any(f.startswith(("tests/", "scripts/mutat")) or f.endswith(("boundary_sweep.py", "blind_set.py")) for f in files)


def test_durations_sum_setup_call_and_teardown_of_every_parameter_of_a_test_function(tmp_path):
    log = tmp_path / "d.log"
    log.write_text("============ slowest durations ============\n"
                   "2.50s call     tests/test_a.py::test_x[1]\n"
                   "0.25s setup    tests/test_a.py::test_x[2]\n"
                   "1.00s call     tests/test_a.py::test_x[2]\n"
                   "0.01s teardown tests/test_b.py::TestC::test_y\n"
                   "(3 durations < 0.005s hidden.)\n")
    assert sweep.durations(str(log)) == {"tests/test_a.py::test_x": 3.75, "tests/test_b.py::TestC::test_y": 0.01}


def test_pick_takes_the_fastest_covering_tests_up_to_the_budget_and_always_one():
    seconds = {"t::a": 1.0, "t::b": 5.0, "t::c": 30.0}
    assert sweep.pick(["t::c", "t::b", "t::a"], seconds, 10) == ["t::a", "t::b"]
    assert sweep.pick(["t::c", "t::b", "t::a"], seconds, 6) == ["t::a", "t::b"]
    assert sweep.pick(["t::c", "t::b"], seconds, 0.5) == ["t::b"]
    assert sweep.pick(["t::c", "t::unknown"], seconds, 100) == ["t::c", "t::unknown"]  # unknown counts 60 s
    assert sweep.pick(["t::c", "t::b", "t::a"], seconds, float("inf")) == ["t::a", "t::b", "t::c"]


ARITH_SRC = '''\
x = a + b * (c - d) / e // 2 ** k
s, t, v = "a" + name, f"{a}" + tail, stem + ".json"
u, r = [1] + xs, "-" * 40
y -= 1
z **= n
q += ".json"
w = a % b | c @ m
'''


def test_the_arithmetic_family_swaps_each_numeric_operator_for_its_slip_and_leaves_strings_and_sequences():
    ms = sweep.mutants(ARITH_SRC, "f.py", "arith")
    by_line = {}
    for m in ms:
        by_line.setdefault(m["line"], []).append(sweep.apply(ARITH_SRC, m).splitlines()[m["line"] - 1])
    assert by_line == {
        1: ["x = a - b * (c - d) / e // 2 ** k", "x = a + b / (c - d) / e // 2 ** k",
            "x = a + b * (c + d) / e // 2 ** k", "x = a + b * (c - d) * e // 2 ** k",
            "x = a + b * (c - d) / e * 2 ** k", "x = a + b * (c - d) / e // 2 * k"],
        4: ["y += 1"], 5: ["z *= n"],
    }
    # the boundary family of the same text has no comparison to flip; an unknown family is refused
    assert sweep.mutants(ARITH_SRC, "f.py") == []
    with pytest.raises(ValueError, match="unknown family 'bits'"):
        sweep.mutants(ARITH_SRC, "f.py", "bits")


KWARG_SRC = '''\
y = f(a, size=n, mode="x")
z = g(size=n,
      psi=p)
h(only=v)
k(**opts, d=q)
'''


def test_the_keyword_family_drops_each_value_passed_on_with_its_separator_and_keeps_literals():
    ms = sweep.mutants(KWARG_SRC, "f.py", "kwarg")
    got = [sweep.apply(KWARG_SRC, m) for m in ms]
    lines = KWARG_SRC.splitlines(keepends=True)
    assert got == [
        'y = f(a, mode="x")\n' + "".join(lines[1:]),
        lines[0] + "z = g(psi=p)\n" + "".join(lines[3:]),
        lines[0] + "z = g(size=n)\n" + "".join(lines[3:]),
        "".join(lines[:3]) + "h()\n" + lines[4],
        "".join(lines[:4]) + "k(**opts)\n",
    ]
    assert [m["id"].split(":")[2].split("@")[0] for m in ms] == ["drop size", "drop size", "drop psi", "drop only",
                                                                "drop d"]
    for text in got:
        compile(text, "f.py", "exec")


DEFAULT_SRC = '''\
def f(a, n=3, *, scale=0.25, off=0.0, flag=False, name="x", none=None, neg=-1):
    return a
class Config:
    steps: int = 8
    label = 5
    beta: float = 0.5
ap.add_argument("--lr", type=float, default=0.002)
ap.add_argument("--out", default="runs")
class Opts:
    k: int = 2
    def check(self):
        """Docstring."""
        return self.k
'''


def test_the_default_family_moves_each_numeric_or_boolean_default_to_a_neighbour_and_leaves_the_rest():
    ms = sweep.mutants(DEFAULT_SRC, "f.py", "default")
    changed = {(m["line"], m["old"], m["new"]) for m in ms}
    # ints one up, floats halved (0.0 to 0.5), bools flipped; strings, None, a negated literal, a plain class
    # attribute (not a field) and a string option default stay
    assert changed == {(1, "3", "4"), (1, "0.25", "0.125"), (1, "0.0", "0.5"), (1, "False", "True"),
                       (4, "8", "9"), (6, "0.5", "0.25"), (7, "0.002", "0.001"), (10, "2", "3")}
    # a def line and a class body run at import: a default is charged to the tests that run the function's
    # first statement (not its docstring), a field to its class's first method, else to its own line
    assert {(m["line"], m["old"]): m["cover"] for m in ms} == {
        (1, "3"): 2, (1, "0.25"): 2, (1, "0.0"): 2, (1, "False"): 2, (4, "8"): 4, (6, "0.5"): 6, (7, "0.002"): 7,
        (10, "2"): 13}
    for m in ms:
        text = sweep.apply(DEFAULT_SRC, m)
        compile(text, "f.py", "exec")
        assert sum(a != b for a, b in zip(text.splitlines(), DEFAULT_SRC.splitlines())) == 1


STMT_SRC = '''\
def step(x, opt, device):
    """Docstring stays."""
    opt.zero_grad()
    x = x.to(device)
    y = x * 2
    self.count += 1
    self.best = y
    cache["k"] = y
    parser.add_argument("--n")
    if y:
        log("é")
    else:
        return y
    return opt.step()
'''


def test_the_statement_family_replaces_each_statement_that_only_acts_by_pass():
    ms = sweep.mutants(STMT_SRC, "f.py", "stmt")
    lines = STMT_SRC.splitlines()
    dropped = sorted(m["line"] for m in ms)
    # a call whose value is dropped, a self-reassignment, an augmented assignment, an attribute and an item
    # stored, a call inside a branch; not a docstring, a fresh local, an option declared, a return
    assert dropped == [3, 4, 6, 7, 8, 11]
    for m in ms:
        text = sweep.apply(STMT_SRC, m).splitlines()
        assert text[m["line"] - 1] == lines[m["line"] - 1].split(lines[m["line"] - 1].strip())[0] + "pass"
        assert text[:m["line"] - 1] + text[m["line"]:] == lines[:m["line"] - 1] + lines[m["line"]:]
        compile("\n".join(text), "f.py", "exec")
