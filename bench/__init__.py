"""The benchmark: `python -m bench` (`make bench`). See docs/benchmarks.md for the method
and the latest figures; runner.py for the phases, pgwire.py for how database round trips
are counted, report.py for the table and the targets of issue 8."""
