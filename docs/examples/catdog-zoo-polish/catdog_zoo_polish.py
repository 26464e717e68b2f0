"""An outside training stage: after the built-in stages, train the whole model a few more epochs at a tenth of the
run's learning rate (fastai's "fine_tune" ends the same way: a last pass at a lower rate).

Opt-in: installing a stage plugin must not change anyone's runs behind their back, and a plugin declares no config
keys of its own, so the stage applies only when ``CATDOG_ZOO_POLISH_EPOCHS`` is a whole number above 0. Models with
a frozen backbone are left to the built-in ``fine_tune`` stage.
"""

import os

from catdog_zoo import StageResult, StageSpec, hookimpl

CATDOG_ZOO_API_VERSION = 3
EPOCHS_ENV = "CATDOG_ZOO_POLISH_EPOCHS"


class Polish:
    """The stage itself: ``epochs`` and ``run`` (what every stage has); ``prepare`` is not needed, the model's
    layers stay as they are."""

    def __init__(self, epochs: int, rate: float):
        self.epochs, self.rate = epochs, rate

    def run(self, context, first, last, checkpoint):
        context.compile(context.net, self.rate)
        context.fit(context.net, first, last, context.images("train", shuffle=True, first_epoch=first),
                    context.images("validation"), checkpoint)
        return StageResult(facts={"learning_rate": self.rate})


def make(spec, cfg, net, planned):
    try:
        epochs = int(os.environ.get(EPOCHS_ENV, "0"))
    except ValueError:
        raise ValueError(f"${EPOCHS_ENV} must be a whole number, got {os.environ[EPOCHS_ENV]!r}") from None
    if epochs <= 0 or spec.frozen_backbone:
        return None
    return Polish(epochs, cfg.learning_rate / 10)


@hookimpl
def register_stages(register):
    register(StageSpec(name="polish", summary=f"the whole model again at a tenth of the rate (${EPOCHS_ENV} epochs)",
                       make=make, order=50, records=("learning_rate",), drawn="polishing starts"))
