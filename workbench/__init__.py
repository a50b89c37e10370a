"""simledger from Python: open a run's log or a whole study and get its tables as pandas DataFrames.

>>> import simledger
>>> run = simledger.open_run("results/runs/baseline_101.db")    # doctest: +SKIP
>>> run.turns()[["turn", "fees", "gini_wealth"]].tail(3)          # doctest: +SKIP
>>> study = simledger.open_study("results")                        # doctest: +SKIP
>>> study.turns().groupby(["scenario", "turn"]).gini_wealth.mean()  # doctest: +SKIP

The engine, ledger and study live in the subpackages (``simledger.ledger``, ...).
"""

from importlib.metadata import PackageNotFoundError, version

from .reader import RunLog, open_run
from .studies import Study, open_study

try:
    __version__ = version("simledger")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["open_run", "open_study", "RunLog", "Study", "__version__"]
