"""Benchmarks: each module runs from the repository root as `python -m bench.NAME`
(see its docstring for the options). They import dripper and tests.support (the shared
SMTP sink) from there; `pip install -e '.[bench]'` adds the baselines they compare against."""
