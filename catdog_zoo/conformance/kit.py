"""Running the kit: which models a name means, which checks each model gets, and each check run on its own so
that one failure never hides the next."""

from __future__ import annotations

import contextlib
import difflib
import time
from functools import partial

from ..errors import ConfigError, UnknownModelError, first_line
from ..plugins import get_zoo
from ..util.names import terminal
from . import conversion_checks, model_checks, targets
from .outcome import FAIL, Outcome, Report, skipped
from .subject import FIXED_SIZE_TAG, NotBuilt, Subject, shown


def specs_for(name: str) -> list:
    """The models ``name`` means: a model (``name`` or ``distribution:name``), else every model registered by the
    plugin (entry point) or distribution of that name. Unknown: :class:`UnknownModelError` (exit status 2)."""
    zoo = get_zoo()
    try:
        return [zoo.model(name)]
    except UnknownModelError:
        pass
    infos = [info for key, info in zoo.plugins.items() if name in (key, info.name, info.distribution)]
    if not infos:
        close = difflib.get_close_matches(name, sorted({s.name for s in zoo.models.list()} | set(zoo.plugins)), n=3)
        hint = f"did you mean {', '.join(map(terminal, close))}?" if close else \
            "see 'catdog-zoo models' and 'catdog-zoo plugins'"
        raise UnknownModelError(f"unknown model or plugin '{terminal(name)}' ({hint})")
    specs = [spec for spec in zoo.models.list() if any(spec.plugin == info.name for info in infos)]
    if not specs:
        why = "; ".join(e for info in infos for e in info.errors)
        adds = [kind for kind in ("engines", "exporters") for info in infos if getattr(info, kind)]
        raise ConfigError(f"plugin '{terminal(name)}' registers no models" + (
            f": {why}" if why else " (the kit checks models; it checks a plugin's engines and export formats on "
            "every model: run it on one, e.g. 'catdog-zoo check-plugin baseline')" if adds else
            " (the kit checks models)"))
    return specs


def planned(subject) -> list:
    """``(check name, function of no arguments)`` in the order they run."""
    zoo = get_zoo()
    checks = [("plugin loads", partial(model_checks.check_loads, subject, zoo)),
              ("metadata", partial(model_checks.check_metadata, subject))]
    sizes = [(2, subject.default_size)]
    if subject.other_size is not None:
        sizes += [(c, subject.other_size) for c in (2, 3, 5)]
    else:
        sizes += [(3, subject.default_size), (5, subject.default_size)]
        checks.append(("build at another size", lambda: skipped(
            f"the spec declares one input size (tag '{FIXED_SIZE_TAG}')")))
    checks += [(f"build {c} classes {shown(s)}", partial(model_checks.check_build, subject, c, s)) for c, s in sizes]
    checks += [("train step", partial(model_checks.check_train_step, subject)),
               ("seeding", partial(model_checks.check_seeding, subject)),
               ("save/load safe mode", partial(model_checks.check_save_load, subject)),
               ("frozen backbone", partial(conversion_checks.check_frozen_split, subject))]
    checks += [(f"engine {t.shown}", partial(conversion_checks.check_engine, subject, t))
               for t in targets.converting_engines()]
    checks += [(f"export {t.shown}", partial(conversion_checks.check_export, subject, t)) for t in targets.exporters()]
    return checks


def check_spec(spec, quick: bool = False, on_outcome=lambda outcome: None) -> Report:
    """Every check of ``spec``'s model, each run whatever the others gave; ``on_outcome`` sees each as it ends."""
    subject = Subject(spec, quick)
    report = Report(spec.qualified_name)
    with _no_retracing_warning():
        for name, check in planned(subject):
            started = time.perf_counter()
            status, why = _run(check)
            report.outcomes.append(Outcome(name, status, " ".join(str(why).split()), time.perf_counter() - started))
            on_outcome(report.outcomes[-1])
    return report


@contextlib.contextmanager
def _no_retracing_warning():
    """Without TensorFlow's "triggered tf.function retracing" warning: the kit compiles a dozen fresh models in one
    process on purpose, and TensorFlow counts their training steps' traces together. Its other messages pass."""
    import logging

    def keep(record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()
    logger = logging.getLogger("tensorflow")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _run(check) -> tuple:
    try:
        return check()
    except NotBuilt as exc:
        return skipped(str(exc))
    except Exception as exc:  # noqa: BLE001 - whatever a plugin's model raises is that check's failure, named
        return FAIL, f"raised {type(exc).__name__}: {first_line(exc)}"
