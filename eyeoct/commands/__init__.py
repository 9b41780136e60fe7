"""The command-line programs: one module per command, each with `main(argv=None)`.

Installed as console commands by setup.py (`eyeoct-train-ae`, `eyeoct-train-dm`, `eyeoct-infer`,
`eyeoct-evaluate`, `eyeoct-baselines`, `eyeoct-prepare-data`, `eyeoct-make-phantom`, `eyeoct-demo`);
`scripts/<name>.py` call the same `main`.
"""
