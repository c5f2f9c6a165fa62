"""Verdicts: statistics across replicates and the papers' claims judged on our measurements.

    stats         t-intervals of means and paired differences, non-finite values left out
    claims        the rule: a claim's quantity against its margin, per level and overall
    replicates    a table of every replicate side by side with the mean and its interval
    paper_claims  the papers' claims, each with the sentence it tests, read off our tables

Imports lthkit.config and lthkit.store only: the verdicts read tables from the run folder and never
see the paper's published numbers (lthkit.analysis.published). The plots and the runner import it.
"""
