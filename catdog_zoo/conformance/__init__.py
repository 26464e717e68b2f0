"""The conformance kit for plugin authors (``catdog-zoo check-plugin NAME``, ``catdog_zoo.check_plugin``): every
check a model must pass to work in every command of the zoo, each named, run to the end whatever fails.

:mod:`.subject` (the model under check, its sizes and builds), :mod:`.model_checks` (loading, metadata, builds
and logits, a training step, seeding, safe-mode save/load), :mod:`.conversion_checks` (frozen backbone, engines,
exports), :mod:`.targets` (the registered engines and export formats), :mod:`.kit` (names to models, the plan of
checks, running them), :mod:`.outcome` (PASS/FAIL/SKIP and the report).
"""

from __future__ import annotations

from .kit import check_spec, specs_for


def check_plugin(name: str, quick: bool = False) -> list:
    """Run the kit on the model ``name`` (or on every model of the plugin or distribution ``name``), as
    scikit-learn's ``check_estimator``: returns the :class:`~.outcome.Report` of each model when every check
    passed or was skipped, else raises one ``AssertionError`` listing every failed check. ``quick`` leaves out the
    conversions (engines and exports). The checks seed Keras' global random state (as a run does)."""
    reports = [check_spec(spec, quick) for spec in specs_for(name)]
    failures = [r.failures() for r in reports if not r.ok]
    if failures:
        raise AssertionError("catdog-zoo conformance checks failed:\n" + "\n".join(failures))
    return reports
