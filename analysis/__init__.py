"""traindx analysis: diagnoses runs and sweeps from their files, without torch."""
