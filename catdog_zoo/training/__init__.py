"""Training: a run is a list of stages (:mod:`.stages`) strung together by :class:`.runner.Runner`.

:mod:`.session` sets a run up (new or resumed) and is what ``catdog_zoo.train`` calls; :mod:`.loops`
fits a model for some epochs (Keras ``fit``, or :mod:`.distribute`'s replicated loop);
:mod:`.checkpoints` saves every epoch; :mod:`.finish` scores, saves and reports the trained model;
:mod:`.zoo_sweep` trains every installed model (``catdog-zoo zoo``).

Internal: the public API is what ``catdog_zoo`` exports.
"""
