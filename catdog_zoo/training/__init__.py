"""Training: a run is a plan of stages (:mod:`.plan`, from the registered StageSpecs; the built-in ones in
:mod:`.stages`, registered by :mod:`.builtin_stages`) strung together by :class:`.runner.Runner`.

:mod:`.resolve` resolves a run's ``(spec, config)`` once; :mod:`.session` sets a run up (new or resumed) and is
what ``catdog_zoo.train`` calls; a stage reads a :class:`.context.StageContext` and returns a
:class:`.context.StageResult`; :mod:`.loops` fits a model for some epochs (Keras ``fit``, or :mod:`.distribute`'s
replicated loop) and every epoch goes to the listeners (:mod:`.listeners`, :mod:`.trackers`); :mod:`.finish`
scores, saves and reports the trained model; :mod:`.zoo_sweep` trains every installed model (``catdog-zoo zoo``).

Internal: the public API is what ``catdog_zoo`` exports.
"""
