"""The run directory: the one interface between the trainer and the analysis.

- `rundir.format`: file names, and the diagnostics record fields with units and meanings (the one table);
- `rundir.files`: crash-safe writing (atomic replacement, the JSONL writer, torn-tail repair, status.json);
- `rundir.read`: a run directory -> Run (load_run), tolerant of whatever it finds, through
  `rundir.safe` (regular files only, capped reads, bounded YAML), `rundir.jsonl` (the one JSONL line
  parser, and the tolerant JSONL reader) and `rundir.columns` (records -> numpy columns).

Torch-free, and it imports neither `trainer` nor `analysis`: the trainer writes through it, the analysis
reads through it. `python -m rundir.fields_doc` regenerates docs/diagnostics-fields.md from the table.
"""
