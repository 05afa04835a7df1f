"""The status words `curate diff --status` takes, said once for the flag's help and for select.py's error.

A module of its own: cli.py builds the parser from it without loading select.py (pyarrow, datatrove).
"""

STATUS_HELP = (
    "kept, edited, ignored (program_ignored), dropped (any stage), dropped_by_doc, dropped_by_chunk, "
    "errors (programs with errors), dropped:STAGE (dropped by that stage), edited:STAGE (text changed by that "
    "stage); comma-separated"
)
