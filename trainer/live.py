"""Live findings: placeholder until the analysis rules land (see issue 3)."""


def live_rules(cfg, diag_dir):
    return None
