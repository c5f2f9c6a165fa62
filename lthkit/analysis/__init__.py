"""Analyses of the trained solutions: distances and trajectories, the Hessian's spectra, the
landscape's lines, planes and radii, and the tables that put the paper's published numbers
beside ours.

    geometry   distances between solutions and along trajectories (Figs 3, 4, 14, 15)
    hessian/   Lanczos spectra restricted to a mask's subspace, volumes V'(k), tables
    landscape/ lines and barriers, planes and sublevel sets, basin radii, surfaces
    plans      what each analysis notebook (04-09) computes, and `compute` to make it
    published  the paper's published values, shown only for the paper's recipe
    units      notebooks 04-09's work as units an executor can run

Imports the training (lthkit.train) and everything below it; the verdicts never import it (they
read its tables from the run folder), the tickets, plots and runner do.
"""
