"""traindx analysis: diagnoses runs and sweeps from their files, without torch.

Six layers, each importing only the layers below it (tests/test_layers.py checks every import, those inside
functions included, and that no module imports another in a circle). LAYERS is the one table of which module
belongs where; README's "How it fits together" is checked against it.
"""

from __future__ import annotations

# layer -> (name, what it does, the modules in it: a package name covers its submodules)
LAYERS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    1: ("read", "our run files and other tools' logs -> Run; a sweep directory -> Sweep",
        ("rundir", "analysis.importers", "analysis.sweep", "analysis.records")),
    2: ("facts", "pure functions of a Run or of arrays: statistics, facts, the LR schedule, overrides",
        ("analysis.stats", "analysis.facts", "analysis.schedule", "analysis.overrides", "analysis.findings",
         "analysis.summary", "analysis.progress", "analysis.per_class",
         "analysis.label_noise", "analysis.thumbnails",
         "analysis.run_facts", "analysis.sweep_stats", "analysis.sweep_effects", "analysis.anova")),
    3: ("rules", "the rule catalog and the differential diagnosis: Run -> findings and a cause",
        ("analysis.rules",)),
    4: ("reports", "run, sweep, comparison and verification reports as plain data",
        ("analysis.run_report", "analysis.jobs", "analysis.job_cache", "analysis.sweep_report", "analysis.compare",
         "analysis.verification", "analysis.label_noise_report")),
    5: ("render", "plain report data -> text, Markdown, HTML, JSON, CSV, PNG",
        ("analysis.render",)),
    6: ("commands", "python -m analysis, --verify, the sweep-end callback, the catalog page",
        ("analysis.__main__", "analysis.cli_parser", "analysis.dispatch", "analysis.verify", "analysis.hydra_callback",
         "analysis.catalog_doc")),
}


def layer_of(module: str) -> int | None:
    """The layer a module of the analysis (or rundir) belongs to, by the longest matching entry of LAYERS."""
    best, found = -1, None
    for number, (_, _, members) in LAYERS.items():
        for m in members:
            if (module == m or module.startswith(m + ".")) and len(m) > best:
                best, found = len(m), number
    return found
