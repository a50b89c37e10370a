# %% [markdown]
# # The study in a notebook
#
# `simledger experiment` writes one verified log per run to `results/runs/`. Here we load
# them all as pandas DataFrames, plot inequality (Gini) over the turns for each regime, and
# compare two runs agent by agent. Every number comes from one fold of each run's event log.
#
# Run it with Jupyter (`examples/study_notebook.ipynb`) or as a script
# (`python examples/study_notebook.py`, which prints the tables and opens the figures).
# Set `SIMLEDGER_STUDY` to read another folder, such as a sweep's output.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt

import simledger

try:
    from IPython.display import display
except ImportError:  # run as a plain script: print the tables
    display = print

STUDY = Path(os.environ.get("SIMLEDGER_STUDY", "results"))
if not STUDY.is_dir():
    # No study here yet: write a small one (3 regimes x 2 seeds) the way `simledger experiment` does.
    from simledger.study.experiment import execute_specs
    from simledger.study.sweep import study_specs

    execute_specs(study_specs(seeds=[101, 102]), STUDY / "runs")

study = simledger.open_study(STUDY)
display(study)

# %% [markdown]
# ## One row per run and turn
# `study.turns()` is in long format: the run's identity first (run, scenario, seed and, for a
# sweep, one column per parameter), then the turn's totals and the economy at its end.

# %%
turns = study.turns()
display(turns[["run", "scenario", "seed", "turn", "fees", "dividends", "gini_wealth", "token_supply"]].head())

# %% [markdown]
# ## Inequality over the turns, per regime
# The line is the mean over seeds, the band the range between the least and most unequal run.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for axis, metric in zip(axes, ["gini_balance", "gini_wealth"]):
    by_turn = turns.groupby(["scenario", "turn"])[metric].agg(["mean", "min", "max"])
    for scenario, curve in by_turn.groupby(level="scenario"):
        curve = curve.droplevel("scenario")
        axis.plot(curve.index, curve["mean"], label=scenario)
        axis.fill_between(curve.index, curve["min"], curve["max"], alpha=0.2)
    axis.set(title=metric.replace("_", " "), xlabel="turn")
axes[0].set_ylabel("Gini")
axes[0].legend()
fig.tight_layout()
plt.show()

# %%
final = turns[turns.turn == turns.turn.max()]
gini_at_end = final.groupby("scenario")[["gini_balance", "gini_wealth"]].agg(["mean", "std"]).round(3)
display(gini_at_end)

# %% [markdown]
# ## Two runs side by side
# The same seed under two regimes: each agent's wealth over the turns, core owners (who
# collect the inference fees as dividends) drawn solid, the others dashed.

# %%
left = study.runs[0]
right = next(run for run in reversed(study.runs) if run.seed == left.seed)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for axis, run in zip(axes, [left, right]):
    accounts = run.accounts()
    owners = set(accounts[accounts.turn == accounts.turn.max()].query("owns_core").agent_id)
    for agent, history in accounts.groupby("agent_id"):
        axis.plot(history.turn, history.wealth, linestyle="-" if agent in owners else "--", label=agent)
    axis.set(title=f"{run.name}: wealth per agent", xlabel="turn")
axes[0].set_ylabel("wealth (balance + staked)")
axes[1].legend(fontsize="small", ncol=2)
fig.tight_layout()
plt.show()

# %%
totals = ["fees", "dividends", "interest", "errors", "settled", "defaulted"]
comparison = (
    turns[turns.run.isin([left.name, right.name])]
    .groupby("run")[totals].sum()
    .T.assign(ratio=lambda t: (t[right.name] / t[left.name]).round(2))
)
display(comparison)

# %% [markdown]
# ## Contract outcomes per regime

# %%
display(study.contracts().groupby(["scenario", "status"]).size().unstack(fill_value=0))
