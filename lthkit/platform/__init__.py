"""Where and how work runs: the device (CUDA memory, determinism, allocation failures), progress
bars that leave one line per unit of work under papermill, and the executor that runs independent
units of work in this process or as Ray tasks.

    errors     the first line of an error, for one-line messages
    device     CUDA facts and settings: memory budgets, deterministic algorithms, a task's GPU share
    progress   tqdm bars: live in JupyterLab, one finished line per unit under papermill
    executor   local or Ray units of work, their failures named
    processes  a pid with its start time: the runner's kernels, a run folder's lock holders

Imports nothing else of lthkit; the training, the analyses and the runner import it.
"""
