"""The package's shape: one-way imports, small units, a module map that matches the tree, a public API
that names only what exists, and a command line that refuses bad input before TensorFlow loads."""

import ast
import builtins
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import catdog_zoo

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "catdog_zoo"
MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))
LARGEST_UNIT = 120  # lines of any class or function; the old trainer's session class had 284


def module_name(rel: str) -> str:
    parts = ["catdog_zoo", *rel.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_imports_run_one_way_and_never_in_a_circle():
    """The import-linter contracts of pyproject.toml: layers (imports inside functions included), no cycles."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" KEPT") == 2 and "0 broken" in result.stdout


def test_the_layers_contract_catches_an_upward_import_inside_a_function(tmp_path):
    """The check is real: a copy of the package with one upward import, hidden in a function, fails it."""
    import shutil
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "catdog_zoo", ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "catdog_zoo" / "data" / "splits.py", "a") as f:
        f.write("\n\ndef _upward():\n    from ..training import runner  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=copy, capture_output=True, text=True,
                            env={"PYTHONPATH": str(copy), "PATH": ""})
    assert result.returncode == 1 and "catdog_zoo.data.splits -> catdog_zoo.training.runner" in result.stdout


def test_no_class_or_function_is_large():
    sizes = []
    for rel in MODULES:
        tree = ast.parse((PACKAGE / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                sizes.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.lineno} {node.name}"))
    largest = max(sizes)
    assert largest[0] <= LARGEST_UNIT, f"{largest[1]} is {largest[0]} lines"


def test_design_doc_maps_every_module_once():
    design = (ROOT / "docs" / "design.md").read_text()
    mapped = re.findall(r"^\| `([^`*]+\.py)` \|", design, flags=re.M)
    assert len(mapped) == len(set(mapped)), "a module is listed twice"
    assert "| `*/__init__.py` |" in design  # the subpackages' own __init__ files, in one row
    package_inits = {m for m in MODULES if m.endswith("/__init__.py")}
    assert set(mapped) | package_inits == set(MODULES), (
        f"missing from docs/design.md: {sorted(set(MODULES) - set(mapped) - package_inits)}; "
        f"not in the tree: {sorted(set(mapped) - set(MODULES))}")
    for folder in {m.split("/")[0] for m in MODULES if "/" in m}:
        assert f"  {folder}/" in design, f"the layout tree in docs/design.md lacks {folder}/"


def _resolve(target: str, module: str):
    """The object a Sphinx-style reference names, seen from ``module``."""
    target = target.lstrip("~")
    if target.startswith("."):
        package = module if (PACKAGE / (module.replace("catdog_zoo", "", 1).replace(".", "/") + "/__init__.py")
                             .lstrip("/")).is_file() else module.rpartition(".")[0]
        target = package + target
    elif not target.startswith("catdog_zoo"):  # a name in the module itself, or another package's
        obj = importlib.import_module(module)
        try:
            for attr in target.split("."):
                obj = getattr(obj, attr)
            return obj
        except AttributeError:
            if "." not in target:
                raise
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(target)


def test_docstrings_name_only_targets_that_exist():
    checked = 0
    for rel in MODULES:
        module = module_name(rel)
        for target in re.findall(r":(?:class|func|mod|data|meth|attr):`([^`]+)`", (PACKAGE / rel).read_text()):
            try:
                _resolve(target, module)
            except (ImportError, AttributeError) as exc:
                pytest.fail(f"{rel}: docstring names `{target}`, which does not exist ({exc})")
            checked += 1
    assert checked > 30


def test_public_api_resolves_with_real_signatures():
    for name in catdog_zoo.__all__:
        assert getattr(catdog_zoo, name) is not None, name
    assert set(catdog_zoo.PLUGIN_API) <= set(catdog_zoo.__all__)
    for name in ("train", "resume", "evaluate", "predict", "export", "create_model", "load_model"):
        function = getattr(catdog_zoo, name)
        params = inspect.signature(function).parameters.values()
        assert not any(p.kind is p.VAR_KEYWORD for p in params), f"catdog_zoo.{name} hides its parameters"
        assert function.__doc__ and len(function.__doc__) > 40, f"catdog_zoo.{name} has no docstring"
    train_params = inspect.signature(catdog_zoo.train).parameters
    assert {"epochs", "image_size", "fine_tune_epochs", "seed"} <= set(train_params)
    assert "epochs" in catdog_zoo.train.__doc__ and "default" in catdog_zoo.train.__doc__
    for line in catdog_zoo.train.__doc__.splitlines():  # a default said in the help's words is not said twice
        assert not ("Default:" in line and "(default:" in line), line


def test_train_refuses_an_option_that_is_not_a_config_key(tmp_path):
    with pytest.raises(catdog_zoo.ConfigError, match="unknown config key 'epoch'"):
        catdog_zoo.train("baseline", epoch=3, run_dir=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def _catdog_zoo_imports(source: str) -> set:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("catdog_zoo"):
            assert node.module == "catdog_zoo", f"imports internal module {node.module}"
            names |= {alias.name for alias in node.names}
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("catdog_zoo.") for a in node.names), "imports an internal module"
    return names


def test_bundled_plugins_scaffold_and_example_use_only_the_plugin_api():
    from catdog_zoo import scaffold
    sources = [p.read_text() for p in [*(ROOT / "plugins").rglob("*.py"),
                                       *(ROOT / "docs" / "examples").glob("*/*.py")]]
    sources.append(scaffold.MODULE.format(model="m", api=2))
    used = set().union(*map(_catdog_zoo_imports, sources))
    assert used and used <= set(catdog_zoo.PLUGIN_API), f"outside the plugin API: {used - set(catdog_zoo.PLUGIN_API)}"


def _in_fresh_process(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return done.stdout + done.stderr


def test_importing_the_package_and_the_cli_does_not_load_tensorflow():
    out = _in_fresh_process("import sys, catdog_zoo, catdog_zoo.cli; catdog_zoo.list_models(); "
                            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    assert out.strip() == "[]"


@pytest.mark.parametrize("args, message", [
    (["train", "mobilenet_v2", "--epochs", "0"], "epochs must be >= 1"),
    (["train", "mobilnet_v2"], "did you mean mobilenet_v2"),
    (["train", "mobilenet_v2", "--optimizer", "adamm"], "'adamm' is not one of"),
    (["train", "baseline", "--weights", "w.h5"], "has no pretrained weights"),
    (["predict", "runs/nothere", "x.jpg"], "run directory not found"),
])
def test_bad_input_is_refused_before_tensorflow_loads(args, message):
    out = _in_fresh_process(
        "import sys\nfrom catdog_zoo.cli import cli\n"
        f"try:\n    cli({args!r}, prog_name='catdog-zoo')\n"
        "except SystemExit as exc:\n    print('EXIT', exc.code, 'tensorflow' in sys.modules)\n")
    code, loaded = out.split("EXIT")[1].split()[:2]
    assert code in ("1", "2") and loaded == "False" and message in out, out


# Names other libraries define, written in backticks in docs/design.md and docs/plugins.md beside ours.
FOREIGN_NAMES = {"Choice", "FloatRange", "IntRange", "Lambda", "Sequential", "Rescaling", "BatchNormalization",
                 "TFLiteConverter", "Core", "keras", "tf", "sys", "model", "openvino", "catdog_zoo"}
# Named on purpose though not in the package: a plugin author's files, a field version 2 removed.
NOT_OURS = {"plugins.md": {"catdog_zoo_tiny_net.py", "tests/test_catdog_zoo_tiny_net.py", "TrainingDefaults.loss"}}
FILE_SUFFIXES = {"json", "yaml", "csv", "txt", "html", "png", "keras", "h5", "md", "toml", "npy", "npz", "entry",
                 "tflite", "onnx", "pb", "xml", "bin"}


def _code_index() -> tuple:
    """From the package's source, without importing it: ``(module -> its top-level names, class -> its members,
    every function and method name)``; a module is known by its path (``runs/confine``) and its last part."""
    modules, classes, functions, bases = {}, {}, set(), {}
    for rel in MODULES:
        tree = ast.parse((PACKAGE / rel).read_text())
        names = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                names |= {t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                          if isinstance(t, ast.Name)}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.add(node.name)
            elif isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(b.id for b in node.bases if isinstance(b, ast.Name))
                classes.setdefault(node.name, set()).update(
                    n.name if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else n.target.id
                    if isinstance(n, ast.AnnAssign) else next(t.id for t in n.targets if isinstance(t, ast.Name))
                    for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.AnnAssign,
                                                         ast.Assign)))
        path = rel.removesuffix(".py").removesuffix("/__init__")
        modules[path] = names
        modules.setdefault(path.rsplit("/", 1)[-1], names)
    for name in classes:  # a dataclass's inherited fields are its own (EngineSpec(name, summary, ...))
        todo = list(bases.get(name, ()))
        while todo:
            base = todo.pop()
            classes[name] |= classes.get(base, set())
            todo += bases.get(base, ())
    return modules, classes, functions


def _stale_reference(ref: str, modules: dict, classes: dict, functions: set):
    """Why the backticked ``ref`` names no code of the package, or None (it does, or it is no code name)."""
    call = re.fullmatch(r"([A-Z]\w*)\(([\w, .]*)\)", ref)  # TrainingDefaults(optimizer, learning_rate, ...)
    if call and call.group(1) in classes:
        missing = [a for a in re.split(r",\s*", call.group(2)) if a and a != "..." and a not in classes[call.group(1)]]
        return f"class {call.group(1)} has no {', '.join(missing)}" if missing else None
    if " " in ref or ref.startswith(("-", ".", "/")) or "*" in ref or ref.rsplit(".", 1)[-1] in FILE_SUFFIXES:
        return None  # words, flags, globs, files a run or a user has
    head, _, rest = ref.partition(".")
    if ref.endswith(".py"):
        return None if (PACKAGE / ref).is_file() or (ROOT / ref).is_file() else "no such file"
    if "/" in head and rest:  # runs/confine.check_output
        if head not in modules:
            return f"no module {head}.py"
        return None if rest.split(".")[0] in modules[head] else f"{head}.py defines no {rest.split('.')[0]}"
    if rest and re.fullmatch(r"[A-Za-z_][\w.]*(\(\))?", ref):
        name = rest.split(".")[0].rstrip("()")
        if head in classes:  # RunRecord.ORDER
            return None if name in classes[head] else f"class {head} has no {name}"
        if head in modules and head not in FOREIGN_NAMES:  # config.KEYS
            return None if name in modules[head] else f"{head}.py defines no {name}"
        return None
    if re.fullmatch(r"[a-z_]\w*\(\)", ref):  # plan(), or a callable field such as DataSource.fetch
        return None if ref[:-2] in functions or any(ref[:-2] in m for m in classes.values()) else "no such function"
    if re.fullmatch(r"[A-Z][a-z]\w*", ref) and ref not in FOREIGN_NAMES and ref not in dir(builtins):  # FineTune
        defined = any(ref in names for names in modules.values())
        return None if defined else "no such class or name"
    return None


@pytest.mark.parametrize("doc", ["design.md", "plugins.md"])
def test_the_docs_name_only_code_that_exists(doc):
    """Every backticked file, ``module.name``, ``Class.member``, ``function()`` and class name in the doc is in the
    package (a renamed or removed one left in the docs is how they went stale)."""
    modules, classes, functions = _code_index()
    refs = set(re.findall(r"`([^`\n]+)`", (ROOT / "docs" / doc).read_text()))
    refs -= NOT_OURS.get(doc, set())
    stale = {ref: why for ref in sorted(refs) if (why := _stale_reference(ref, modules, classes, functions))}
    assert not stale, f"docs/{doc} names code that does not exist: {stale}"
    assert _stale_reference("runs/record.RunRecord", modules, classes, functions) is None  # the check can pass ...
    for wrong in ("runs/record.NoSuchRecord", "RunRecord.NO_SUCH_FIELD", "config.NO_KEYS", "no_such_plan()",
                  "NoSuchStage", "util/no_such.py", "TrainingDefaults(epochs, loss)"):  # ... and fail
        assert _stale_reference(wrong, modules, classes, functions), wrong
