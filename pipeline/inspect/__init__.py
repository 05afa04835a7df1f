"""Look at what a run did: `curate diff` (document by document) and `curate report` (the whole run).

    select.py      choose documents of an output (status, id, grep, sample), one row group at a time
    hunks.py       rebuild a refined document's diff from its ProX edits, each change labelled
    terminal.py    the diff in a terminal (plain text first, rich colours on a tty)
    html.py        the diff as one self-contained page (assets/diff.html)
    thresholds.py  the thresholds a run's rules apply, from the rules' parsed trees
    report.py      the run report page: funnel, drop reasons, histograms with thresholds
    statuses.py    the status words `--status` takes (the help and the error say them once)
    cli.py         the `curate diff` and `curate report` commands

Nothing is imported here: `curate --help` loads only cli.py, the commands load the rest.
"""
