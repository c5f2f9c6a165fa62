"""The report: the notebook series run headless with one parameter file, its HTML copies that read
well offline, and the count of the work a series holds.

    runner          lthkit-report: notebooks in order, resumable, failures named, index.html
    claims_page     the claims page that opens index.html (forest plot, table, rule, family)
    compare_claims  lthkit-claims: the claims of several finished runs side by side
    offline_html    HTML copies with MathJax copied into the run folder (no CDN)
    workload        units of work of a series, for progress and planning

Imports every package below it; nothing imports it.
"""

from lthkit.report.runner import main, run_report

__all__ = ["main", "run_report"]
