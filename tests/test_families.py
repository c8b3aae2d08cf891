"""The adapters table (mmkit/families.py): no code outside it and the registry branches on a family's name,
and the table's (module, function) entries and data columns hang together."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mmkit.families import ADAPTERS, attention_function
from mmkit.models import CLASS_FAMILY, FAMILIES, FAMILY_TASKS

ROOT = Path(__file__).resolve().parents[1]
NAMES = set(FAMILY_TASKS) | set(CLASS_FAMILY.values()) | set(FAMILIES)
PREFIXES = NAMES | {f.split("-")[0] for f in NAMES} | {f.split("-")[0] + "-" for f in NAMES if "-" in f}
SUFFIXES = NAMES | {f.split("-")[-1] for f in NAMES if "-" in f} | {"-" + f.split("-")[-1] for f in NAMES if "-" in f}
ALLOWED = {"mmkit/families.py", "mmkit/models.py"}  # the adapters table and the registry


def _strings(node) -> list[str]:
    """The string constants of a node: itself, or the items of a tuple / list / set display."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [x.value for x in items if isinstance(x, ast.Constant) and isinstance(x.value, str)]


def family_branches(source: str) -> list[tuple[int, str]]:
    """(line, code) of each branch on a family's name in Python source: a comparison with a family name
    (==, !=, in / not in a literal collection), a family name's part in a family string ("vilt" in fam),
    startswith / endswith a family's prefix or suffix, or a match case on one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        hit = False
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, (a, b) in zip(node.ops, zip(sides, sides[1:])):
                if isinstance(op, (ast.Eq, ast.NotEq)):
                    hit |= bool(NAMES & set(_strings(a) + _strings(b)))
                elif isinstance(op, (ast.In, ast.NotIn)):
                    if isinstance(b, (ast.Tuple, ast.List, ast.Set)):
                        hit |= bool(NAMES & set(_strings(b)))
                    elif "fam" in ast.unparse(b).lower():  # a part of the name inside the family string
                        hit |= any(s and any(s in f for f in NAMES) for s in _strings(a))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if node.func.attr in ("startswith", "endswith"):  # of a family (a hub id's "...-vqa" is not one)
                parts = PREFIXES if node.func.attr == "startswith" else SUFFIXES
                on_family = "fam" in ast.unparse(node.func.value).lower()
                hit = bool((parts if on_family else NAMES) & set(_strings(node.args[0])))
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            hit = bool(NAMES & set(_strings(node.pattern.value)))
        if hit:
            found.append((node.lineno if hasattr(node, "lineno") else node.pattern.lineno, ast.unparse(node)[:80]))
    return found


@pytest.mark.parametrize("code", [
    'if fam == "clip": pass', 'x = m.spec.family != "blip-caption"', 'ok = fam in ("clip", "align")',
    'ok = family not in ["vilt-vqa"]', 'ok = fam.startswith("vilt")', 'ok = fam.endswith(("vqa", "itm"))',
    'ok = "blip" in m.spec.family', 'ok = "blip2" == fam', 'ok = x.startswith("blip-vqa")',
    'match fam:\n    case "blip-itm":\n        pass',
])
def test_the_check_finds_planted_family_branches(code):
    assert family_branches(code), code


@pytest.mark.parametrize("code", [
    'if task == "caption": pass', 'ok = kind in ("color", "shape")', 'ok = name.startswith("shapes-")',
    'ok = repo.endswith("vqa")',
    'DEFAULT = {"clip": 1}', 'm = load_model("blip-caption")', 'ok = "caption" in task',
    'ok = fam in FAMILY_TASKS', 'ok = adapter(m).dual_encoder', '"""fam == "clip" in a docstring"""',
    '# fam == "clip" in a comment',
])
def test_the_check_leaves_other_code_alone(code):
    assert not family_branches(code), code


def test_no_family_name_branch_outside_the_adapters_table_and_the_registry():
    found = {}
    for path in sorted((ROOT / "mmkit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in ALLOWED and (hits := family_branches(path.read_text(encoding="utf-8"))):
            found[rel] = hits
    assert not found, ("branches on a family's name: put the fact in a column of mmkit/families.py's ADAPTERS "
                       f"and ask adapter(m) instead: {found}")


REFS = ("maps", "scorer_state", "image_scorer", "text_state", "token_scorer", "token_ranking")


@pytest.mark.parametrize("family", sorted(ADAPTERS))
def test_every_named_function_exists_and_the_columns_agree(family):
    row = ADAPTERS[family]
    for col in REFS:
        ref = getattr(row, col)
        if ref is not None:
            assert callable(attention_function(ref)), (family, col, ref)
    assert (row.image_scorer is None) == (row.perturb_score is None)  # a scorer says what it scores
    assert (row.token_scorer is None) == (row.token_ranking is None) == (not row.text_methods)
    assert not row.text_methods or row.image_scorer is not None  # text curves beside the image's
    assert row.scene_texts in ("caption", "questions", "objects")
    assert not (row.dual_encoder and row.joint_inputs)  # two towers, or one processor for both
    assert not row.pools_end_token or row.dual_encoder


def test_the_columns_say_what_the_old_family_lists_said():
    """The facts the perturbation code branched on, as the table now states them."""
    def having(col):
        return {f for f, a in ADAPTERS.items() if getattr(a, col)}

    assert having("dual_encoder") == {"clip", "align"} and having("joint_inputs") == {"vilt-vqa", "vilt-itm"}
    assert having("pools_end_token") == {"clip"} and not having("image_scorer") & {"blip2"}
    assert having("image_scorer") == having("perturb_score") == set(ADAPTERS) - {"blip2"}
    assert having("text_methods") == set(ADAPTERS) - {"blip2", "blip-caption"}
    from mmkit.attention.text_perturbation import TEXT_METHODS

    assert TEXT_METHODS == {f: ADAPTERS[f].text_methods for f in having("text_methods")}


def test_the_table_imports_no_torch():
    code = "import sys, mmkit.families; assert 'torch' not in sys.modules, 'families.py imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
