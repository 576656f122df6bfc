"""qnnlab: train quantized neural networks as constrained optimization problems.

The open entry points: :func:`fit` trains one run (a config's named data and model, or your
own ``nn.Module`` and :class:`Dataset`); :class:`Recorder` records the runs of your own loop
(``w`` and ``Q(w)`` evaluated, diagnostics, the run store that ``qnnlab report`` reads);
:class:`EpochScheduler` anneals ``ε`` (or ``λ``) in it; ``register_dataset``,
``register_model`` and ``register_method`` make your own names valid in TOML configs.
"""

__version__ = "0.1.0"

from qnnlab.config import RunConfig, load_config
from qnnlab.data import Dataset, register_dataset
from qnnlab.methods import register_method
from qnnlab.nn.models import register_model
from qnnlab.packed import export_model, export_run, load_packed, summarize
from qnnlab.schedules import EpochScheduler, annealed_eps
from qnnlab.train.loop import fit
from qnnlab.train.recorder import Recorder

__all__ = [
    "Dataset",
    "EpochScheduler",
    "Recorder",
    "RunConfig",
    "__version__",
    "annealed_eps",
    "export_model",
    "export_run",
    "fit",
    "load_config",
    "load_packed",
    "register_dataset",
    "register_method",
    "register_model",
    "summarize",
]
